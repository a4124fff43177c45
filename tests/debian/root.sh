#!/usr/bin/env bash
# tests/debian/root.sh NAME — a real Debian root for the tests, as a tarball, built once and cached.
#
# NAME is v1 (bookworm as released: mmdebstrap minbase + systemd-sysv, udev, kmod, e2fsprogs,
# iproute2, procps and the kernel package KERNEL1 pinned below) or v2 (v1 after
# `apt-get dist-upgrade` from bookworm-updates and bookworm-security with the apt cache cleaned:
# a month of security updates, which brings KERNEL2 beside KERNEL1). Prints the tarball's path.
#
# The tests' own changes (and nothing else): root may log in without a password and is logged
# in on the serial console by itself (the scenarios type commands there, as a person would).
# Cached under $LIVEROOT_CACHE (default /var/cache/liveroot), keyed by this script: a second run
# on the same machine is instant; a fresh machine downloads about 200 MB from deb.debian.org.
# Pinned kernel packages: when the mirror no longer has one of them, this fails (update the
# pins); when the two turn out to have the same ABI, it fails too (the tests would prove nothing).
#
# `root.sh kernel2-deb` prints the path of KERNEL2's own .deb, kept from the v2 build (the
# installed-disk scenario installs it with dpkg, as an administrator would).
set -euo pipefail
KERNEL1=linux-image-6.1.0-50-amd64=6.1.176-1
KERNEL2=linux-image-6.1.0-57-amd64=6.1.192-3
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
EPOCH=1764547200 # 2025-12-01: mmdebstrap pins every timestamp it makes to it

name=${1:?usage: tests/debian/root.sh v1|v2|kernel2-deb}
cache=${LIVEROOT_CACHE:-/var/cache/liveroot}/debian
die() { echo "debian-root: $*" >&2; exit 1; }
abi() { local p=${1%%=*}; p=${p#linux-image-}; echo "${p}"; }
[[ $(abi "$KERNEL1") != "$(abi "$KERNEL2")" ]] ||
	die "$KERNEL1 and $KERNEL2 have the same ABI: the kernel-update tests would prove nothing"
key=$(cat "$0" | sha256sum | cut -c1-12)
deb=$cache/kernel2-$key.deb
if [[ $name == kernel2-deb ]]; then
	[[ -s $deb ]] || "$0" v2 >/dev/null || exit
	[[ -s $deb ]] || die "v2 was built without keeping ${KERNEL2%%=*}'s package"
	echo "$deb"
	exit 0
fi
out=$cache/$name-$key.tar
if [[ -s $out ]]; then
	echo "$out"
	exit 0
fi
command -v mmdebstrap >/dev/null || {
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
} || die "cannot install mmdebstrap"
mkdir -p "$cache"

case $name in
v1) ;;
v2)
	;;
*) die "$name: expected v1 or v2" ;;
esac

tmp=$(mktemp -d "$cache/.root.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
echo "debian-root: building $name (mmdebstrap, about 200 MB from $MIRROR)" >&2
hooks=(
	# root logs in without a password, and is logged in on ttyS0 by itself.
	--customize-hook='chroot "$1" passwd -d root >/dev/null'
	--customize-hook='mkdir -p "$1/etc/systemd/system/serial-getty@ttyS0.service.d"'
	--customize-hook='printf "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %%I \$TERM\n" >"$1/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"'
	--customize-hook='echo debian-live >"$1/etc/hostname"'
	--customize-hook='rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"'
)
common=(--variant=minbase --aptopt='APT::Install-Recommends "false"' --skip=cleanup/reproducible/machine-id
	--include=systemd-sysv,udev,kmod,e2fsprogs,iproute2,procps,"$KERNEL1")
if [[ $name == v1 ]]; then
	SOURCE_DATE_EPOCH=$EPOCH mmdebstrap "${common[@]}" "${hooks[@]}" bookworm "$tmp/root.tar" \
		"deb $MIRROR bookworm main" >"$tmp/log" 2>&1 || { tail -n 30 "$tmp/log" >&2; die "mmdebstrap $name failed"; }
else
	# v1 upgraded: the same packages, the updates and the security archive added, dist-upgrade,
	# the pinned new kernel (linux-image-amd64 would pull whatever is newest).
	SOURCE_DATE_EPOCH=$EPOCH mmdebstrap "${common[@]}" "${hooks[@]}" \
		--customize-hook='chroot "$1" apt-get -qq update' \
		--customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq dist-upgrade' \
		--customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install $KERNEL2" \
		--customize-hook="cp \"\$1\"/var/cache/apt/archives/${KERNEL2%%=*}_*.deb \"$tmp/kernel2.deb\"" \
		--customize-hook='chroot "$1" apt-get clean' \
		bookworm "$tmp/root.tar" "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
		"deb $SECURITY bookworm-security main" >"$tmp/log" 2>&1 || { tail -n 30 "$tmp/log" >&2; die "mmdebstrap $name failed"; }
fi
# The pins, checked in what was built: the modules of each kernel it must carry.
want=("$(abi "$KERNEL1")")
[[ $name == v2 ]] && want+=("$(abi "$KERNEL2")")
list=$(tar -tf "$tmp/root.tar")
for k in "${want[@]}"; do
	grep -qE "^\./(usr/)?lib/modules/$k/modules\.dep$" <<<"$list" || die "$name: no modules.dep for $k in the root"
	grep -qE "^\./boot/vmlinuz-$k$" <<<"$list" || die "$name: no /boot/vmlinuz-$k in the root"
done
# One root per name: those of older inputs go.
rm -f "$cache/$name"-*.tar
if [[ $name == v2 ]]; then
	dpkg-deb -f "$tmp/kernel2.deb" Package Version | tr '\n' ' ' | grep -q "^Package: ${KERNEL2%%=*} Version: ${KERNEL2#*=} $" ||
		die "the kept package is not $KERNEL2: $(dpkg-deb -f "$tmp/kernel2.deb" Package Version | tr '\n' ' ')"
	rm -f "$cache"/kernel2-*.deb
	mv "$tmp/kernel2.deb" "$deb"
fi
mv "$tmp/root.tar" "$out"
echo "debian-root: $out ($(($(stat -c %s "$out") >> 20)) MiB, $(($(date +%s) - t0)) s)" >&2
echo "$out"
