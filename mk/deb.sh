#!/usr/bin/env bash
# mk/deb.sh — a Debian package of what `make install PREFIX=/usr` installs (`make deb`).
# Environment: LIVEROOT (the binary, default build/liveroot), PUBLISHER (the publisher's build,
# default build/publisher/liveroot), OUT (directory for the .deb, default build), DEB_VERSION
# (default Cargo.toml's version), DEB_ARCH (default amd64: the binary is built for x86_64),
# DEB_MAINTAINER (default the last commit's author), DEB_COMPRESS (dpkg-deb -Z: default xz; the
# tests use none, their debug binary is 20 MB).
# Prints the package's path. Reproducible: dpkg-deb takes mtimes from SOURCE_DATE_EPOCH, owners
# are root, man pages are gzip -n.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$top/build}
bin=${LIVEROOT:-$top/build/liveroot}
pub=${PUBLISHER:-$top/build/publisher/liveroot}
die() { echo "deb: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb: not found (a Debian system builds the package)"
version=${DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n 1)}
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "version '$version': not a Debian version"
arch=${DEB_ARCH:-amd64}
maint=${DEB_MAINTAINER:-$(git -C "$top" log -1 --format='%an <%ae>' 2>/dev/null || true)}
[[ $maint == *'<'*'@'*'>' ]] || maint="liveroot developers <liveroot@localhost>"

mkdir -p "$out"
stage=$(mktemp -d "$out/.deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
DESTDIR=$stage PREFIX=/usr LIVEROOT=$bin PUBLISHER=$pub "$top/mk/install.sh" >/dev/null
gzip -9n "$stage"/usr/share/man/man8/*.8
cat >"$stage/usr/share/doc/liveroot/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: liveroot

Files: *
Copyright: the liveroot authors
License: GPL-2.0-or-later
 On Debian systems, the full text of the GNU General Public License version 2 can be found in
 /usr/share/common-licenses/GPL-2.
EOF

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: liveroot
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $size
Section: admin
Priority: optional
Recommends: minisign, squashfs-tools
Suggests: busybox-static, cpio, kmod, fdisk, dosfstools, mtools, syslinux, syslinux-common, systemd-boot-efi, e2fsprogs
Description: boot Linux from a live image and move it onto a disk without a reboot
 liveroot is one static multicall binary (losetup, imgcheck, dmsnap, mdmirror,
 liveinit, imgfetch, syncflash, migrate) and a short /init that boot a box from
 a squashfs image on flash, verified against a minisign-signed manifest and
 through dm-verity, under a RAM overlay and a one-legged md raid1. Boxes fetch
 newer signed images over HTTP (delta downloads, phased rollout), write them to
 the flash safely against power cuts, fall back by themselves when a new image
 does not come up, and move onto a disk without a reboot.
 .
 The binary is /usr/sbin/liveroot; the applets are "liveroot APPLET" (links in
 /usr/lib/liveroot/bin, kept out of PATH so that liveroot's losetup does not
 shadow util-linux's). liveroot-sign, liveroot-mkflash, liveroot-mkinitramfs
 and liveroot-kernel are the publisher's tools; they run the publisher's build,
 /usr/lib/liveroot/publisher/liveroot (the same applets and "publish").
EOF
deb=$out/liveroot_${version}_$arch.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
