#!/usr/bin/env bash
# mk/release.sh — a signed release from a root filesystem: the image and the kernel and initramfs
# that belong to it, signed together (`make release` runs it; docs/fleet.md "Making a release").
#
#   ROOTFS=DIR|FILE.tar[.gz|.xz|.zst]  the OS root: a directory (mmdebstrap, debootstrap, a build
#                system's output) or a tarball (`docker export`, mmdebstrap's .tar)
#   KEY=minisign.key PUBKEY=minisign.pub  the release key; PUBKEY goes into the initramfs and must
#                be KEY's. An encrypted KEY reads its password from the first line of
#                KEY_PASSWORD_FILE (nothing is ever asked on a terminal)
#   VERSION=N    the release's version (the signed `version=N`)
#   OUT=DIR      made here, absent or empty before; nothing is left in it when anything fails
#   PREVIOUS=DIR the release before this one: it must verify with PUBKEY and be below VERSION
#   KVER=        the kernel (`uname -r`) when the root holds several
#   MIN_VERSION= ROLLOUT= EXPIRES=  as mk/mkinitramfs.sh and mk/sign.sh take them
#   RECOVERY_HASH= RECOVERY_HASH_FILE=  the recovery password (Secure Boot), as mk/mkinitramfs.sh
#   ROOT_MIB=    the inner file system's size (default: the root's size + 25 % + 256 MiB free)
#   MARK_GOOD=systemd|rc  put the shipped mark-good (dist/) into the image: a systemd unit enabled
#                for multi-user.target, or a line in /etc/rc.local
#   SB_KEY=db.key SB_CERT=db.pem  a release for Secure Boot (docs/trust.md): vmlinuz re-signed
#                with this pair (its vendor's signature removed: the kernel's kexec check reads
#                one), and liveroot.efi, a unified kernel image (systemd's EFI stub with the
#                root's os-release, the command line, initrd.img and vmlinuz) signed with it
#   LABEL=LIVE APPEND=  with SB_KEY only: the command line sealed in liveroot.efi,
#                `root=live:LABEL=LABEL console=tty0 console=ttyS0,115200 APPEND` (under Secure
#                Boot no loader can add to it; the per-box settings go in LiveOS/settings)
#   LIVEROOT=    the box's liveroot, put into the initramfs (default BUILD/liveroot)
#   PUBLISHER=   liveroot built with the publisher's tools, which write the sidecars, the index,
#                the trusted comment and liveroot.efi (default BUILD/publisher/liveroot)
#
# OUT: squashfs.img (holding LiveOS/rootfs.img, ext4), squashfs.img.verity/.roothash (dm-verity),
# squashfs.img.zidx (delta index), vmlinuz (the root's own kernel), initrd.img (liveroot's
# initramfs with the root's modules for that kernel, PUBKEY and MIN_VERSION), with SB_KEY
# liveroot.efi (the signed unified image), SHA256SUMS over all
# of them and SHA256SUMS.minisig (trusted comment `version=N ...`). The root is only read: what
# MARK_GOOD adds is written into the image, never into ROOTFS. No root needed (a tarball is
# unpacked under fakeroot then). Reproducible: the same inputs and SOURCE_DATE_EPOCH give the
# same bytes. Refusals print `release: object: reason` and exit 1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
liveroot=${LIVEROOT:-$build/liveroot}
publisher=${PUBLISHER:-$build/publisher/liveroot}
epoch=${SOURCE_DATE_EPOCH:-1700000000}
t0=$(date +%s)
die() { echo "release: $*" >&2; exit 1; }
step() { echo "release: [$(($(date +%s) - t0)) s] $*"; }

# Unpacking a tarball keeps its owners only as root: without root, the whole run goes under
# fakeroot, which remembers them for mke2fs.
if [[ -f ${ROOTFS:-} && $(id -u) != 0 && -z ${FAKEROOTKEY:-} ]]; then
	command -v fakeroot >/dev/null || die "${ROOTFS}: a tarball needs root or fakeroot to keep its owners"
	exec fakeroot -- "$0" "$@"
