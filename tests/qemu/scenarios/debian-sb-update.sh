# A kernel update under Secure Boot, the whole way, on real Debian roots: debian-update's story
# with its releases, made by `make release SB_KEY= SB_CERT=` (as every debian_release is) (the kernel re-signed with the db key, the
# signed unified image liveroot.efi in the signed pair, the command line sealed in it), a stick
# made by `make flash SB_KEY=` from release 1 (its own liveroot.efi as the loader's), and OVMF with
# Secure Boot enforcing (Debian's snakeoil db), the stick on USB. Three power-ons:
#  1. online: release 1's signed image boots (lockdown on), fetches release 2 with its kernel,
#     initramfs and signed image from nginx (live.fetch is in the sealed command line), boots it
#     from RAM; syncflash writes the whole pair to the stick;
#  2. offline: release 1's initramfs starts release 2's signed kernel by kexec_file_load under
#     lockdown (the kernel checks its signature against the firmware's db); mark-good makes
#     release 2's signed image the one systemd-boot's entry starts;
#  3. offline: systemd-boot starts release 2's signed image itself: 6.1.0-57, no kexec.
# On the host: the entry starts /EFI/Linux/liveroot-2.efi, signed; release 1's image is gone.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian kernel update under Secure Boot: signed releases fetched, synced, kexec'd under lockdown, then the loader's signed image"
FIRMWARE=uefi-sb
FLASH_BUS=usb
QEMU_MEM=2048
TIMEOUT=600
FLASH_UNCHANGED=

skip() {
	local f
	for f in "$OVMF_SB_CODE" "$OVMF_SB_VARS" "$SB_TEST_KEY" "$SB_TEST_CERT"; do
		[[ -r $f ]] || { echo "$f: missing (make deps installs ovmf)"; return; }
	done
}

prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	local rel1=$RELEASE
	debian_release v2 2 MARK_GOOD=systemd KVER=6.1.0-57-amd64 || return 1
	local f
	for f in "$rel1/vmlinuz" "$rel1/liveroot.efi" "$RELEASE/vmlinuz" "$RELEASE/liveroot.efi"; do
		sbverify --cert "$SB_TEST_CERT" "$f" >/dev/null 2>&1 || problem "$f: not signed with $SB_TEST_CERT"
	done
	grep -q ' liveroot.efi$' "$RELEASE/SHA256SUMS" || problem "release 2's SHA256SUMS does not list liveroot.efi"
	mkdir -p "$RUNDIR/srv"
	ln -s "$RELEASE" "$RUNDIR/srv/stable"
	debian_flash "$rel1" "$FLASH" APPEND="$DEBIAN_SB_APPEND" SIZE_MIB=1024 "${SB_ARGS[@]}" || return 1
	cp "$FLASH" "$RUNDIR/flash.before"
	debian_nginx "$RUNDIR/srv" || return 1
	QEMU_EXTRA+=("${NET_ARGS[@]}")
}

# sb_state: one line: whether Secure Boot was on for this boot, and the lockdown mode.
SB_STATE='dmesg | grep -qi "secure boot enabled" && echo sb=on || echo sb=off; grep -o "\[[a-z]*\]" /sys/kernel/security/lockdown'

drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; }
	local out
	# 1. online
	debian_login || { problem "boot 1: no login"; qemu_quit; return; }
	out=$(sh_run "uname -r; grep -E '^image_version=' /run/live/state; $SB_STATE")
	[[ $out == $'6.1.0-50-amd64\nimage_version=2\nsb=on\n[integrity]' ]] ||
		problem "boot 1: not release 2 (fetched) on 6.1.0-50 under Secure Boot and lockdown: $out"
	out=$(sh_run '/run/live/bin/syncflash; echo "exit $?"' 400)
	echo "$out" >"$RUNDIR/syncflash.out"
	[[ $out == *"exit 0" ]] || problem "boot 1: syncflash under lockdown: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	sh_run 'sync' >/dev/null
	cp "$FLASH" "$RUNDIR/flash.synced"
	# 2. offline: kexec into release 2's signed kernel under lockdown
	debian_next_boot
	wait_for 'kernel: version 2 brings its own kernel: starting it \(kexec\)' 300 ||
		problem "boot 2: release 1's initramfs did not start release 2's kernel"
	debian_login || { problem "boot 2: no login"; qemu_quit; return; }
	out=$(sh_run "systemctl is-system-running --wait >/dev/null; uname -r; grep -c live.kexec= /proc/cmdline; $SB_STATE; journalctl -b -o cat -u liveroot-mark-good.service | grep -c 'loader: version 2.s kernel and initramfs are the loader.s now (.*liveroot-2.efi)'" 300)
	[[ $out == $'6.1.0-57-amd64\n1\nsb=on\n[integrity]\n1' ]] ||
		problem "boot 2: not release 2's kernel by kexec under lockdown, with mark-good switching the signed image: $out"
	# 3. offline: systemd-boot starts release 2's signed image
	debian_next_boot
	debian_login || { problem "boot 3: no login"; qemu_quit; return; }
	out=$(sh_run "uname -r; grep -c live.kexec /proc/cmdline; grep -E '^image_version=' /run/live/state; $SB_STATE")
	[[ $out == $'6.1.0-57-amd64\n0\nimage_version=2\nsb=on\n[integrity]' ]] ||
		problem "boot 3: not release 2's signed image on 6.1.0-57 without a kexec under Secure Boot: $out"
	qemu_quit
}

verify() {
	debian_nginx_stop
	local a ent d=$RUNDIR/sbv
	for a in "${QEMU_ARGS[@]}"; do
		[[ $a == -kernel ]] && problem "QEMU was given -kernel: not a firmware boot"
	done
	grep -q 'GET /stable/liveroot.efi ' "$RUNDIR/access.log" || problem "release 2's liveroot.efi was not fetched from nginx"
	grep -aq 'came through a kexec already' "$RUNDIR"/console*.log && problem "a kexec'd boot was asked to kexec again"
	ent=$(MTOOLS_SKIP_CHECK=1 mtype -i "$FLASH@@1M" ::/loader/entries/liveroot.conf | tr -d '\r')
	grep -qx 'efi /EFI/Linux/liveroot-2.efi' <<<"$ent" || problem "the systemd-boot entry does not start release 2's image: $ent"
	mkdir -p "$d"
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$FLASH@@1M" ::/EFI/Linux/liveroot-2.efi "$d/2.efi" &&
		cmp -s "$d/2.efi" "$RUNDIR/srv/stable/liveroot.efi" || problem "/EFI/Linux/liveroot-2.efi is not release 2's signed image"
	MTOOLS_SKIP_CHECK=1 mdir -i "$FLASH@@1M" ::/EFI/Linux/liveroot.efi >/dev/null 2>&1 && problem "release 1's /EFI/Linux/liveroot.efi is still on the stick"
	# The same mark-good switched syslinux (BIOS) to release 2's plain files.
	ent=$(MTOOLS_SKIP_CHECK=1 mtype -i "$FLASH@@1M" ::/boot/syslinux/syslinux.cfg | tr -d '\r')
	grep -qE '^ *KERNEL /boot/vmlinuz-2$' <<<"$ent" && grep -qE '^ *INITRD /boot/initrd-2.img$' <<<"$ent" ||
		problem "syslinux.cfg does not start release 2's files: $ent"
	MTOOLS_SKIP_CHECK=1 mdir -i "$FLASH@@1M" ::/boot/vmlinuz >/dev/null 2>&1 && problem "release 1's /boot/vmlinuz is still on the stick"
	rm -rf "$d"
	[[ -f $RUNDIR/flash.synced ]] && echo "    flash blocks (4 KiB) written: syncflash of release 2 $(blocks_changed "$RUNDIR/flash.before" "$RUNDIR/flash.synced"), then boots and mark-good $(blocks_changed "$RUNDIR/flash.synced" "$FLASH")"
	return 0
}
