#!/usr/bin/env bash
# mk/install.sh — install liveroot as a packager would (`make install`, and `make deb` stages
# with it). Environment: PREFIX (default /usr/local), DESTDIR (a staging root, default none),
# LIVEROOT (the binary to install, default build/liveroot), PUBLISHER (the build with the
# publisher's tools, default build/publisher/liveroot).
#
#   PREFIX/sbin/liveroot                        the binary (static): the box's build
#   PREFIX/lib/liveroot/publisher/liveroot      the publisher's build (every applet and `publish`)
#   PREFIX/lib/liveroot/bin/APPLET              one relative link per `liveroot --list` name, and
#                                               one to the publisher's build per applet only it has
#   PREFIX/lib/liveroot/mk/*.sh, initramfs-skel/  the publisher's scripts and the tree they expect
#   PREFIX/bin/liveroot-{sign,mkflash,mkinitramfs,kernel}   wrappers that run them
#   PREFIX/share/man/man8/liveroot.8, liveroot-APPLET.8
#   PREFIX/share/doc/liveroot/README.md, docs/*.md
#
# The applet links go to a directory of their own, not to PATH: liveroot's losetup must not
# shadow util-linux's /usr/sbin/losetup (nor its man page: hence liveroot-losetup.8), and
# `migrate` is too generic a name for sbin. `liveroot APPLET` reaches every applet from PATH.
# Not installed: mk/bundle.sh, mkimage.sh, demo.sh, bench.sh, size.sh and stockinit/ (tests,
# the sample image, benchmarks: they need the source tree).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
root=${DESTDIR:-}
bin=${LIVEROOT:-$top/build/liveroot}
pub=${PUBLISHER:-$top/build/publisher/liveroot}
die() { echo "install: $*" >&2; exit 1; }
[[ $prefix == /* ]] || die "PREFIX=$prefix: must be an absolute path"
[[ -x $bin ]] || die "$bin: missing (run make build)"
[[ -x $pub ]] || die "$pub: missing (run make build)"
applets=$("$bin" --list) || die "$bin --list failed"
[[ -n $applets ]] || die "$bin --list: no applets"
pub_applets=$("$pub" --list) || die "$pub --list failed"

d=$root$prefix
lib=$prefix/lib/liveroot
umask 022
install -d "$d/sbin" "$d/bin" "$root$lib/bin" "$root$lib/publisher" "$root$lib/mk" "$d/share/man/man8" "$d/share/doc/liveroot/docs"
install -m 0755 "$bin" "$d/sbin/liveroot"
install -m 0755 "$pub" "$root$lib/publisher/liveroot"

# Relative links, as `liveroot --install` makes them but valid wherever DESTDIR is unpacked.
for a in $applets; do
	[[ $a =~ ^[a-z0-9-]+$ ]] || die "$a: not an applet name"
	ln -sfn ../../../sbin/liveroot "$root$lib/bin/$a"
done
for a in $pub_applets; do
	[[ $a =~ ^[a-z0-9-]+$ ]] || die "$a: not an applet name"
	[[ -L $root$lib/bin/$a ]] || ln -sfn ../publisher/liveroot "$root$lib/bin/$a"
done

tools=(sign mkflash mkinitramfs kernel)
for t in "${tools[@]}"; do
	install -m 0755 "$top/mk/$t.sh" "$root$lib/mk/$t.sh"
done
# Sourced by mkflash.sh and mkinitramfs.sh (the recovery hash's check; Secure Boot signing).
install -m 0644 "$top/mk/recovery-hash.sh" "$root$lib/mk/recovery-hash.sh"
install -m 0644 "$top/mk/sb.sh" "$root$lib/mk/sb.sh"
rm -rf "$root$lib/initramfs-skel"
cp -R --no-preserve=ownership "$top/initramfs-skel" "$root$lib/initramfs-skel"

# The scripts find mk/ and initramfs-skel/ beside each other ($top) and the binaries in a build
# directory; the wrappers give them the installed binaries (the box's for the initramfs, the
# publisher's for its tools) and a throw-away build directory holding only a link to the first.
# Everything else (KERNEL_DIR, SQUASHFS, PUBKEY, ...) is the caller's.
for t in "${tools[@]}"; do
	cat >"$d/bin/liveroot-$t" <<EOF
#!/bin/sh
# liveroot-$t: runs $lib/mk/$t.sh with the installed liveroot (see its header for the
# environment it reads; \`man liveroot\`, README "Installing liveroot").
set -e
export LIVEROOT="\${LIVEROOT:-$prefix/sbin/liveroot}"
export PUBLISHER="\${PUBLISHER:-$lib/publisher/liveroot}"
b=\$(mktemp -d "\${TMPDIR:-/tmp}/liveroot-$t.XXXXXX")
trap 'rm -rf "\$b"' EXIT INT TERM
ln -s "\$LIVEROOT" "\$b/liveroot"
BUILD="\${BUILD:-\$b}" "$lib/mk/$t.sh" "\$@"
EOF
	chmod 0755 "$d/bin/liveroot-$t"
done

install -m 0644 "$top"/man/*.8 "$d/share/man/man8/"
install -m 0644 "$top/README.md" "$d/share/doc/liveroot/README.md"
install -m 0644 "$top"/docs/*.md "$d/share/doc/liveroot/docs/"
echo "install: liveroot into ${root}${prefix} (applet links in $lib/bin)"
