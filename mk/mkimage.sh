#!/usr/bin/env bash
# mk/mkimage.sh BUILD — the sample flash media the demo and the QEMU tests boot.
#
# BUILD/live-flash.img      ext4 filesystem on the whole disk, label LIVE, UUID $LIVE_UUID:
#                           LiveOS/squashfs.img (holding LiveOS/rootfs.img, ext4) + LiveOS/SHA256SUMS
#                           + the dm-verity sidecars squashfs.img.verity and squashfs.img.roothash
#                           (made by `liveroot imgcheck --verity-format`, listed in SHA256SUMS)
# BUILD/live-flash-fat.img  the same files on FAT32, label LIVE, volume id $FAT_UUID
# BUILD/live-flash-alt.img  ext4, label LIVEALT, UUID $ALT_UUID, older layout and custom names:
#                           live/root.sqfs (holding LiveOS/ext3fs.img, ext3) + live/SHA256SUMS
#                           + root.sqfs.verity and root.sqfs.roothash
# BUILD/live-images.env     those names and UUIDs, for scenarios (shell variable assignments)
#
# Stock tools only (mke2fs -d, mksquashfs, mkfs.vfat + mcopy): no root, no mounts. UUIDs, hash
# seeds, verity salts and timestamps are fixed (SOURCE_DATE_EPOCH), so the same inputs give the
# same bytes. Rebuilds only when an input changed. Needs the publisher's build of liveroot
# (build/publisher/liveroot, PUBLISHER=) for the sidecars; its version is not an input: the
# sidecars are veritysetup's bytes whatever builds them.
set -euo pipefail

build=${1:?usage: mk/mkimage.sh BUILD}
here=$(cd "$(dirname "$0")" && pwd)
epoch=${SOURCE_DATE_EPOCH:-1700000000}
busybox=${BUSYBOX:-/bin/busybox}
publisher=${PUBLISHER:-$build/publisher/liveroot}
[[ -x $publisher ]] || { echo "mkimage: $publisher: missing (run make build)" >&2; exit 1; }
ROOT_MIB=${ROOT_MIB:-256} # room for the tests' writes (64 MiB into a 32 MiB overlay)
# FILL_MIB=N: an incompressible file of N MiB (/usr/share/filler, the same bytes every time) in
# the root, so that squashfs.img itself is N MiB bigger (boot-time and bytes-read checks of
# big images). Then only live-flash.img and live-images.env are made.
FILL_MIB=${FILL_MIB:-0}
(( ROOT_MIB >= 256 + FILL_MIB * 11 / 10 )) || ROOT_MIB=$((256 + FILL_MIB * 11 / 10))

LIVE_UUID=4c495645-0000-4000-8000-000000000001
ALT_UUID=4c495645-0000-4000-8000-000000000002
ROOTFS_UUID=4c495645-0000-4000-8000-0000000000f1
FAT_ID=4C495645 # shows as UUID 4C49-5645
HASH_SEED=4c495645-0000-4000-8000-0000000000aa
VERITY_UUID=4c495645-0000-4000-8000-0000000000b1

stamp=$build/.image-stamp
inputs=$( {
	echo "$epoch $ROOT_MIB $FILL_MIB"
	sha256sum "$0" "$busybox"
	cd "$here/sample-os" && find . -print0 | LC_ALL=C sort -z | xargs -0 sha256sum 2>/dev/null || true
} | sha256sum | cut -d' ' -f1)
outs=(live-flash.img live-flash-fat.img live-flash-alt.img live-images.env)
((FILL_MIB > 0)) && outs=(live-flash.img live-images.env)
if [[ -f $stamp && $(cat "$stamp") == "$inputs" ]] && (cd "$build" && ls "${outs[@]}" >/dev/null 2>&1); then
	exit 0
fi

mkdir -p "$build"
tmp=$(mktemp -d "$build/.mkimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export E2FSPROGS_FAKE_TIME=$epoch SOURCE_DATE_EPOCH=$epoch

# --- the sample OS tree: busybox + mk/sample-os ---
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,root,mnt,etc}
cp -a "$here/sample-os/." "$root/"
cp "$busybox" "$root/bin/busybox"
# Applet links, except where the sample OS has its own file (sbin/init).
"$busybox" --list-full | while read -r p; do
	[[ $p == bin/busybox || -e $root/$p || -L $root/$p ]] && continue
	rel=$(dirname "$p" | sed -e 's|[^/]*|..|g')
	ln -s "$rel/bin/busybox" "$root/$p"
done
chmod 1777 "$root/tmp"
if ((FILL_MIB > 0)); then
	# AES-CTR over zeros: fast, incompressible, and the same bytes for the same size.
	mkdir -p "$root/usr/share"
	head -c "$((FILL_MIB << 20))" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K 4c495645000000000000000000000000 -iv 00000000000000000000000000000000 >"$root/usr/share/filler"
