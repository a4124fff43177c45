# A release whose kernel and initramfs are not the loader's runs on its own: the loader starts
# release 1's kernel and initramfs (as a box does before release 2 is marked good), the flash's
# pair is release 2 (its own vmlinuz and initrd.img in LiveOS/, signed with it); the boot checks
# them against release 2's manifest and starts them by kexec with live.kexec=2, and that boot
# comes up on release 2's initramfs without kexec'ing again. Nothing is written to the flash.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian root: the loader's release-1 initramfs kexecs into release 2's own kernel and initramfs"
QEMU_MEM=1536
TIMEOUT=600
prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	local rel1=$RELEASE
	debian_release v1 2 MARK_GOOD=systemd || return 1
	debian_flash "$RELEASE" "$FLASH" || return 1
	KERNEL=$rel1/vmlinuz
	INITRD=$rel1/initrd.img
	FLASH_SHA=$(sha256sum <"$FLASH")
}
# liveroot.stamps: each /init stamps its start (verify); the kexec keeps the word.
APPEND="root=live:LABEL=LIVE rd.live.image liveroot.stamps"
drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; }
	wait_for 'kernel: version 2 brings its own kernel: starting it \(kexec\)' 300 ||
		problem "release 1's initramfs did not start release 2's kernel"
	if ! wait_for 'debian-live login: root \(automatic login\)|^root@debian-live' "$TIMEOUT"; then
		problem "no automatic root login after the kexec"
		qemu_quit
		return
	fi
	sleep 3
	local out
	out=$(sh_run 'cat /proc/cmdline')
	[[ " $out " == *" live.kexec=2 "* ]] || problem "the running kernel's command line has no live.kexec=2: $out"
	out=$(sh_run 'systemctl is-system-running --wait; findmnt -n -o SOURCE /; cat /run/live/state | grep -E "^(image_version|medium_pair)="' 300)
	[[ $out == *running*"/dev/md7"*"image_version=2"* ]] || problem "release 2 is not up on md7: $out"
	qemu_quit
}
verify() {
	local n
	# Each initramfs's /init stamps its start (loglevel=4 hides the kernels' banners).
	n=$(tr -d '\r' <"$RUNDIR/console.log" | grep -c 'liveroot-stamp init-start ')
	[[ $n == 2 ]] || problem "/init started $n times, not 2: once under the loader's kernel, once under release 2's"
	tr -d '\r' <"$RUNDIR/console.log" | grep -q 'came through a kexec already' &&
		problem "release 2's boot was asked to kexec again"
}
