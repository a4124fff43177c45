#!/usr/bin/env bash
# mk/mkflash.sh OUT — a whole-disk image to dd onto a USB stick or a CF/SD card; it boots by
# itself under legacy BIOS (syslinux) and UEFI (systemd-boot at the removable path).
#
# The disk layout and the boot entries are core/src/install.rs's (`liveroot publish flash`, the
#   writer migrate shares): one MBR partition from 1 MiB to the end, FAT32 labelled LABEL,
#   mbr.bin as the MBR's code; `syslinux --install` then adds ldlinux.sys and the boot sector's
#   code. On the partition:
#   /boot/vmlinuz /boot/initrd.img                    kernel, initramfs (with PUBKEY)
#   /boot/syslinux/{ldlinux.sys,ldlinux.c32,syslinux.cfg,mbr.bin}
#   /EFI/BOOT/BOOTX64.EFI                             systemd-boot
#   /loader/loader.conf /loader/entries/liveroot.conf
#   /LiveOS/squashfs.img SHA256SUMS [SHA256SUMS.minisig] [squashfs.img.verity .roothash]
#          [vmlinuz initrd.img]                       a release's own, also copied to /boot
#   /LiveOS/trial.state (8 KiB, no record: the boot's trial state, see core/src/trial.rs)
#   [/LiveOS/settings]  SETTINGS, if given (core/src/settings.rs)
# Both entries boot `root=live:LABEL=LABEL console=tty0 console=ttyS0,115200 APPEND`.
# With SB_KEY and SB_CERT (Secure Boot, README "Secure Boot"), also:
#   /EFI/Linux/liveroot.efi    unified kernel image: systemd's EFI stub with .osrel, .cmdline (the
#                              line above), .initrd, .linux (liveroot publish uki), signed
#   /EFI/BOOT/BOOTX64.EFI      systemd-boot, signed; its entry starts liveroot.efi, whose command
#                              line is its own: one edited on the FAT is ignored under Secure Boot
# and syslinux (BIOS) still boots /boot/vmlinuz and /boot/initrd.img as before. When the
# initramfs holds a recovery hash (RECOVERY_HASH=, or a release made with it), also:
#   /EFI/Linux/liveroot-recovery.efi  the same, its command line ending in liveroot.recovery,
#                              signed; /loader/entries/liveroot-recovery.conf starts it ("liveroot
#                              recovery"; the default stays liveroot.conf)
# A release for Secure Boot (make release SB_KEY=: DIR also holds liveroot.efi, signed) gives its
# own liveroot.efi, as it is: its sealed command line must be this flash's (LABEL, APPEND).
#
# Environment:
#   SQUASHFS=DIR   squashfs.img + SHA256SUMS (+ SHA256SUMS.minisig, sidecars); empty: the sample
#                  image's LiveOS/ from BUILD/live-flash.img (make image). A release of
#                  `make release` (DIR also holds vmlinuz and initrd.img, listed in its signed
#                  SHA256SUMS) boots its own kernel and initramfs as they are: then KERNEL_DIR,
#                  INITRD and MIN_VERSION are not used, and the signature must verify with the key
#                  inside that initramfs
#   PUBKEY=file    minisign public key put in the initramfs (then DIR's signature must verify);
#                  with a release: the key its initramfs must hold (else a refusal)
#   LABEL=LIVE     FAT label: 1-11 of A-Z 0-9 _ -
#   SIZE_MIB=N     disk size; default (core/src/install.rs): room for syncflash to write the next
#                  image beside this one
#   APPEND="..."   appended last to the kernel command line of both entries
#   SETTINGS=file  copied to LiveOS/settings, the settings a person may edit on the stick (no
#                  command line under Secure Boot): checked first as the boot reads it
#                  (liveroot publish settings; core/src/settings.rs)
#   RECOVERY_HASH='$6$...' or RECOVERY_HASH_FILE=file  the recovery password's hash (openssl
#                  passwd -6), baked into the initramfs (a release must already hold the same)
#   KERNEL_DIR     mk/kernel.sh's output (default BUILD/kernel); INITRD=file: use this initramfs
#                  instead of building one (tests); MIN_VERSION as mk/mkinitramfs.sh
#   PUBLISHER      liveroot built with the publisher's tools (default BUILD/publisher/liveroot):
#                  `publish` writes the disk and the unified images; BUILD/liveroot, the box's
#                  build, is the one in the initramfs
# Reproducible: volume id and disk identifier from SOURCE_DATE_EPOCH, every timestamp pinned,
# files written in a fixed order. No root, no loop devices: liveroot publish flash, then
# syslinux --install --offset. A refusal prints `mkflash: object: reason` and leaves nothing behind.
# Rebuilds only when an input changed (stamp beside OUT).
set -euo pipefail

