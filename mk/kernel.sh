#!/usr/bin/env bash
# mk/kernel.sh DIR — fetch the kernel the QEMU tests and the demo boot.
#
# DIR/vmlinuz, DIR/kver, DIR/modules/lib/modules/<kver> (depmod run there).
# Default: Debian's generic kernel (linux-image-amd64: USB, SATA/PATA, MMC/SD, NVMe, NICs, the
# watchdog; what a real box needs), resolved from the meta package and unpacked with dpkg-deb: no
# root-owned install, no initramfs hooks. KERNEL_FLAVOUR=cloud: Debian's cloud kernel instead
# (linux-image-cloud-amd64: smaller, virtio only, no USB or MMC: QEMU and VMs only).
# KERNEL_MODULES=/lib/modules/<kver>: use the host's kernel instead (vmlinuz from /boot).
# KERNEL_DEB=file.deb: unpack that package instead of downloading (offline machines, caches).
# Idempotent: does nothing when DIR is complete and was made from the same source.
set -euo pipefail

dir=${1:?usage: mk/kernel.sh DIR}
src=${KERNEL_MODULES:+host:$KERNEL_MODULES}
src=${src:-${KERNEL_DEB:+deb:$KERNEL_DEB}}
case ${KERNEL_FLAVOUR:-generic} in
generic) meta=linux-image-amd64 ;;
cloud) meta=linux-image-cloud-amd64 ;;
*) echo "kernel: KERNEL_FLAVOUR=$KERNEL_FLAVOUR: expected generic or cloud" >&2; exit 1 ;;
esac
src=${src:-apt:$meta}

complete() {
	[[ -s $dir/kver && -s $dir/vmlinuz && -s $dir/source ]] || return 1
	[[ $(cat "$dir/source") == "$src" ]] || return 1
	[[ -s $dir/modules/lib/modules/$(cat "$dir/kver")/modules.dep ]]
}
if complete; then
	exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/modules/lib/modules"

if [[ -n ${KERNEL_MODULES:-} ]]; then
	kver=$(basename "$KERNEL_MODULES")
	[[ -f /boot/vmlinuz-$kver ]] || { echo "kernel: /boot/vmlinuz-$kver: not found" >&2; exit 1; }
	[[ -f $KERNEL_MODULES/modules.dep ]] || { echo "kernel: $KERNEL_MODULES/modules.dep: not found" >&2; exit 1; }
	cp /boot/vmlinuz-"$kver" "$dir/vmlinuz"
	# The host's tree is already depmod'ed; link it rather than copy hundreds of MB.
	ln -s "$(realpath "$KERNEL_MODULES")" "$dir/modules/lib/modules/$kver"
else
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if [[ -n ${KERNEL_DEB:-} ]]; then
		deb=$KERNEL_DEB
	else
		if ! apt-cache show "$meta" >/dev/null 2>&1; then
			echo "kernel: apt has no package lists; running apt-get update"
			apt-get update -qq
		fi
		# The meta package depends on exactly one versioned image package.
		pkg=$(apt-cache depends "$meta" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
		[[ -n $pkg ]] || { echo "kernel: cannot resolve $meta" >&2; exit 1; }
		echo "kernel: downloading $pkg"
		# apt's sandbox user must be able to write the download directory.
		chmod 0777 "$tmp"
		(cd "$tmp" && apt-get download -q "$pkg" >/dev/null)
		deb=$(ls "$tmp"/*.deb)
	fi
	dpkg-deb -x "$deb" "$tmp/root"
	vmlinuz=$(ls "$tmp"/root/boot/vmlinuz-* | head -n1)
	kver=${vmlinuz##*/vmlinuz-}
	cp "$vmlinuz" "$dir/vmlinuz"
	# Debian moved /lib to /usr/lib (trixie); accept either layout.
	for m in "$tmp/root/lib/modules/$kver" "$tmp/root/usr/lib/modules/$kver"; do
		if [[ -d $m ]]; then
			mv "$m" "$dir/modules/lib/modules/$kver"
			break
		fi
	done
	[[ -d $dir/modules/lib/modules/$kver ]] || { echo "kernel: no modules in $deb" >&2; exit 1; }
	cp "$tmp/root/boot/config-$kver" "$dir/config" 2>/dev/null || true
	depmod -b "$dir/modules" "$kver"
fi
echo "$kver" >"$dir/kver"
echo "$src" >"$dir/source"
echo "kernel: $kver in $dir"
