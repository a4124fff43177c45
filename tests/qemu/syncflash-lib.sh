# Host helpers for the syncflash scenarios (sourced by tests/qemu/scenarios/syncflash-*.sh).

# make_version OUTDIR VERSION PAD_MIB: OUTDIR/squashfs.img = the sample image with
# /etc/liveroot-version = VERSION and PAD_MIB MiB of incompressible filler (a bigger image
# widens the power-cut windows), OUTDIR/SHA256SUMS for it. Cached under build/ by its inputs.
make_version() {
	local out=$1 ver=$2 pad=$3 key tmp
	key=$(
		sha256sum "$BUILD/$LIVE_IMG" | cut -c1-16
		echo "$ver $pad"
	)
	if [[ -f $out/key && $(cat "$out/key") == "$key" && -f $out/SHA256SUMS ]]; then
		return 0
	fi
	rm -rf "$out"
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.tmp.XXXXXX")
	debugfs -R "dump /LiveOS/squashfs.img $tmp/v1.img" "$BUILD/$LIVE_IMG" >/dev/null 2>&1
	unsquashfs -q -n -d "$tmp/sq" "$tmp/v1.img" >/dev/null
	echo "$ver" >"$tmp/version"
	{
		echo "rm /etc/liveroot-version"
		echo "write $tmp/version /etc/liveroot-version"
		if ((pad > 0)); then
			# Deterministic and incompressible: AES-CTR of zeros with a fixed key.
			head -c $((pad << 20)) /dev/zero |
				openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv "$(printf '%032x' "$ver")" -nosalt >"$tmp/filler"
			echo "write $tmp/filler /filler"
		fi
	} >"$tmp/cmds"
	debugfs -w -f "$tmp/cmds" "$tmp/sq/LiveOS/rootfs.img" >/dev/null 2>&1
	env -u SOURCE_DATE_EPOCH mksquashfs "$tmp/sq" "$out/squashfs.img" -noappend -quiet -no-progress -all-root \
		-mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" >/dev/null
	(cd "$out" && sha256sum squashfs.img >SHA256SUMS)
	rm -rf "$tmp"
	echo "$key" >"$out/key"
}

# medium_sha FLASH PATH: sha256 of a file on the (ext4 or FAT) flash image, "-" when absent.
medium_sha() {
	local flash=$1 path=$2 s
	if is_ext "$flash"; then
		s=$(debugfs -R "cat $path" "$flash" 2>/dev/null | sha256sum | cut -c1-64)
		debugfs -R "stat $path" "$flash" 2>/dev/null | grep -q Inode || s=-
	else
		s=$(MTOOLS_SKIP_CHECK=1 mtype -i "$flash" "::$path" 2>/dev/null | sha256sum | cut -c1-64)
		MTOOLS_SKIP_CHECK=1 mdir -i "$flash" "::$path" >/dev/null 2>&1 || s=-
	fi
	echo "$s"
}

# The files of LiveOS/ on a flash image, one name per line.
medium_list() {
	if is_ext "$1"; then
		debugfs -R "ls -l /LiveOS" "$1" 2>/dev/null | awk 'NF >= 9 && $NF != "." && $NF != ".." { print $NF }' | sort
	else
		MTOOLS_SKIP_CHECK=1 mdir -b -i "$1" ::/LiveOS 2>/dev/null | sed 's|.*/||' | sort
	fi
}

is_ext() { debugfs -R stats "$1" 2>/dev/null | grep -q '^Filesystem magic number'; }

# fat_sidecars_to FLASH SFX: copy the primary's dm-verity sidecars (when the sample image has
# them) on a FAT flash to NAME.verity$SFX / NAME.roothash$SFX, so that a pair made from the
# primary's manifest (which then lists them) is complete. Prints the names written.
fat_sidecars_to() {
	local flash=$1 sfx=$2 f tmp
	tmp=$(mktemp -d)
	for f in squashfs.img.verity squashfs.img.roothash; do
		MTOOLS_SKIP_CHECK=1 mcopy -i "$flash" "::/LiveOS/$f" "$tmp/$f" 2>/dev/null || continue
		MTOOLS_SKIP_CHECK=1 mcopy -i "$flash" "$tmp/$f" "::/LiveOS/$f$sfx"
		echo "$f$sfx"
	done
	rm -rf "$tmp"
}

