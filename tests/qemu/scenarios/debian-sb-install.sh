# Installing to disk under Secure Boot, on a real Debian root with systemd, and what the
# installed disk does with the distribution's own kernel packages there (firmware boots only):
#  1. OVMF with Secure Boot enforcing boots the signed stick (release 1, 6.1.0-50, USB); under
#     systemd and lockdown `migrate --yes` installs onto a blank disk: GPT, the signed loader and
#     image, the box's EFI variable;
#  2. the disk alone in the same box (the same variable store): the signed image, root on the
#     disk's partition 2, systemd running, Secure Boot and lockdown on; `dpkg -i` of the 6.1.0-57
#     package: the kernel hook says the disk keeps starting the signed image and changes
#     nothing; `dpkg --purge` of 6.1.0-50 (the image's kernel), Debian's running-kernel question
#     answered "remove it", is refused by the hook as prerm, and the package stays;
#  3. the disk again: still the signed image's 6.1.0-50 with its modules, systemd running.
# On the host: the ESP's entry and image as migrate wrote them, fsck.fat and e2fsck clean.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian under Secure Boot: migrate to disk under systemd and lockdown, the disk boots alone signed; kernel packages cannot make it unbootable"
FIRMWARE=uefi-sb
FLASH_BUS=usb
QEMU_MEM=2048
TIMEOUT=1800
FLASH_UNCHANGED=

skip() {
	local f
	for f in "$OVMF_SB_CODE" "$OVMF_SB_VARS" "$SB_TEST_KEY" "$SB_TEST_CERT"; do
		[[ -r $f ]] || { echo "$f: missing (make deps installs ovmf)"; return; }
	done
}

prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	debian_flash "$RELEASE" "$FLASH" APPEND="$DEBIAN_SB_APPEND" SIZE_MIB=1024 "${SB_ARGS[@]}" || return 1
	local deb
	deb=$("$TOP/tests/debian/root.sh" kernel2-deb 2>"$RUNDIR/root.log") ||
		{ problem "the 6.1.0-57 kernel package: $(tail -n 2 "$RUNDIR/root.log" | tr '\n' ' ')"; return 1; }
	mkdir -p "$RUNDIR/debs"
	cp "$deb" "$RUNDIR/debs/linux-image-6.1.0-57-amd64.deb"
	mke2fs -q -t ext2 -L DEBS -d "$RUNDIR/debs" "$RUNDIR/debs.img" 160M || { problem "cannot make the package disk"; return 1; }
	rm -rf "$RUNDIR/debs"
	truncate -s 4G "$RUNDIR/disk.img"
	add_disk "$RUNDIR/disk.img" TARGET
}

SB_STATE='dmesg | grep -qi "secure boot enabled" && echo sb=on || echo sb=off; grep -o "\[[a-z]*\]" /sys/kernel/security/lockdown'

# disk_boot: power on from the installed disk alone (the package disk beside it), in the same
# box: the variable store migrate wrote to.
disk_boot() {
	FLASH=$RUNDIR/disk.img
	OVMF_KEEP_VARS=1
	debian_next_boot -drive "file=$RUNDIR/debs.img,format=raw,if=none,id=drvdebs" -device "virtio-blk-pci,drive=drvdebs,id=debs,serial=DEBS"
}

drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; }
	local out
	# 1. the live system installs itself under Secure Boot
	debian_login || { problem "live boot: no login"; qemu_quit; return; }
	out=$(sh_run "systemctl is-system-running --wait >/dev/null; uname -r; $SB_STATE" 300)
	[[ $out == $'6.1.0-50-amd64\nsb=on\n[integrity]' ]] || problem "live boot: not 6.1.0-50 under Secure Boot and lockdown: $out"
	out=$(sh_run '/run/live/bin/migrate --yes /dev/disk/by-id/virtio-TARGET; echo "exit $?"; sync' 900)
	echo "$out" >"$RUNDIR/migrate.out"
	[[ $out == *$'\nexit 0'* ]] || { problem "migrate: $(tail -n 4 <<<"$out" | tr '\n' ' ')"; qemu_quit; return; }
	grep -q 'partitioned: GPT: ' <<<"$out" || problem "migrate did not make the Secure Boot layout: $(grep partitioned <<<"$out")"
	grep -q 'boots by itself under Secure Boot' <<<"$out" || problem "migrate did not say the disk boots under Secure Boot"
	grep -q 'kernel packages update .*/etc/kernel/prerm.d/zz-liveroot' <<<"$out" ||
		problem "migrate did not put the kernel hooks in: $(grep -i kernel <<<"$out" | tr '\n' ' ')"
	# 2. the disk alone, signed; a kernel package comes, the image's kernel's cannot go
	disk_boot
	debian_login || { problem "disk boot 1: no login"; qemu_quit; return; }
	out=$(sh_run "systemctl is-system-running --wait; uname -r; findmnt -no SOURCE /; $SB_STATE" 300)
	[[ $out == $'running\n6.1.0-50-amd64\n/dev/sda2\nsb=on\n[integrity]' ]] ||
		problem "disk boot 1: not 6.1.0-50 on the disk's /dev/sda2, running, under Secure Boot and lockdown: $out"
	out=$(sh_run 'mkdir -p /mnt/debs && mount -r LABEL=DEBS /mnt/debs && DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/debs/linux-image-6.1.0-57-amd64.deb; echo "exit $?"; sync' 1500)
	echo "$out" >"$RUNDIR/dpkg-install.out"
	[[ $out == *$'\nexit 0'* ]] || problem "dpkg -i: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
	grep -q 'liveroot: Secure Boot: boot partition UUID=.* keeps starting the signed image /EFI/Linux/liveroot.efi (kernel 6.1.0-50-amd64)' <<<"$out" ||
		problem "dpkg -i: the kernel hook did not say the disk keeps its signed image: $(grep -i liveroot <<<"$out" | tr '\n' ' ')"
	# Debian's own guard (linux-check-removal: the running kernel) told to let it go, as an
	# administrator answering "do not abort" would: then only liveroot's hook stands in the way.
	out=$(sh_run 'echo "linux-base linux-base/removing-running-kernel boolean false" | debconf-set-selections; DEBIAN_FRONTEND=noninteractive dpkg --purge linux-image-6.1.0-50-amd64; echo "exit $?"; dpkg-query -W -f="\${Status}\n" linux-image-6.1.0-50-amd64; ls -1 /lib/modules' 600)
	echo "$out" >"$RUNDIR/dpkg-purge.out"
	[[ $out == *$'\nexit 1\n'* || $out == *$'\nexit 2\n'* ]] || problem "dpkg --purge of the image's kernel did not fail: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
	grep -q 'kernel 6.1.0-50-amd64: the signed image /EFI/Linux/liveroot.efi on the boot partition starts it; its package stays' <<<"$out" ||
		problem "dpkg --purge: the hook did not say why: $(grep -i liveroot <<<"$out" | tr '\n' ' ')"
	grep -q ' ok installed$' <<<"$out" || problem "the 6.1.0-50 package is not installed any more: $out"
	grep -qx '6.1.0-50-amd64' <<<"$out" || problem "6.1.0-50's modules are gone: $out"
	# 3. the disk again: the signed image, its kernel, its modules
	disk_boot
	debian_login || { problem "disk boot 2: no login"; qemu_quit; return; }
	out=$(sh_run "systemctl is-system-running --wait; uname -r; findmnt -no SOURCE /; $SB_STATE" 300)
	[[ $out == $'running\n6.1.0-50-amd64\n/dev/sda2\nsb=on\n[integrity]' ]] ||
		problem "disk boot 2: not the signed 6.1.0-50 on /dev/sda2, running: $out"
	send 'systemctl poweroff'
	local n=480
	while qemu_running && ((n-- > 0)); do sleep 0.25; done
	qemu_running && { problem "disk boot 2: systemctl poweroff did not power off within 2 minutes"; qemu_quit; }
	return 0
}

verify() {
	local a
	for a in "${QEMU_ARGS[@]}"; do
		[[ $a == -kernel ]] && problem "QEMU was given -kernel: not a firmware boot"
	done
	local img=$RUNDIR/disk.img esp=$RUNDIR/esp.part d
	d=$(sfdisk -d "$img" 2>&1)
	grep -q '^label: gpt' <<<"$d" || problem "the disk is not GPT: $d"
	dd if="$img" of="$esp" bs=1M skip=1 count=128 status=none
	local ent
	ent=$(MTOOLS_SKIP_CHECK=1 mtype -i "$esp" ::/loader/entries/liveroot.conf | tr -d '\r')
	grep -qx 'efi /EFI/Linux/liveroot.efi' <<<"$ent" || problem "the ESP's entry changed: $ent"
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$esp" ::/EFI/Linux/liveroot.efi "$RUNDIR/x.efi" &&
		sbverify --cert "$SB_TEST_CERT" "$RUNDIR/x.efi" >/dev/null 2>&1 || problem "/EFI/Linux/liveroot.efi on the ESP: not signed"
	rm -f "$RUNDIR/x.efi"
	fsck.fat -n "$esp" >"$RUNDIR/fsck.fat.out" 2>&1 || problem "fsck.fat -n on the ESP: $(tail -n 3 "$RUNDIR/fsck.fat.out" | tr '\n' ' ')"
	rm -f "$esp"
	local start size e
	read -r start size < <(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*2 :/ { print $2 + 0, $4 + 0 }')
	dd if="$img" of="$RUNDIR/root.part" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) status=none conv=sparse
	e=$(e2fsck -fn "$RUNDIR/root.part" 2>&1) || problem "e2fsck -fn on the root partition: $(tail -n 3 <<<"$e" | tr '\n' ' ')"
	rm -f "$RUNDIR/root.part"
	echo "    root partition: $(tail -n 1 <<<"$e")"
	if ((${#PROBLEMS[@]} > 0)); then
		local c
		for c in "$RUNDIR"/console.*.log; do [[ -e $c ]] && cp "$c" "$LOGDIR/debian-sb-install.${c##*/}"; done
	fi
	return 0
}
