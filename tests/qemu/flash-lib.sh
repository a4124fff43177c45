# Host helpers for the firmware boots of the `make flash` image (sourced by
# tests/qemu/scenarios/flash-*.sh). The scenarios boot the same image: built once, then cached
# by mk/mkflash.sh's stamp.

# The boot entries' APPEND: the flash's command line must end with it (the marker last).
FLASH_TEST_APPEND="rd.live.image panic=-1 loglevel=4 liveroot.test=flash-append-end"
FLASH_TEST_IMG=$BUILD/flash-test.img

# flash_build: make flash into FLASH_TEST_IMG (with FLASH_TEST_APPEND); problem() on failure.
flash_build() {
	make -s -C "$TOP" flash FLASH="$FLASH_TEST_IMG" APPEND="$FLASH_TEST_APPEND" >"$RUNDIR/make-flash.log" 2>&1 && return 0
	problem "make flash failed: $(tail -n 3 "$RUNDIR/make-flash.log" | tr '\n' ' ')"
	return 1
}

# flash_prepare: prepare() of a scenario booting the flash: its copy ($FLASH) becomes the
# `make flash` image (the runner copied the sample medium there first).
flash_prepare() {
	flash_build || { : >"$FLASH"; return 1; }
	make_flash "$FLASH_TEST_IMG" "$FLASH"
}

# flash_guest_checks DEVGLOB: the guest lines of a live boot from the flash's FAT32 partition
# found at a device matching DEVGLOB (e.g. /dev/sd?1): live root on md7, the image verified on
# that partition, and the command line ending with FLASH_TEST_APPEND (syslinux adds
# BOOT_IMAGE=... before and initrd=... after the entry's line: they are stripped first).
flash_guest_checks() {
	cat <<G
check_live_root
echo "cmdline: \$(cat /proc/cmdline)"
echo "state: medium=\$(liveinit state get medium) type=\$(liveinit state get medium_type) verified=\$(liveinit state get verified)"
grep -E ' /run/live/' /proc/mounts
check medium-partition sh -c 'case "\$(liveinit state get medium)" in $1) true ;; *) false ;; esac'
check medium-fat32 test "\$(liveinit state get medium_type)" = vfat
check image-verified sh -c 'case "\$(liveinit state get verified)" in sha256|sig) true ;; *) false ;; esac'
check image-on-medium sh -c 'grep -q "^[^ ]* /run/live/medium vfat " /proc/mounts && test -f /run/live/medium/LiveOS/squashfs.img'
check squashfs-mounted sh -c 'grep -q " squashfs " /proc/mounts'
entry=\$(sed -e 's/^BOOT_IMAGE=[^ ]* //' -e 's/ initrd=[^ ]*\$//' /proc/cmdline)
case "\$entry" in
*" $FLASH_TEST_APPEND") ok cmdline-ends-with-append ;;
*) fail cmdline-ends-with-append "\$entry" ;;
esac
G
}

# flash_entries_end_with_append IMG: verify() part: both boot entries on the image end with
# FLASH_TEST_APPEND.
flash_entries_end_with_append() {
	local cfg ent
	cfg=$(MTOOLS_SKIP_CHECK=1 mtype -i "$1@@1M" ::/boot/syslinux/syslinux.cfg | tr -d '\r' | grep -E '^ *APPEND ')
	ent=$(MTOOLS_SKIP_CHECK=1 mtype -i "$1@@1M" ::/loader/entries/liveroot.conf | tr -d '\r' | grep -E '^options ')
	[[ $cfg == *" $FLASH_TEST_APPEND" ]] || problem "syslinux.cfg APPEND does not end with the APPEND given: $cfg"
	[[ $ent == *" $FLASH_TEST_APPEND" ]] || problem "liveroot.conf options do not end with the APPEND given: $ent"
}

# not_kernel_boot: verify() part: QEMU was started without -kernel (the firmware loaded the kernel).
not_kernel_boot() {
	local a
	for a in "${QEMU_ARGS[@]}"; do
		[[ $a == -kernel || $a == -initrd ]] && problem "QEMU was given $a: not a firmware boot"
	done
	return 0
}
