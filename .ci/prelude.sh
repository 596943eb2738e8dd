# Shared by the project's entry scripts (tests/run.sh, demo/run.sh,
# demo/filesystem.sh): sourced, not run. Each function prints one clear line
# and exits when it cannot do its job.

# ra_need_root WHO WHY: refuse to go on without root.
ra_need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$1: $2: run it as root (sudo $0)" >&2
        exit 1
    fi
}

# ra_find_cargo WHO: rustup's cargo on PATH, also when sudo reset PATH and
# HOME (the invoking user's toolchain, and its rustup home too, or rustup
# would install a second toolchain here; and its cargo home, or the crates'
# sources would be unpacked again under /root, where the user's own cargo
# cannot read them, and their next `cargo build` would start from scratch),
# and Rust >= 1.80.
ra_find_cargo() {
    local home
    for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
        if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
            PATH=$home/.cargo/bin:$PATH
            if [ "$home" != "$HOME" ]; then
                # someone else's: ra_give_back returns what root adds to them
                if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$home/.rustup" ]; then
                    export RUSTUP_HOME=$home/.rustup
                    RA_USER_HOMES=$RUSTUP_HOME
                fi
                if [ -z "${CARGO_HOME:-}" ]; then
                    export CARGO_HOME=$home/.cargo
                    RA_USER_HOMES="${RA_USER_HOMES:-} $CARGO_HOME"
                fi
            fi
            break
        fi
    done
    export PATH
    command -v cargo >/dev/null || {
        echo "$1: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
        exit 1
    }
    local minor
    minor=$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
    if [ -z "$minor" ] || [ "$minor" -lt 80 ]; then
        echo "$1: $(rustc --version) is too old: Rust >= 1.80 is needed (rustup update stable)" >&2
        exit 1
    fi
}

# ra_give_back: through sudo, what root built or installed for the user
# goes back to them, or their own `cargo build` in the checkout fails with
# "Permission denied" (a root-owned target/) and so do `rustup update` and
# `rustup toolchain uninstall` (rust-toolchain.toml's musl target installed
# by root into their rustup home): the target directory to the checkout's
# owner (unless CARGO_TARGET_DIR puts it elsewhere), the rustup and cargo
# homes that ra_find_cargo took from the invoking user to that user.
ra_give_back() {
    [ "$(id -u)" = 0 ] || return 0
    if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d target ] && [ "$(stat -c %u .)" != 0 ]; then
        chown -R --reference=. target || echo "could not give target/ back to its owner" >&2
    fi
    # (an EXIT trap: a failure here must not replace the script's status)
    local d
    for d in ${RA_USER_HOMES:-}; do
        if [ -d "$d" ]; then
            chown -R --reference="$d/.." "$d" || echo "could not give $d back to its owner" >&2
        fi
    done
    return 0
}

# ra_apt_install PKG...: install the Debian packages that are missing,
# without questions and without starting their daemons (no init system in
# containers: policy-rc.d).
ra_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    local need=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing ${need[*]}"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
}