# signed_v2: prepare() of a sync-v2 scenario: a signed v2 (version=2, a throw-away minisign key
# made at test time, never committed: the signature must travel with its manifest) in $V2, its
# three files on the TESTS disk.
signed_v2() {
	V2=$BUILD/syncflash-v2
	make_version "$V2" 2 0
	local k=$BUILD/syncflash-key
	[[ -f $k/sec ]] || { mkdir -p "$k" && minisign -G -W -f -p "$k/pub" -s "$k/sec" >/dev/null; }
	minisign -S -s "$k/sec" -m "$V2/SHA256SUMS" -x "$V2/SHA256SUMS.minisig" -t "version=2" >/dev/null
	TESTS_FILES=("$V2/squashfs.img" "$V2/SHA256SUMS" "$V2/SHA256SUMS.minisig")
}

# signed_v2_boot FLASH_AT: signed_v2, but v2 is a release with its own kernel and initramfs: its
# SHA256SUMS also lists vmlinuz and initrd.img, made from the flash's /boot/vmlinuz and
# /boot/initrd.img (FLASH_AT: an mtools image spec, IMG@@OFFSET) with 512 zero bytes appended
# to each (the kernel ignores bytes after its payload, cpio trailing zeros), so that each
# differs from the flash's. In $V2B (signed_v2's $V2 is left as the other scenarios use it);
# its five files on the TESTS disk.
signed_v2_boot() {
	local at=$1 f
	signed_v2
	V2B=$BUILD/syncflash-v2boot
	rm -rf "$V2B"
	mkdir -p "$V2B"
	cp "$V2/squashfs.img" "$V2/SHA256SUMS" "$V2B/"
	for f in vmlinuz initrd.img; do
		MTOOLS_SKIP_CHECK=1 mtype -i "$at" "::/boot/$f" >"$V2B/$f" || { problem "$at: no /boot/$f"; return 1; }
		head -c 512 /dev/zero >>"$V2B/$f"
		(cd "$V2B" && sha256sum "$f" >>SHA256SUMS)
	done
	minisign -S -s "$BUILD/syncflash-key/sec" -m "$V2B/SHA256SUMS" -x "$V2B/SHA256SUMS.minisig" -t "version=2" >/dev/null
	TESTS_FILES=("$V2B/squashfs.img" "$V2B/SHA256SUMS" "$V2B/SHA256SUMS.minisig" "$V2B/vmlinuz" "$V2B/initrd.img")
}

# sync_v2_guest [LINE]: the guest of a sync-v2 scenario: v1 runs (LINE: one more check), v2 is put
# in /run/live/ram as imgfetch leaves it, `syncflash` writes it (marker synced), a second run has
# nothing to do (exit 5), the medium is read-only again.
sync_v2_guest() {
	echo 'check_live_root'
	echo 'check booted-v1 test "$(cat /etc/liveroot-version)" = 1'
	[[ -n ${1:-} ]] && echo "$1"
	cat <<'G'
mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS $T/SHA256SUMS.minisig /run/live/ram/
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit $?: $(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
syncflash >/tmp/sf2.out 2>&1; rc=$?
check nothing-to-do test "$rc" = 5
cat /tmp/sf2.out
check medium-ro-again sh -c "grep ' /run/live/medium ' /proc/mounts | grep -q ' ro[ ,]'"
G
}

# v2_boot_checks: the first guest lines of the boot after a sync-v2: v2 runs from the flash's
# primary pair, verified.
v2_boot_checks() {
	cat <<'G'
check_live_root
check booted-v2 test "$(cat /etc/liveroot-version)" = 2
check verified test "$(liveinit state get verified)" = sha256
check primary-pair test "$(liveinit state get medium_pair)" = primary
G
}
