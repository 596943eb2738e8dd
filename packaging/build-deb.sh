#!/usr/bin/env bash
# Build the resource-agents-rs .deb (and, where rpmbuild exists, the .rpm)
# from already built agent binaries.
#
#   packaging/build-deb.sh [--bin-dir DIR] [--vd-bin PATH] [--vm-bin PATH] [--out DIR] [--no-rpm]
#
# --bin-dir defaults to the release build (built here if missing).
# --vd-bin is the VirtualDomain agent, built in its own workspace (it links
# libvirt dynamically; see agents/virtualdomain/README.md), e.g.
#   (cd agents/virtualdomain && RUSTFLAGS='-C target-feature=-crt-static' \
#       cargo build --release --target x86_64-unknown-linux-gnu)
#   --vd-bin agents/virtualdomain/target/x86_64-unknown-linux-gnu/release/VirtualDomain
# A VirtualDomain in --bin-dir is taken too. With it the package depends on
# libvirt0 (the .rpm on libvirt-libs). --vm-bin is the rgmanager vm persona
# (agents/rgmanager-vm, built in the same workspace with --workspace);
# default: `vm` beside --vd-bin, else in --bin-dir. Layout:
#   /usr/lib/ocf/resource.d/heartbeat-rs/<Agent>        the OCF agents
#   /usr/share/cluster/<persona>.sh                      rgmanager personas
#   /usr/share/man/man7/ocf_heartbeat-rs_<Agent>.7.gz    generated from the meta-data
#   /usr/share/resource-agents-rs/<Agent>.xml           the meta-data
#   /usr/sbin/heartbeat-rs-dropin                        opt-in drop-in under heartbeat/
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BIN_DIR= VD_BIN= VM_BIN= OUT=$TOP/target/packages RPM=1
while [ $# -gt 0 ]; do
    case $1 in
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --vd-bin) VD_BIN=$2; shift 2 ;;
        --vm-bin) VM_BIN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-rpm) RPM=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$BIN_DIR" ]; then
    (cd "$TOP" && cargo build --release --bins)
    BIN_DIR=$TOP/target/x86_64-unknown-linux-gnu/release
fi
if [ -n "$VD_BIN" ]; then
    [ -x "$VD_BIN" ] || { echo "--vd-bin $VD_BIN: not an executable" >&2; exit 1; }
    VD_BIN=$(realpath "$VD_BIN")
    [ -z "$VM_BIN" ] && [ -x "$(dirname "$VD_BIN")/vm" ] && VM_BIN=$(dirname "$VD_BIN")/vm
fi
if [ -n "$VM_BIN" ]; then
    [ -x "$VM_BIN" ] || { echo "--vm-bin $VM_BIN: not an executable" >&2; exit 1; }
    VM_BIN=$(realpath "$VM_BIN")
fi
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$TOP/Cargo.toml" | head -1)
AGENTS=(Filesystem LVM-activate LVM iscsi VirtualDomain Xen)
PERSONAS=(fs lvm vm)

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
OCF=$ROOT/usr/lib/ocf/resource.d/heartbeat-rs
install -d "$OCF" "$ROOT/usr/share/man/man7" "$ROOT/usr/share/resource-agents-rs" \
    "$ROOT/usr/share/doc/resource-agents-rs" "$ROOT/usr/sbin"
found=()
for a in "${AGENTS[@]}"; do
    bin=$BIN_DIR/$a
    [ "$a" = VirtualDomain ] && [ -n "$VD_BIN" ] && bin=$VD_BIN
    [ -x "$bin" ] || continue
    found+=("$a")
    install -m 0755 "$bin" "$OCF/$a"
    "$bin" meta-data > "$ROOT/usr/share/resource-agents-rs/$a.xml"
    "$bin" --man | gzip -9n > "$ROOT/usr/share/man/man7/ocf_heartbeat-rs_$a.7.gz"
done
[ ${#found[@]} -gt 0 ] || { echo "no agent binaries in $BIN_DIR" >&2; exit 1; }
for p in "${PERSONAS[@]}"; do
    bin=$BIN_DIR/$p
    [ "$p" = vm ] && [ -n "$VM_BIN" ] && bin=$VM_BIN
    [ -x "$bin" ] || continue
    install -d "$ROOT/usr/share/cluster"
    install -m 0755 "$bin" "$ROOT/usr/share/cluster/$p.sh"
done
install -m 0755 "$HERE/heartbeat-rs-dropin" "$ROOT/usr/sbin/heartbeat-rs-dropin"
install -m 0644 "$TOP/README.md" "$ROOT/usr/share/doc/resource-agents-rs/README.md"
printf 'resource-agents-rs\nLicense: GPL-2.0-or-later\n' > "$ROOT/usr/share/doc/resource-agents-rs/copyright"

depends= linking="statically
 linked"
if [ -x "$OCF/VirtualDomain" ] || [ -x "$ROOT/usr/share/cluster/vm.sh" ]; then
    depends="Depends: libvirt0"
    linking="statically
 linked (VirtualDomain dynamically, against libvirt)"
fi
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
    rm -rf "$ROOT/DEBIAN"
    TOPDIR=$STAGE/rpm
    mkdir -p "$TOPDIR"
    rpmbuild -bb --quiet \
        --define "_topdir $TOPDIR" --define "_rpmdir $OUT" --define "_build_id_links none" --define "__os_install_post %{nil}" \
        --define "version $VERSION" --define "stage $ROOT" \
        "$HERE/resource-agents-rs.spec" >/dev/null
    find "$OUT" -name 'resource-agents-rs-*.rpm' -newer "$HERE/build-deb.sh" -print
fi
