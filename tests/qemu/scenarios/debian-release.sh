# The user's first journey on a real distribution: a Debian bookworm root with systemd
# (tests/debian/root.sh) → `make release ... MARK_GOOD=systemd` → `make flash SQUASHFS=release`
# → OVMF boots the stick (USB) as a PC does → multi-user.target on the root's OWN kernel (not the
# project's), a module outside the initramfs loads from the root, the shipped mark-good unit ran.
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian root: make release + make flash, OVMF from USB, its own kernel, systemd, mark-good unit"
FIRMWARE=uefi
FLASH_BUS=usb
QEMU_MEM=1536
TIMEOUT=900
prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	debian_flash "$RELEASE" "$FLASH" APPEND="rd.live.image" || return 1
	ROOT_KVER=$(tar -tf "$("$TOP/tests/debian/root.sh" v1)" | sed -n 's|^\./usr/lib/modules/\([^/]*\)/modules\.dep$|\1|p')
	PROJECT_KVER=$(cat "$BUILD/kernel/kver")
}
drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; } # prepare() failed: nothing to boot
	if ! wait_for 'debian-live login: root \(automatic login\)|^root@debian-live' "$TIMEOUT"; then
		problem "no automatic root login on the serial console (systemd did not get to the getty)"
		qemu_quit
		return
	fi
	sleep 3
	local out
	out=$(sh_run 'systemctl is-system-running --wait' 300)
	[[ $out == running* ]] || problem "systemctl is-system-running: $out"
	out=$(sh_run 'uname -r')
	[[ $out == "$ROOT_KVER" ]] || problem "uname -r is '$out', not the root's kernel $ROOT_KVER"
	[[ $ROOT_KVER != "$PROJECT_KVER" ]] || problem "the root's kernel is the project's ($PROJECT_KVER): this proves nothing"
	out=$(sh_run 'ls /lib/modules')
	[[ $out == "$ROOT_KVER" ]] || problem "/lib/modules holds '$out'"
	# A module the initramfs does not carry, loaded from the root's own tree.
	out=$(sh_run 'lsmod | grep -c "^dummy " ; modprobe dummy && lsmod | grep -c "^dummy "')
	[[ $out == $'0\n1' ]] || problem "modprobe dummy from the root: '$out'"
	out=$(sh_run 'findmnt -n -o SOURCE /; cat /sys/block/md7/md/level')
	[[ $out == $'/dev/md7\nraid1' ]] || problem "root is not the md7 mirror: '$out'"
	out=$(sh_run 'systemctl show -p ExecMainStatus -p ExecMainStartTimestampMonotonic liveroot-mark-good.service; journalctl -b -o cat -u liveroot-mark-good.service | grep -cE "marked good|already good|nothing to mark"')
	grep -qx 'ExecMainStatus=0' <<<"$out" || problem "liveroot-mark-good.service: $out"
	grep -qx 'ExecMainStartTimestampMonotonic=0' <<<"$out" && problem "liveroot-mark-good.service never ran: $out"
	[[ $(tail -n 1 <<<"$out") != 0 ]] || problem "liveroot-mark-good.service said nothing of mark-good: $out"
	out=$(sh_run 'journalctl -b -o cat | grep -c "Failed to find module"')
	[[ $out == 0 ]] || problem "the journal has $out 'Failed to find module' lines"
	sh_run 'systemctl --failed --no-legend' >"$RUNDIR/failed-units"
	[[ -s $RUNDIR/failed-units ]] && problem "failed units: $(tr '\n' ' ' <"$RUNDIR/failed-units")"
	qemu_quit
}
verify() {
	not_kernel_boot
	grep -aq 'BdsDxe: starting .*UEFI' "$RUNDIR/console.log" || problem "OVMF did not start the stick's loader"
}
