//! A setup check made once per run.
//!
//! Agents check their setup (lvm.conf, the VG, the tools) in `validate`
//! before a `start` or `validate-all`, and `start` needs what that check
//! found. [`CheckedOnce`] keeps the result between the two calls, so start
//! neither repeats the (forking) check nor runs without it when it is
//! called directly.

use std::cell::RefCell;

use crate::action::Action;
use crate::context::Context;
use crate::status::Failure;

#[derive(Debug)]
pub struct CheckedOnce<T>(RefCell<Option<T>>);

impl<T> Default for CheckedOnce<T> {
    fn default() -> Self {
        CheckedOnce(RefCell::new(None))
    }
}

impl<T> CheckedOnce<T> {
    /// In `validate`: run `check` for a start or validate-all and keep
    /// what it found; other actions do not check.
    pub fn validate(
        &self,
        ctx: &Context,
        check: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<(), Failure> {
        if matches!(ctx.action, Action::Start | Action::ValidateAll) {
            let found = check()?;
            *self.0.borrow_mut() = Some(found);
        }
        Ok(())
    }

    /// In `start`: what `validate` found, or `check` now.
    pub fn take_or(&self, check: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
        let kept = self.0.borrow_mut().take();
        match kept {
            Some(found) => Ok(found),
            None => check(),
        }
    }

    /// Keep `found` as if `validate` had found it.
    pub fn set(&self, found: T) {
        *self.0.borrow_mut() = Some(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn ctx(action: &str) -> Context {
        Context::from_env(
            Action::parse(&[action]).unwrap(),
            "test",
            Env::from_pairs(Vec::<(String, String)>::new()),
        )
        .unwrap()
    }

    #[test]
    fn start_reuses_what_validate_found_once() {
        let c: CheckedOnce<u32> = CheckedOnce::default();
        let mut runs = 0;
        c.validate(&ctx("start"), || {
            runs += 1;
            Ok(7)
        })
        .unwrap();
        assert_eq!(c.take_or(|| Ok(0)).unwrap(), 7);
        // taken: a second start checks again
        assert_eq!(c.take_or(|| Ok(9)).unwrap(), 9);
        assert_eq!(runs, 1);
        // a monitor does not check
        c.validate(&ctx("monitor"), || panic!("checked")).unwrap();
    }

    #[test]
    fn a_failed_check_fails_validate() {
        let c: CheckedOnce<u32> = CheckedOnce::default();
        let e = c
            .validate(&ctx("validate-all"), || Err(Failure::configured("bad")))
            .unwrap_err();
        assert_eq!(e.reason, "bad");
    }
}