out=${1:?usage: mk/mkflash.sh OUT}
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
kdir=${KERNEL_DIR:-$build/kernel}
epoch=${SOURCE_DATE_EPOCH:-1700000000}
label=${LABEL:-LIVE}
append=${APPEND:-}
dir=${SQUASHFS:-}
pubkey=${PUBKEY:-}
size_mib=${SIZE_MIB:-}
initrd=${INITRD:-}
settings=${SETTINGS:-}
mbr=/usr/lib/syslinux/mbr/mbr.bin
ldlinux_c32=/usr/lib/syslinux/modules/bios/ldlinux.c32
sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
sb_key=${SB_KEY:-}
sb_cert=${SB_CERT:-}
uki=/EFI/Linux/liveroot.efi
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=$epoch
liveroot=$build/liveroot
publisher=${PUBLISHER:-$build/publisher/liveroot}

die() { echo "mkflash: $*" >&2; exit 1; }
# initrd_file INITRD PATH DIR: PATH out of the gzip'ed cpio INITRD into DIR (fails when INITRD is
# not one).
initrd_file() { (cd "$3" && gzip -dc <"$1" 2>/dev/null | cpio -id --quiet "$2" 2>/dev/null); }

# --- the inputs, checked before anything is written ---
[[ ${#label} -ge 1 && ${#label} -le 11 ]] || die "LABEL=$label: must be 1 to 11 characters (FAT label)"
[[ $label =~ ^[A-Z0-9_-]+$ ]] || die "LABEL=$label: only A-Z, 0-9, _ and - (FAT stores labels in upper case; the boot matches them exactly)"
[[ $append != *$'\n'* ]] || die "APPEND: must be one line"
[[ -z $size_mib || $size_mib =~ ^[0-9]+$ ]] || die "SIZE_MIB=$size_mib: expected a number of MiB"
[[ -z $pubkey || -r $pubkey ]] || die "$pubkey: cannot read (PUBKEY)"
release=
[[ -n $dir && -f $dir/vmlinuz && -f $dir/initrd.img ]] && release=1
[[ -z $release || -z $initrd ]] || die "INITRD=$initrd: $dir is a release with its own initrd.img (it boots as it is)"
kernel_file=$kdir/vmlinuz
[[ -n $release ]] && kernel_file=$dir/vmlinuz
for f in "$kernel_file" "$mbr" "$ldlinux_c32" "$sdboot" "$liveroot" "$publisher"; do
	[[ -r $f ]] || die "$f: missing (make deps installs syslinux, systemd-boot-efi; make kernel build)"
done
[[ -z $initrd || -r $initrd ]] || die "$initrd: cannot read (INITRD)"
# SETTINGS: what the boot would ignore in it is a refusal here (FILE: KEY: reason).
if [[ -n $settings ]]; then
	err=$("$publisher" publish settings "$settings" 2>&1 >/dev/null) || die "${err#publish: }"
fi
# Secure Boot: the pair checked now (sbsign would prompt for an encrypted key's password).
. "$top/mk/sb.sh"
sb_check "$sb_key" "$sb_cert"
. "$top/mk/recovery-hash.sh"
recovery_hash_check "$liveroot" || die "$RECOVERY_ERR"
if [[ -n $dir ]]; then
	[[ -d $dir ]] || die "$dir: not a directory (SQUASHFS)"
	[[ -f $dir/squashfs.img ]] || die "$dir: no squashfs.img (SQUASHFS=DIR holds squashfs.img and SHA256SUMS)"
	[[ -f $dir/SHA256SUMS ]] || die "$dir: no SHA256SUMS (SQUASHFS=DIR holds squashfs.img and SHA256SUMS)"
else
	[[ -f $build/live-flash.img ]] || die "$build/live-flash.img: missing (run make image, or give SQUASHFS=DIR)"
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.mkflash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

live=$tmp/LiveOS
mkdir -p "$live"
if [[ -n $dir ]]; then
	# The delta index only for the check below: the boot never reads it.
	for f in squashfs.img SHA256SUMS SHA256SUMS.minisig squashfs.img.verity squashfs.img.roothash squashfs.img.zidx; do
		[[ -f $dir/$f ]] && cp "$dir/$f" "$live/$f"
	done
	if [[ -n $release ]]; then
		# Checked with the pair below, then moved to /boot.
		cp "$dir/vmlinuz" "$dir/initrd.img" "$live/"
		for f in vmlinuz initrd.img; do
			grep -qE "^[0-9a-fA-F]{64} [ *]$f\$" "$live/SHA256SUMS" || die "$dir/$f: not listed in SHA256SUMS (a release signs its kernel and initramfs)"
		done
		# A release for Secure Boot (make release SB_KEY=): its signed unified image travels
		# with the pair, and the stick's loader starts it.
		if grep -qE "^[0-9a-fA-F]{64} [ *]liveroot.efi\$" "$live/SHA256SUMS"; then
			cp "$dir/liveroot.efi" "$live/" || die "$dir/liveroot.efi: listed in SHA256SUMS but missing"
		fi
	fi
else
	for f in squashfs.img SHA256SUMS SHA256SUMS.minisig squashfs.img.verity squashfs.img.roothash; do
		debugfs -R "dump /LiveOS/$f $live/$f" "$build/live-flash.img" >/dev/null 2>&1 || true
		[[ -s $live/$f ]] || rm -f "$live/$f"
	done
	[[ -f $live/squashfs.img && -f $live/SHA256SUMS ]] || die "$build/live-flash.img: no LiveOS/squashfs.img with SHA256SUMS"
fi
src=${dir:-$build/live-flash.img}
# What the boot will check, checked now: a flash that cannot boot is no use.
(cd "$live" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1) ||
	die "$src: SHA256SUMS does not match its files (the boot would refuse it)"
if [[ -n $release ]]; then
	# The key the release's initramfs will check everything with, read out of it.
	mkdir "$tmp/initrd"
	initrd_file "$live/initrd.img" etc/liveroot/pubkey "$tmp/initrd" ||
		die "$dir/initrd.img: not a gzip'ed cpio archive (not an initramfs of make release)"
	inkey=$tmp/initrd/etc/liveroot/pubkey
	[[ -s $inkey ]] || die "$dir/initrd.img: holds no etc/liveroot/pubkey (make release puts PUBKEY there)"
	if [[ -n $pubkey ]] && ! cmp -s <(grep -v '^untrusted comment:' "$pubkey") <(grep -v '^untrusted comment:' "$inkey"); then
		die "$pubkey: not the key inside $dir/initrd.img (PUBKEY must be the release's key)"
	fi
	pubkey=$inkey
fi
if [[ -n $pubkey ]]; then
	[[ -f $live/SHA256SUMS.minisig ]] ||
		die "$src: no SHA256SUMS.minisig (PUBKEY given: the boot would refuse an unsigned image)"
	minisign -V -q -p "$pubkey" -m "$live/SHA256SUMS" -x "$live/SHA256SUMS.minisig" >/dev/null 2>&1 ||
		die "$src: SHA256SUMS.minisig does not verify with $pubkey (the boot would refuse it)"
fi

rm -f "$live/squashfs.img.zidx"
[[ -z $settings ]] || cp "$settings" "$live/settings"

# --- up to date? ---
stamp=$(dirname "$out")/.$(basename "$out").stamp
inputs=$( {
	printf '%s\n' "$epoch" "$label" "$append" "$size_mib" "${MIN_VERSION:-0}" "$initrd" "$release"
	sha256sum "$0" "$top/mk/mkinitramfs.sh" "$mbr" "$ldlinux_c32" "$sdboot" "$live"/*
	[[ -z $release ]] && sha256sum "$kdir/vmlinuz" "$kdir/kver"
	[[ -n $pubkey ]] && sha256sum <"$pubkey"
	[[ -n $initrd ]] && sha256sum <"$initrd"
	[[ -n $sb_key ]] && sha256sum "$sb_efistub" "$sb_key" "$sb_cert"
	[[ -n ${RECOVERY_HASH:-} ]] && echo "recovery $RECOVERY_HASH"
	sha256sum <"$liveroot"
	sha256sum <"$publisher"
	[[ -z $initrd && -z $release ]] && (cd "$top/initramfs-skel" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	true
} | sha256sum | cut -c1-64)
if [[ -f $out && -f $stamp && $(cat "$stamp") == "$inputs" ]]; then
	echo "flash: $out (up to date)"
	exit 0
fi

# --- the files of the partition (liveroot pins their times) ---
stage=$tmp/stage
mkdir -p "$stage"/{boot/syslinux,EFI/BOOT}
mv "$live" "$stage/LiveOS"
# The trial state (core/src/trial.rs): made once here, only ever rewritten in place afterwards.
"$liveroot" liveinit trial create "$stage/LiveOS/trial.state" || die "LiveOS/trial.state: cannot create it"
if [[ -n $release ]]; then
	# The loader's copy in /boot; the pair's own stays in LiveOS/ with its image: the boot
	# starts a pair's kernel by kexec when it is not the loader's (core/src/boot/kexec.rs).
	cp "$stage/LiveOS/vmlinuz" "$stage/boot/vmlinuz"
	cp "$stage/LiveOS/initrd.img" "$stage/boot/initrd.img"
else
	cp "$kdir/vmlinuz" "$stage/boot/vmlinuz"
fi
if [[ -n $release ]]; then
	:
elif [[ -n $initrd ]]; then
	cp "$initrd" "$stage/boot/initrd.img"
else
	PUBKEY=$pubkey KERNEL_DIR=$kdir "$top/mk/mkinitramfs.sh" "$tmp/initrd.img" >/dev/null ||
		die "initramfs: mk/mkinitramfs.sh failed"
	mv "$tmp/initrd.img" "$stage/boot/initrd.img"
fi
cp "$mbr" "$stage/boot/syslinux/mbr.bin"
cp "$ldlinux_c32" "$stage/boot/syslinux/ldlinux.c32"
cp "$sdboot" "$stage/EFI/BOOT/BOOTX64.EFI"
sb_args=() inhash=
if [[ -n $sb_key ]]; then
	mkdir -p "$stage/EFI/Linux"
	printf 'NAME=liveroot\nID=liveroot\nPRETTY_NAME="liveroot (%s)"\n' "$label" >"$tmp/os-release"
	if [[ -f $stage/LiveOS/liveroot.efi ]]; then
		# A signed release's own image, as it is: its command line was sealed at make release.
		err=$("$publisher" publish cmdline --label "$label" --append="$append" "$stage/LiveOS/liveroot.efi" 2>&1 >/dev/null) ||
			die "$dir/liveroot.efi: ${err#publish: "$stage"/LiveOS/liveroot.efi: } (make release LABEL= APPEND= as here)"
		cp "$stage/LiveOS/liveroot.efi" "$stage$uki"
	else
		"$publisher" publish uki --stub "$sb_efistub" --linux "$stage/boot/vmlinuz" --initrd "$stage/boot/initrd.img" \
			--osrel "$tmp/os-release" --label "$label" --append="$append" "$tmp/liveroot.efi" >/dev/null 2>"$tmp/uki.err" ||
			die "$(sed -e 's/^publish: //' "$tmp/uki.err" | tail -n 1)"
		sb_sign "$tmp/liveroot.efi" "$stage$uki"
	fi
	sb_sign "$sdboot" "$stage/EFI/BOOT/BOOTX64.EFI"
	sb_args=(--uki "$uki")
	# Recovery (docs/trust.md): a second signed image whose line ends in liveroot.recovery, when
	# the initramfs holds a hash; /init asks for that password before the shell.
	mkdir "$tmp/rec"
	initrd_file "$stage/boot/initrd.img" etc/liveroot/recovery.hash "$tmp/rec" || true
	inhash=$(cat "$tmp/rec/etc/liveroot/recovery.hash" 2>/dev/null || true)
	[[ -z ${RECOVERY_HASH:-} || $inhash == "$RECOVERY_HASH" ]] ||
		die "RECOVERY_HASH: not the hash inside /boot/initrd.img (${release:+make release RECOVERY_HASH= bakes it; }${inhash:-it holds none})"
	if [[ -n $inhash ]]; then
		"$publisher" publish uki --stub "$sb_efistub" --linux "$stage/boot/vmlinuz" --initrd "$stage/boot/initrd.img" \
			--osrel "$tmp/os-release" --label "$label" --append="${append:+$append }liveroot.recovery" "$tmp/recovery.efi" >/dev/null 2>"$tmp/uki.err" ||
			die "$(sed -e 's/^publish: //' "$tmp/uki.err" | tail -n 1)"
		sb_sign "$tmp/recovery.efi" "$stage/EFI/Linux/liveroot-recovery.efi"
		sb_args+=(--recovery-uki /EFI/Linux/liveroot-recovery.efi)
	fi
fi

# --- the disk: the layout and the size are liveroot's (core/src/install.rs) ---
img=$tmp/flash.img
made=$("$publisher" publish flash --from "$stage" --label "$label" --mbr-code "$mbr" --append="$append" \
	--time "$epoch" ${size_mib:+--size-mib "$size_mib"} "${sb_args[@]}" "$img" 2>"$tmp/publish.err") ||
	die "$src: $(sed -e 's/^publish: //' -e "s|^$img: ||" "$tmp/publish.err" | tail -n 1)${SIZE_MIB:+ (SIZE_MIB=$SIZE_MIB)}"
# ldlinux.sys and the partition's boot code, as syslinux's installer writes them.
syslinux --install --offset $((1 << 20)) --directory /boot/syslinux "$img" ||
	die "$img: syslinux --install failed"
mv -f "$img" "$out"
echo "$inputs" >"$stamp"
echo "flash: $out ($made${sb_key:+; signed for Secure Boot: $uki}${inhash:+ and /EFI/Linux/liveroot-recovery.efi})"