fi

# --- the inputs, all checked before anything is made ---
: "${ROOTFS:?ROOTFS=DIR or a tarball}" "${KEY:?KEY=minisign secret key}" "${PUBKEY:?PUBKEY=minisign public key}" \
	"${VERSION:?VERSION=N}" "${OUT:?OUT=directory to make}"
[[ $VERSION =~ ^[0-9]+$ ]] || die "VERSION=$VERSION: not a number"
min=${MIN_VERSION:-0}
[[ $min =~ ^[0-9]+$ ]] || die "MIN_VERSION=$min: not a number"
((10#$min <= 10#$VERSION)) || die "MIN_VERSION=$min: above VERSION=$VERSION (the release would refuse itself)"
[[ -z ${ROOT_MIB:-} || $ROOT_MIB =~ ^[0-9]+$ ]] || die "ROOT_MIB=$ROOT_MIB: expected a number of MiB"
case ${MARK_GOOD:-} in "" | systemd | rc) ;; *) die "MARK_GOOD=$MARK_GOOD: expected systemd or rc" ;; esac
[[ -e $ROOTFS ]] || die "$ROOTFS: no such file or directory (ROOTFS)"
[[ -r $KEY ]] || die "$KEY: cannot read (KEY)"
[[ -r $PUBKEY ]] || die "$PUBKEY: cannot read (PUBKEY)"
[[ -z ${KEY_PASSWORD_FILE:-} || -r $KEY_PASSWORD_FILE ]] || die "$KEY_PASSWORD_FILE: cannot read (KEY_PASSWORD_FILE)"
[[ -x $liveroot ]] || die "$liveroot: missing (run make build)"
[[ -x $publisher ]] || die "$publisher: missing (run make build)"
. "$top/mk/sb.sh"
sb_key=${SB_KEY:-}
sb_cert=${SB_CERT:-}
sb_check "$sb_key" "$sb_cert"
label=${LABEL:-LIVE}
append=${APPEND:-}
if [[ -n $sb_key ]]; then
	[[ ${#label} -le 11 && $label =~ ^[A-Z0-9_-]+$ ]] || die "LABEL=$label: 1 to 11 of A-Z, 0-9, _ and - (the stick's FAT label)"
	[[ $append != *$'\n'* ]] || die "APPEND: must be one line"
elif [[ -n ${LABEL:-}${APPEND:-} ]]; then
	die "LABEL=${LABEL:-}, APPEND=${APPEND:-}: only with SB_KEY (a release for Secure Boot seals its command line; otherwise make flash sets them)"
fi
. "$top/mk/recovery-hash.sh"
recovery_hash_check "$liveroot" || die "$RECOVERY_ERR"
for t in mke2fs debugfs mksquashfs minisign depmod modprobe; do
	command -v "$t" >/dev/null || die "$t: not installed (make deps)"
done
if [[ -e $OUT ]]; then
	[[ -d $OUT ]] || die "$OUT: exists and is not a directory (OUT)"
	[[ -z $(ls -A "$OUT") ]] || die "$OUT: exists and is not empty (OUT: a release is made whole, never over another)"
fi
out_parent=$(dirname "$OUT")
[[ -d $out_parent && -w $out_parent ]] || die "$out_parent: no such directory or not writable (OUT)"

tmp=$(mktemp -d "$out_parent/.release.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pw=${KEY_PASSWORD_FILE:-/dev/null}

# The key pair, proven on a probe before the long steps: a release the boxes' key cannot verify
# is no release.
echo "liveroot release key check" >"$tmp/probe"
minisign -S -s "$KEY" -m "$tmp/probe" -x "$tmp/probe.minisig" <"$pw" >"$tmp/sign.log" 2>&1 ||
	die "$KEY: cannot sign with it ($(grep -v '^$' "$tmp/sign.log" | tail -n 1)${KEY_PASSWORD_FILE:+; password from $KEY_PASSWORD_FILE}${KEY_PASSWORD_FILE:-; an encrypted key needs KEY_PASSWORD_FILE=})"
minisign -V -q -p "$PUBKEY" -m "$tmp/probe" -x "$tmp/probe.minisig" >/dev/null 2>&1 ||
	die "$KEY: does not match $PUBKEY (the boxes holding PUBKEY would refuse this release)"
rm -f "$tmp/probe" "$tmp/probe.minisig"

# version=N of a signed release directory, checked with PUBKEY.
release_version() {
	local d=$1 tc
	[[ -f $d/SHA256SUMS && -f $d/SHA256SUMS.minisig ]] || return 1
	tc=$(minisign -V -p "$PUBKEY" -m "$d/SHA256SUMS" -x "$d/SHA256SUMS.minisig" 2>/dev/null | sed -n 's/^Trusted comment: //p') || return 1
	sed -n 's/.*\bversion=\([0-9]\+\).*/\1/p' <<<"$tc"
}
if [[ -n ${PREVIOUS:-} ]]; then
	[[ -d $PREVIOUS ]] || die "$PREVIOUS: not a directory (PREVIOUS)"
	prev=$(release_version "$PREVIOUS") || die "$PREVIOUS: no SHA256SUMS signed with $PUBKEY (PREVIOUS must be a release of this key)"
	[[ -n $prev ]] || die "$PREVIOUS: its signature carries no version=N"
	((10#$prev < 10#$VERSION)) || die "VERSION=$VERSION: not above $PREVIOUS's version $prev (boxes on $prev would never take it)"
fi

# --- the root ---
root=$ROOTFS
if [[ -f $ROOTFS ]]; then
	step "unpacking $ROOTFS"
	tar -tf "$ROOTFS" >"$tmp/list" 2>"$tmp/tar.err" ||
		die "$ROOTFS: not a tar archive ($(head -n 1 "$tmp/tar.err" | sed 's/^tar: //'))"
	[[ -s $tmp/list ]] || die "$ROOTFS: an empty archive"
	mkdir "$tmp/root"
	tar -xpf "$ROOTFS" -C "$tmp/root" --numeric-owner --xattrs --xattrs-include='*' 2>"$tmp/tar.err" ||
		die "$ROOTFS: cannot unpack ($(head -n 1 "$tmp/tar.err" | sed 's/^tar: //'))"
	root=$tmp/root
elif [[ ! -d $ROOTFS ]]; then
	die "$ROOTFS: neither a directory nor a tarball (ROOTFS)"
fi
[[ -d $root/etc || -d $root/usr ]] || die "$ROOTFS: no etc/ or usr/ at its top: not a root file system"

# The kernels the root carries: /boot/vmlinuz-KVER with (usr/)lib/modules/KVER (Debian, Ubuntu),
# or usr/lib/modules/KVER/vmlinuz (Fedora, Arch). Paths are looked up inside the root only: an
# absolute link there (lib -> /usr/lib) must never reach the build machine's own files.
rootreal=$(realpath -e "$root")
inside() { # PATH -> its real path, when that is inside the root
	local r
	r=$(realpath -e "$1" 2>/dev/null) || return 1
	[[ $r == "$rootreal"/* ]] && echo "$r"
}
modules_of() { # KVER -> the root's modules directory
	local m
	for m in "$root/usr/lib/modules/$1" "$root/lib/modules/$1"; do
		[[ -d $m ]] && inside "$m" && return 0
	done
	return 1
}
kernel_of() { # KVER -> the kernel file, a regular one inside the root
	local k
	for k in "$root/boot/vmlinuz-$1" "$root/usr/lib/modules/$1/vmlinuz" "$root/lib/modules/$1/vmlinuz"; do
		[[ -f $k ]] && inside "$k" && return 0
	done
	return 1
}
declare -A seen=()
kvers=()
for c in "$root"/boot/vmlinuz-* "$root"/usr/lib/modules/*/vmlinuz "$root"/lib/modules/*/vmlinuz; do
	[[ -e $c ]] || continue
	case $c in
	*/boot/vmlinuz-*) k=${c##*/vmlinuz-} ;;
	*) k=${c%/vmlinuz}; k=${k##*/} ;;
	esac
	[[ -n ${seen[$k]:-} ]] && continue
	seen[$k]=1
	kernel_of "$k" >/dev/null && modules_of "$k" >/dev/null && kvers+=("$k")
done
if [[ -n ${KVER:-} ]]; then
	kernel_of "$KVER" >/dev/null || die "$ROOTFS: no kernel $KVER (KVER; found: ${kvers[*]:-none})"
	modules_of "$KVER" >/dev/null || die "$ROOTFS: kernel $KVER has no lib/modules/$KVER"
	kver=$KVER
else
	((${#kvers[@]} > 0)) || die "$ROOTFS: no kernel (no boot/vmlinuz-KVER with lib/modules/KVER, no usr/lib/modules/KVER/vmlinuz): install the distribution's kernel package in the root"
	((${#kvers[@]} == 1)) || die "$ROOTFS: several kernels (${kvers[*]}): say which with KVER="
	kver=${kvers[0]}
fi
[[ $kver =~ ^[A-Za-z0-9._+~-]+$ ]] || die "$ROOTFS: kernel version '$kver': not a uname -r string"
vmlinuz=$(kernel_of "$kver")
mods=$(modules_of "$kver")
cp "$vmlinuz" "$tmp/vmlinuz"
step "kernel $kver (/${vmlinuz#"$rootreal"/})"

# What mke2fs -d will need: every file's data in 4 KiB blocks, an inode each, directories.
need_mib=$(find "$root" -xdev -printf '%s %y\n' | awk '{ b += int(($1 + 4095) / 4096) + ($2 == "d") ; n++ }
	END { printf "%d\n", (b * 4096 + n * 256) / 1048576 + 16 }')
mib=${ROOT_MIB:-$((need_mib * 5 / 4 + 256))}
((mib >= 16)) || die "ROOT_MIB=$mib: below 16 MiB"
# Checked now, not after minutes of work (mke2fs's own refusal below stays the last word).
((mib >= need_mib)) || die "$ROOTFS: does not fit in ROOT_MIB=$mib MiB (it needs about $need_mib MiB)"
# --- the initramfs, for that kernel, from the root's own modules ---
# A tree of links to the root's modules: depmod writes its indexes here, never into ROOTFS.
kdir=$tmp/kernel
mkdir -p "$kdir/modules/lib/modules"
cp -as "$mods" "$kdir/modules/lib/modules/$kver"
rm -f "$kdir/modules/lib/modules/$kver"/modules.{dep,alias,symbols,builtin.alias,softdep,devname}{,.bin}
depmod -b "$kdir/modules" "$kver" 2>"$tmp/depmod.err" || die "$mods: depmod failed ($(head -n 1 "$tmp/depmod.err"))"
echo "$kver" >"$kdir/kver"
step "initramfs for $kver"
KERNEL_DIR=$kdir LIVEROOT=$liveroot PUBKEY=$PUBKEY MIN_VERSION=$min RELEASE_VERSION=$VERSION "$top/mk/mkinitramfs.sh" "$tmp/initrd.img" >"$tmp/initramfs.log" 2>&1 ||
	die "initramfs: $(tail -n 1 "$tmp/initramfs.log")"
rm -rf "$kdir"

# --- Secure Boot: the kernel re-signed, and the unified image of kernel, initramfs, command line ---
if [[ -n $sb_key ]]; then
	step "Secure Boot: vmlinuz and liveroot.efi signed with $sb_cert"
	sb_resign "$tmp/vmlinuz"
	sb_osrel "$root" "$tmp/os-release"
	"$publisher" publish uki --stub "$sb_efistub" --linux "$tmp/vmlinuz" --initrd "$tmp/initrd.img" --osrel "$tmp/os-release" \
		--label "$label" --append="$append" "$tmp/uki.efi" >"$tmp/uki.log" 2>&1 || die "liveroot.efi: $(tail -n 1 "$tmp/uki.log" | sed 's/^publish: //')"
	sb_sign "$tmp/uki.efi" "$tmp/liveroot.efi"
	rm -f "$tmp/uki.efi" "$tmp/os-release"
fi

# --- the image: ext4 (with room to write) in a squashfs ---
export E2FSPROGS_FAKE_TIME=$epoch
# Identifiers fixed per version: the same inputs give the same bytes.
ident() { echo "liveroot $1 $VERSION" | sha256sum | cut -c1-32 | sed -E 's/(.{8})(.{4})(.{4})(.{4})(.{12})/\1-\2-\3-\4-\5/'; }
step "ext4 image, $mib MiB (the root needs about $need_mib)"
mkdir -p "$tmp/sq/LiveOS"
img=$tmp/sq/LiveOS/rootfs.img
if ! mke2fs -q -F -t ext4 -L rootfs -U "$(ident rootfs-uuid)" -E "hash_seed=$(ident hash-seed)" -b 4096 \
	-d "$root" "$img" "${mib}M" >"$tmp/mke2fs.log" 2>&1; then
	if grep -qiE 'no space|could not allocate|not enough|too many' "$tmp/mke2fs.log"; then
		die "$ROOTFS: does not fit in ${mib} MiB (it needs about $need_mib MiB; ROOT_MIB= gives more)"
	fi
	die "$ROOTFS: mke2fs -d failed ($(grep -v '^$' "$tmp/mke2fs.log" | tail -n 1))"
fi

# The shipped mark-good (dist/), written into the image with debugfs: ROOTFS stays untouched.
cmds=$tmp/debugfs.cmds
: >"$cmds"
added=()
if [[ ${MARK_GOOD:-} == systemd ]]; then
	unit=etc/systemd/system/liveroot-mark-good.service
	[[ -d $root/etc/systemd/system ]] || die "$ROOTFS: no etc/systemd/system (MARK_GOOD=systemd needs systemd in the root)"
	[[ -e $root/$unit ]] && die "$ROOTFS: /$unit exists already (MARK_GOOD would replace it)"
	{
		echo "write $top/dist/liveroot-mark-good.service /$unit"
		[[ -d $root/etc/systemd/system/multi-user.target.wants ]] || echo "mkdir /etc/systemd/system/multi-user.target.wants"
		echo "symlink /etc/systemd/system/multi-user.target.wants/liveroot-mark-good.service /$unit"
		echo "sif /$unit mode 0100644"
	} >>"$cmds"
	[[ -d $root/etc/systemd/system/multi-user.target.wants ]] || added+=(/etc/systemd/system/multi-user.target.wants)
	added+=("/$unit" /etc/systemd/system/multi-user.target.wants/liveroot-mark-good.service)
elif [[ ${MARK_GOOD:-} == rc ]]; then
	rc=etc/rc.local
	{
		[[ -d $root/etc ]] || echo "mkdir /etc"
		if [[ -f $root/$rc ]]; then
			# Before a final `exit 0`, or at the end.
			awk -v add="$(cat "$top/dist/rc.local")" '
				{ lines[NR] = $0 } END {
					last = NR; while (last > 0 && lines[last] ~ /^[ \t]*$/) last--
					for (i = 1; i <= NR; i++) { if (i == last && lines[i] ~ /^[ \t]*exit 0[ \t]*$/) print add; print lines[i] }
					if (!(last > 0 && lines[last] ~ /^[ \t]*exit 0[ \t]*$/)) print add }' "$root/$rc" >"$tmp/rc.local"
			echo "rm /$rc"
		else
			{ echo "#!/bin/sh"; cat "$top/dist/rc.local"; } >"$tmp/rc.local"
		fi
		echo "write $tmp/rc.local /$rc"
		echo "sif /$rc mode 0100755"
	} >>"$cmds"
	added+=("/$rc")
fi
# Every inode's times pinned (mke2fs copies atime and ctime from the tree; debugfs stamps now),
# and the mtimes of what MARK_GOOD added.
(cd "$root" && find . -xdev -mindepth 1) | sed -e 's|^\.||' >"$tmp/paths"
((${#added[@]} == 0)) || printf '%s\n' "${added[@]}" >>"$tmp/paths"
awk -v t="@$epoch" '{ gsub(/"/, "\\\""); printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\nsif \"%s\" crtime %s\n", $0, t, $0, t, $0, t }' \
	"$tmp/paths" >>"$cmds"
for p in "${added[@]}"; do echo "sif \"$p\" mtime @$epoch"; done >>"$cmds"
debugfs -w -f "$cmds" "$img" >/dev/null 2>"$tmp/debugfs.err" || die "$img: debugfs failed ($(tail -n 1 "$tmp/debugfs.err"))"
grep -v '^debugfs ' "$tmp/debugfs.err" | grep -qv '^$' && die "$img: debugfs: $(grep -v '^debugfs ' "$tmp/debugfs.err" | grep -v '^$' | head -n 1)"
[[ $root == "$tmp/root" ]] && rm -rf "$tmp/root"

step "squashfs"
find "$tmp/sq" -exec touch -h -d "@$epoch" {} +
mkdir "$tmp/out"
progress=-no-progress
[[ -t 1 ]] && progress=
env -u SOURCE_DATE_EPOCH mksquashfs "$tmp/sq" "$tmp/out/squashfs.img" -noappend -quiet $progress -all-root \
	-mkfs-time "$epoch" -all-time "$epoch" >"$tmp/mksquashfs.log" 2>&1 ||
	die "squashfs.img: mksquashfs failed ($(tail -n 1 "$tmp/mksquashfs.log"))"
rm -rf "$tmp/sq"

step "dm-verity sidecars and delta index"
"$publisher" imgcheck --verity-format "$tmp/out/squashfs.img" --salt "$(ident verity-salt | tr -d -)$(ident verity-salt2 | tr -d -)" \
	--uuid "$(ident verity-uuid)" >/dev/null || die "squashfs.img: imgcheck --verity-format failed"
mv "$tmp/vmlinuz" "$tmp/out/vmlinuz"
mv "$tmp/initrd.img" "$tmp/out/initrd.img"
[[ -z $sb_key ]] || mv "$tmp/liveroot.efi" "$tmp/out/liveroot.efi"
find "$tmp/out" -exec touch -h -d "@$epoch" {} +

step "signing version $VERSION"
DIR=$tmp/out KEY=$KEY VERSION=$VERSION ROLLOUT=${ROLLOUT:-} EXPIRES=${EXPIRES:-} PUBLISHER=$publisher \
	KEY_PASSWORD_FILE=${KEY_PASSWORD_FILE:-} "$top/mk/sign.sh" >"$tmp/sign.log" 2>&1 || die "$(tail -n 1 "$tmp/sign.log" | sed 's/^sign: //')"
minisign -V -q -p "$PUBKEY" -m "$tmp/out/SHA256SUMS" -x "$tmp/out/SHA256SUMS.minisig" >/dev/null 2>&1 ||
	die "$OUT/SHA256SUMS: does not verify with $PUBKEY"
chmod 0755 "$tmp/out"
if [[ -d $OUT ]]; then rmdir "$OUT"; fi
mv "$tmp/out" "$OUT"
size() { echo "$(( ($(stat -c %s "$1") + 524288) >> 20 )) MiB"; }
step "$OUT: version $VERSION, kernel $kver; squashfs.img $(size "$OUT/squashfs.img"), vmlinuz $(size "$OUT/vmlinuz"), initrd.img $(size "$OUT/initrd.img")${sb_key:+, liveroot.efi $(size "$OUT/liveroot.efi") signed}; $(du -sm "$OUT" | cut -f1) MiB in all"
