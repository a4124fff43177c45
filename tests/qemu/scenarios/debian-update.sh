# Publishing a kernel update, the whole way, on real Debian roots: the stick holds release 1
# (bookworm, kernel 6.1.0-50), nginx publishes release 2 (the same root after a dist-upgrade from
# bookworm-updates and -security: kernel 6.1.0-57 beside 6.1.0-50). SeaBIOS boots the stick
# (syslinux) three times:
#  1. online: the boot fetches release 2 with its kernel and initramfs; its root carries the
#     running kernel's modules, so it boots from RAM on 6.1.0-50; syncflash writes it, kernel
#     and initramfs with it, to the flash;
#  2. offline: the loader's release-1 initramfs starts release 2's own kernel by kexec: 6.1.0-57;
#     its mark-good makes release 2's kernel and initramfs the loader's;
#  3. offline: the loader starts 6.1.0-57 directly, no kexec.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian kernel update: fetched, synced, kexec'd on the next power-on, then the loader's own"
FIRMWARE=bios
FLASH_BUS=virtio
QEMU_MEM=2048
TIMEOUT=600
FLASH_UNCHANGED=
prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	local rel1=$RELEASE
	debian_release v2 2 MARK_GOOD=systemd KVER=6.1.0-57-amd64 || return 1
	mkdir -p "$RUNDIR/srv"
	ln -s "$RELEASE" "$RUNDIR/srv/stable"
	debian_flash "$rel1" "$FLASH" APPEND="ip=dhcp live.fetch=http://10.0.2.100/stable/ live.fetch.timeout=400" SIZE_MIB=1024 || return 1
	cp "$FLASH" "$RUNDIR/flash.before"
	debian_nginx "$RUNDIR/srv" || return 1
	QEMU_EXTRA+=("${NET_ARGS[@]}")
}
drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; }
	local out
	# 1. online
	debian_login || { problem "boot 1: no login"; qemu_quit; return; }
	out=$(sh_run 'uname -r; grep -E "^(booted|image_version)=" /run/live/state')
	[[ $out == $'6.1.0-50-amd64\nbooted='*$'\nimage_version=2' || $out == *"6.1.0-50-amd64"*"image_version=2"* ]] ||
		problem "boot 1: release 2 fetched is not running on 6.1.0-50: $out"
	out=$(sh_run '/run/live/bin/syncflash; echo "exit $?"' 400)
	echo "$out" >"$RUNDIR/syncflash.out"
	[[ $out == *"exit 0" ]] || problem "boot 1: syncflash: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	sh_run 'sync' >/dev/null
	cp "$FLASH" "$RUNDIR/flash.synced"
	# 2. offline: kexec into release 2's kernel; mark-good makes it the loader's
	debian_next_boot
	wait_for 'kernel: version 2 brings its own kernel: starting it \(kexec\)' 300 ||
		problem "boot 2: the loader's release-1 initramfs did not start release 2's kernel"
	debian_login || { problem "boot 2: no login"; qemu_quit; return; }
	out=$(sh_run 'systemctl is-system-running --wait >/dev/null; uname -r; journalctl -b -o cat -u liveroot-mark-good.service | grep -c "loader: version 2.s kernel and initramfs are the loader.s now"' 300)
	[[ $out == $'6.1.0-57-amd64\n1' ]] || problem "boot 2: not on 6.1.0-57 with mark-good switching the loader: $out"
	# 3. offline: the loader starts release 2's kernel itself
	debian_next_boot
	debian_login || { problem "boot 3: no login"; qemu_quit; return; }
	out=$(sh_run 'uname -r; grep -c live.kexec /proc/cmdline; grep -E "^image_version=" /run/live/state')
	[[ $out == $'6.1.0-57-amd64\n0\nimage_version=2' ]] || problem "boot 3: not release 2 on 6.1.0-57 without a kexec: $out"
	qemu_quit
}
verify() {
	debian_nginx_stop
	not_kernel_boot_any
	grep -q 'GET /stable/vmlinuz ' "$RUNDIR/access.log" && grep -q 'GET /stable/initrd.img ' "$RUNDIR/access.log" ||
		problem "release 2's vmlinuz and initrd.img were not fetched from nginx"
	grep -aq 'came through a kexec already' "$RUNDIR"/console*.log && problem "a kexec'd boot was asked to kexec again"
	local cfg
	cfg=$(MTOOLS_SKIP_CHECK=1 mtype -i "$FLASH@@1M" ::/boot/syslinux/syslinux.cfg | tr -d '\r')
	grep -qE '^ *KERNEL /boot/vmlinuz-2$' <<<"$cfg" && grep -qE '^ *INITRD /boot/initrd-2.img$' <<<"$cfg" ||
		problem "syslinux.cfg does not start release 2's files: $cfg"
	MTOOLS_SKIP_CHECK=1 mdir -i "$FLASH@@1M" ::/boot/vmlinuz >/dev/null 2>&1 && problem "release 1's /boot/vmlinuz is still on the flash"
	[[ -f $RUNDIR/flash.synced ]] && echo "    flash blocks (4 KiB) written: syncflash of release 2 $(blocks_changed "$RUNDIR/flash.before" "$RUNDIR/flash.synced"), then boots and mark-good $(blocks_changed "$RUNDIR/flash.synced" "$FLASH")"
}
not_kernel_boot_any() {
	local a
	for a in "${QEMU_ARGS[@]}"; do
		[[ $a == -kernel ]] && problem "QEMU was given -kernel: not a firmware boot"
	done
	return 0
}