fi
chmod 0700 "$root/root"

stamp_tree() { find "$1" -exec touch -h -d "@$epoch" {} +; }

# mkext TYPE LABEL UUID SRC OUT MIB
mkext() {
	rm -f "$5"
	mke2fs -q -F -t "$1" -L "$2" -U "$3" -E "hash_seed=$HASH_SEED,root_owner=0:0" -b 4096 \
		-d "$4" "$5" "$6M" >/dev/null
	# mke2fs 1.47.0 copies atime/ctime from the source tree, which touch cannot pin; pin them here.
	(cd "$4" && find . -mindepth 1) | sed -e 's|^\.||' |
		awk -v t="@$epoch" '{ printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\n", $0, t, $0, t }' \
		>"$tmp/sif.cmds"
	debugfs -w -f "$tmp/sif.cmds" "$5" >/dev/null 2>"$tmp/sif.err" || { cat "$tmp/sif.err" >&2; return 1; }
}
# mksq SRC OUT
mksq() {
	stamp_tree "$1"
	env -u SOURCE_DATE_EPOCH mksquashfs "$1" "$2" -noappend -quiet -no-progress -all-root \
		-mkfs-time "$epoch" -all-time "$epoch" >/dev/null
}
# medium_dir DIR SQUASHNAME SQUASHFILE: the files the medium holds under DIR: the image, its
# dm-verity sidecars (a salt fixed per image name, for reproducible bytes) and SHA256SUMS
# listing all three.
medium_dir() {
	local d=$tmp/medium.$1.$2 salt
	mkdir -p "$d/$1"
	cp "$3" "$d/$1/$2"
	salt=$(echo "$HASH_SEED $2" | sha256sum | cut -c1-64)
	"$publisher" imgcheck --verity-format "$d/$1/$2" --salt "$salt" --uuid "$VERITY_UUID" >/dev/null
	(cd "$d/$1" && sha256sum "$2" "$2.verity" "$2.roothash" >SHA256SUMS)
	stamp_tree "$d"
	echo "$d"
}
mib_for() { echo $(( ($(du -sm --apparent-size "$1" | cut -f1) * 11 / 10) + 8 )); }

stamp_tree "$root"

# --- main medium: LiveOS/squashfs.img ⊃ LiveOS/rootfs.img (ext4) ---
mkdir -p "$tmp/sq1/LiveOS"
mkext ext4 rootfs "$ROOTFS_UUID" "$root" "$tmp/sq1/LiveOS/rootfs.img" "$ROOT_MIB"
mksq "$tmp/sq1" "$tmp/squashfs.img"
m1=$(medium_dir LiveOS squashfs.img "$tmp/squashfs.img")
mkext ext4 LIVE "$LIVE_UUID" "$m1" "$tmp/live-flash.img" "$(mib_for "$m1")"

if ((FILL_MIB == 0)); then
# --- the same on FAT32 (mkfs.fat needs ≥ 65525 clusters for FAT32: at least ~33 MiB) ---
fat_mib=$(mib_for "$m1")
(( fat_mib < 64 )) && fat_mib=64
mkfs.vfat -F 32 -n LIVE --invariant -i "$FAT_ID" -C "$tmp/live-flash-fat.img" $((fat_mib * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -m -s -i "$tmp/live-flash-fat.img" "$m1/LiveOS" ::/

# --- alternative layout: live/root.sqfs ⊃ LiveOS/ext3fs.img (ext3) ---
mkdir -p "$tmp/sq2/LiveOS"
mkext ext3 rootfs "$ROOTFS_UUID" "$root" "$tmp/sq2/LiveOS/ext3fs.img" "$ROOT_MIB"
mksq "$tmp/sq2" "$tmp/root.sqfs"
m2=$(medium_dir live root.sqfs "$tmp/root.sqfs")
mkext ext4 LIVEALT "$ALT_UUID" "$m2" "$tmp/live-flash-alt.img" "$(mib_for "$m2")"
fi

cat >"$tmp/live-images.env" <<EOF
# Written by mk/mkimage.sh: the sample media and how to address them.
LIVE_IMG=live-flash.img
LIVE_LABEL=LIVE
LIVE_UUID=$LIVE_UUID
FAT_IMG=live-flash-fat.img
FAT_UUID=${FAT_ID:0:4}-${FAT_ID:4:4}
ALT_IMG=live-flash-alt.img
ALT_LABEL=LIVEALT
ALT_UUID=$ALT_UUID
ALT_DIR=live
ALT_SQUASHIMG=root.sqfs
ROOT_MIB=$ROOT_MIB
EOF
for f in "${outs[@]}"; do mv -f "$tmp/$f" "$build/$f"; done
echo "$inputs" >"$stamp"
for f in "${outs[@]}"; do
	[[ $f == *.img ]] || continue
	echo "image: $build/$f ($(du -m --apparent-size "$build/$f" | cut -f1) MiB)"
done
