//! `backingfile`: the copy-on-write image a domain boots from, named and
//! created as heartbeat does (but with the backing file's format given to
//! qemu-img, which 6.1 and later require).

use std::path::{Path, PathBuf};

use ocf::{Context, Deadline, Failure};

use crate::VirtualDomain;

impl VirtualDomain {
    /// The overlay over `backing`, created afresh when `stateless` or when
    /// it is missing or empty; whether it was.
    pub(crate) fn prepare_overlay(
        &self,
        ctx: &Context,
        dom: &str,
        backing: &Path,
        dl: &Deadline,
    ) -> Result<bool, Failure> {
        let image = overlay_path(&self.cfg.config);
        let fresh = self.cfg.stateless || std::fs::metadata(&image).map_or(true, |m| m.len() == 0);
        if !fresh {
            return Ok(false);
        }
        let _ = std::fs::remove_file(&image);
        let format = backing_format(ctx, backing, dl)?;
        let out = ctx
            .tools()
            .command("qemu-img")?
            .args(["create", "-f", "qcow2", "-F", &format, "-b"])
            .arg(backing)
            .arg(&image)
            .run(dl)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "Failed qemu-img create {} with backing file {}: {}",
                image.display(),
                backing.display(),
                out.message()
            )));
        }
        ocf::info!(
            "{dom}: created {} over {}",
            image.display(),
            backing.display()
        );
        Ok(true)
    }

    /// `copyindirs` into the defined (not yet running) domain.
    pub(crate) fn copy_in_dirs(
        &self,
        ctx: &Context,
        dom: &str,
        dl: &Deadline,
    ) -> Result<(), Failure> {
        if self.cfg.copyindirs.is_empty() {
            return Ok(());
        }
        let out = ctx
            .tools()
            .command("virt-copy-in")?
            .arg("-d")
            .arg(dom)
            .args(&self.cfg.copyindirs)
            .arg("/")
            .run(dl)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "Failed on virt-copy-in command {dom}: {}",
                out.message()
            )));
        }
        Ok(())
    }
}

/// The copy-on-write image of a `backingfile` domain: heartbeat's
/// `${config%%.*}.qcow2`, cut at the first dot of the file name only (not
/// at a dot in a directory name): `/etc/vm.d/web.prod.xml` gives
/// `/etc/vm.d/web.qcow2`.
pub fn overlay_path(config: &Path) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match name.char_indices().find(|&(i, c)| c == '.' && i > 0) {
        Some((i, _)) => &name[..i],
        None => &name[..],
    };
    config.with_file_name(format!("{stem}.qcow2"))
}

/// The format of `backing` as `qemu-img info` sees it: qemu-img (6.1 and
/// later) refuses an overlay without its backing format (`-F`), which
/// heartbeat does not give.
fn backing_format(ctx: &Context, backing: &Path, dl: &Deadline) -> Result<String, Failure> {
    let out = ctx
        .tools()
        .command("qemu-img")?
        .args(["info", "-U", "--output=json"])
        .arg(backing)
        .run(dl)?;
    if !out.success() {
        return Err(Failure::generic(format!(
            "qemu-img info {}: {}",
            backing.display(),
            out.message()
        )));
    }
    json_string(&out.stdout, "format").ok_or_else(|| {
        Failure::generic(format!(
            "qemu-img info {}: no format in its output",
            backing.display()
        ))
    })
}

/// The first `"key": "value"` string of a JSON text (qemu-img's flat
/// output; no escapes in format names).
fn json_string(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_image_names_cut_at_the_first_dot_of_the_file_name() {
        assert_eq!(
            overlay_path(Path::new("/etc/libvirt/qemu/vm1.xml")),
            Path::new("/etc/libvirt/qemu/vm1.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/vm.d/web.prod.xml")),
            Path::new("/srv/vm.d/web.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/vm")),
            Path::new("/srv/vm.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/.vm.xml")),
            Path::new("/srv/.vm.qcow2")
        );
    }

    #[test]
    fn qemu_img_json_format() {
        let j = "{\n    \"virtual-size\": 1048576,\n    \"filename\": \"/b.img\",\n    \"format\": \"raw\",\n    \"backing-filename-format\": \"x\"\n}";
        assert_eq!(json_string(j, "format").as_deref(), Some("raw"));
        assert_eq!(json_string(j, "nothing"), None);
    }
}
