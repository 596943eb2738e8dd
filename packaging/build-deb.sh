#!/usr/bin/env bash
# Build the resource-agents-rs .deb (and, where rpmbuild exists, the .rpm)
# holding every agent and every rgmanager persona.
#
#   packaging/build-deb.sh [--static-dir DIR --libvirt-dir DIR | --bin-dir DIR] [--out DIR] [--no-rpm]
#
# Without directories the release binaries are built here: the static
# agents for the musl target (`cargo static-agents`), VirtualDomain and the
# vm persona, which link libvirt, for the gnu target (`cargo libvirt-agents`;
# see .cargo/config.toml). --static-dir/--libvirt-dir name where each set
# was built; --bin-dir takes every binary from one directory. A missing
# agent or persona is an error: the packages always hold all of them.
# The drop-in (heartbeat-rs-dropin) works with dpkg-divert and ships in the
# .deb only. Layout:
#   /usr/lib/ocf/resource.d/heartbeat-rs/<Agent>        the OCF agents
#   /usr/share/cluster/<persona>.sh                      rgmanager personas
#   /usr/share/man/man7/ocf_heartbeat-rs_<Agent>.7.gz    generated from the meta-data
#   /usr/share/resource-agents-rs/<Agent>.xml           the meta-data
#   /usr/sbin/heartbeat-rs-dropin                        opt-in drop-in under heartbeat/
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BIN_DIR= STATIC_DIR= LIBVIRT_DIR= OUT=$TOP/target/packages RPM=1
while [ $# -gt 0 ]; do
    case $1 in
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --static-dir) STATIC_DIR=$2; shift 2 ;;
        --libvirt-dir) LIBVIRT_DIR=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-rpm) RPM=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -n "$BIN_DIR" ]; then
    STATIC_DIR=$BIN_DIR LIBVIRT_DIR=$BIN_DIR
elif [ -z "$STATIC_DIR" ] || [ -z "$LIBVIRT_DIR" ]; then
    (cd "$TOP" && cargo static-agents && cargo libvirt-agents)
    STATIC_DIR=$TOP/target/x86_64-unknown-linux-musl/release
    LIBVIRT_DIR=$TOP/target/release
fi
# bin_of NAME: where the binary NAME comes from
bin_of() {
    case $1 in
        VirtualDomain | vm) echo "$LIBVIRT_DIR/$1" ;;
        *) echo "$STATIC_DIR/$1" ;;
    esac
}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$TOP/Cargo.toml" | head -1)
AGENTS=(Filesystem LVM-activate LVM lvmlockd iscsi VirtualDomain Xen)
PERSONAS=(fs lvm vm)

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
OCF=$ROOT/usr/lib/ocf/resource.d/heartbeat-rs
install -d "$OCF" "$ROOT/usr/share/man/man7" "$ROOT/usr/share/resource-agents-rs" \
    "$ROOT/usr/share/doc/resource-agents-rs" "$ROOT/usr/sbin"
found=()
for a in "${AGENTS[@]}" "${PERSONAS[@]}"; do
    bin=$(bin_of "$a")
    [ -x "$bin" ] || { echo "build-deb.sh: $bin: no such executable (agent $a)" >&2; exit 1; }
done
for a in "${AGENTS[@]}"; do
    bin=$(bin_of "$a")
    found+=("$a")
    install -m 0755 "$bin" "$OCF/$a"
    "$bin" meta-data > "$ROOT/usr/share/resource-agents-rs/$a.xml"
    "$bin" --man | gzip -9n > "$ROOT/usr/share/man/man7/ocf_heartbeat-rs_$a.7.gz"
done
install -d "$ROOT/usr/share/cluster"
for p in "${PERSONAS[@]}"; do
    install -m 0755 "$(bin_of "$p")" "$ROOT/usr/share/cluster/$p.sh"
done
install -m 0755 "$HERE/heartbeat-rs-dropin" "$ROOT/usr/sbin/heartbeat-rs-dropin"
install -m 0644 "$TOP/README.md" "$ROOT/usr/share/doc/resource-agents-rs/README.md"
printf 'resource-agents-rs\nLicense: GPL-2.0-or-later\n' > "$ROOT/usr/share/doc/resource-agents-rs/copyright"

depends="Depends: libvirt0" linking="statically
 linked (VirtualDomain and vm dynamically, against libvirt)"
install -d "$ROOT/DEBIAN"
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: resource-agents-rs
Version: $VERSION
Architecture: amd64
Maintainer: resource-agents-rs developers <dev@resource-agents-rs.invalid>
Section: admin
Priority: optional
${depends}
Suggests: pacemaker, resource-agents
Description: OCF resource agents written in Rust (provider heartbeat-rs)
 Drop-in replacements for the ClusterLabs heartbeat agents ${found[*]}:
 the same parameters under the OCF provider heartbeat-rs, ${linking},
 no shell. heartbeat-rs-dropin optionally puts them in place of
 the heartbeat provider's agents for scripts that hard-code that path.
CONTROL
sed -i '/^$/d' "$ROOT/DEBIAN/control"
cat > "$ROOT/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
# Undo the drop-in (if enabled) before our agents go away.
if [ "$1" = remove ] || [ "$1" = purge ]; then
    /usr/sbin/heartbeat-rs-dropin disable || true
fi
PRERM
chmod 0755 "$ROOT/DEBIAN/prerm"
mkdir -p "$OUT"
dpkg-deb --root-owner-group --build "$ROOT" "$OUT/resource-agents-rs_${VERSION}_amd64.deb" >/dev/null
echo "$OUT/resource-agents-rs_${VERSION}_amd64.deb"

if [ "$RPM" = 1 ] && command -v rpmbuild >/dev/null; then
    rm -rf "$ROOT/DEBIAN" "$ROOT/usr/sbin"
    TOPDIR=$STAGE/rpm
    mkdir -p "$TOPDIR"
    rpmbuild -bb --quiet \
        --define "_topdir $TOPDIR" --define "_rpmdir $OUT" --define "_build_id_links none" --define "__os_install_post %{nil}" \
        --define "version $VERSION" --define "stage $ROOT" \
        "$HERE/resource-agents-rs.spec" >/dev/null
    find "$OUT" -name 'resource-agents-rs-*.rpm' -newer "$HERE/build-deb.sh" -print
elif [ "$RPM" = 1 ]; then
    # not an error (the .deb is built), but said: a newcomer looks for both
    echo "no .rpm: rpmbuild is not installed (Debian: apt-get install rpm; --no-rpm to build the .deb only)" >&2
fi
