# Installing to disk, on a real Debian root, and the installed system following its own kernel
# packages afterwards, as an administrator would do it (firmware boots throughout, no -kernel):
#  1. SeaBIOS boots the stick (release 1: bookworm, kernel 6.1.0-50); under systemd, `migrate
#     --yes` installs onto a blank disk and puts the kernel hook (dist/kernel-hook) in the root;
#  2. the disk boots alone (SeaBIOS, no stick): root on the disk, 6.1.0-50 with liveroot's
#     initramfs; `dpkg -i` of the 6.1.0-57 package (tests/debian/root.sh kernel2-deb, on an extra
#     disk): Debian's initramfs-tools makes its initramfs, the hook puts both on the boot
#     partition and switches the loader entries;
#  3. the disk boots 6.1.0-57 (SeaBIOS, syslinux; Debian's own initramfs); the 6.1.0-50 package
#     is purged;
#  4. the disk boots 6.1.0-57 again, this time through OVMF (systemd-boot's entry), and powers off.
# On the host: both entries name 6.1.0-57's files, nothing else is left in the boot partition's
# /boot, fsck.fat and e2fsck find nothing.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="Debian: migrate to disk under systemd, the disk boots alone, a kernel package installed in it boots, the old one removed"
FIRMWARE=bios
FLASH_BUS=virtio
QEMU_MEM=2048
TIMEOUT=900
FLASH_UNCHANGED=
prepare() {
	debian_release v1 1 MARK_GOOD=systemd || return 1
	debian_flash "$RELEASE" "$FLASH" || return 1
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
# disk_boot FIRMWARE: power on from the installed disk alone (the package disk beside it).
disk_boot() {
	FIRMWARE=$1
	FLASH=$RUNDIR/disk.img
	debian_next_boot -drive "file=$RUNDIR/debs.img,format=raw,if=none,id=drvdebs" -device "virtio-blk-pci,drive=drvdebs,id=debs,serial=DEBS"
}
drive() {
	ENDED_BY_DRIVE=1
	((${#PROBLEMS[@]} == 0)) || { qemu_quit; return; }
	local out uuid
	# 1. the live system installs itself
	debian_login || { problem "live boot: no login"; qemu_quit; return; }
	out=$(sh_run 'systemctl is-system-running --wait >/dev/null; uname -r; ls /dev/disk/by-id/ | grep -c virtio-TARGET' 300)
	[[ $out == $'6.1.0-50-amd64\n'* ]] || problem "live boot: not on 6.1.0-50: $out"
	out=$(sh_run '/run/live/bin/migrate --yes /dev/disk/by-id/virtio-TARGET; echo "exit $?"; sync' 900)
	echo "$out" >"$RUNDIR/migrate.out"
	[[ $out == *$'\nexit 0'* ]] || { problem "migrate: $(tail -n 4 <<<"$out" | tr '\n' ' ')"; qemu_quit; return; }
	grep -q 'kernel packages update .*/etc/kernel/postinst.d/zz-liveroot' <<<"$out" ||
		problem "migrate did not put the kernel hook in: $(grep -i kernel <<<"$out" | tr '\n' ' ')"
	# 2. the disk alone, on the kernel it was installed with; a kernel package goes in
	disk_boot bios
	debian_login || { problem "disk boot 1: no login"; qemu_quit; return; }
	out=$(sh_run 'uname -r; findmnt -no SOURCE /; sed -n "s/^boot_uuid=//p" /etc/liveroot/installed; blkid -s UUID -o value /dev/vda1')
	uuid=$(sed -n 3p <<<"$out")
	[[ $(sed -n 1,2p <<<"$out") == $'6.1.0-50-amd64\n/dev/vda2' && -n $uuid && $(sed -n 4p <<<"$out") == "$uuid" ]] ||
		problem "disk boot 1: not 6.1.0-50 on /dev/vda2 with the boot partition recorded: $out"
	out=$(sh_run 'mkdir -p /mnt/debs && mount -r LABEL=DEBS /mnt/debs && DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/debs/linux-image-6.1.0-57-amd64.deb; echo "exit $?"; sync' 900)
	echo "$out" >"$RUNDIR/dpkg-install.out"
	[[ $out == *$'\nexit 0'* ]] || problem "dpkg -i: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
	grep -q "liveroot: boot partition UUID=$uuid starts 6.1.0-57-amd64" <<<"$out" ||
		problem "dpkg -i: the kernel hook did not switch the boot partition: $(grep -i liveroot <<<"$out" | tr '\n' ' ')"
	# 3. the new kernel boots; the old package goes
	disk_boot bios
	debian_login || { problem "disk boot 2: no login"; qemu_quit; return; }
	out=$(sh_run 'uname -r; findmnt -no SOURCE /; systemctl is-system-running --wait')
	[[ $out == $'6.1.0-57-amd64\n/dev/vda2\nrunning' ]] || problem "disk boot 2: not 6.1.0-57 on /dev/vda2, running: $out"
	out=$(sh_run 'DEBIAN_FRONTEND=noninteractive dpkg --purge linux-image-6.1.0-50-amd64; echo "exit $?"; ls /boot; sync' 600)
	echo "$out" >"$RUNDIR/dpkg-purge.out"
	[[ $out == *$'\nexit 0'* ]] || problem "dpkg --purge 6.1.0-50: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
	# 4. and again, through OVMF and systemd-boot; then a clean power-off
	disk_boot uefi
	debian_login || { problem "disk boot 3 (UEFI): no login"; qemu_quit; return; }
	out=$(sh_run 'uname -r; findmnt -no SOURCE /; systemctl is-system-running --wait')
	[[ $out == $'6.1.0-57-amd64\n/dev/vda2\nrunning' ]] || problem "disk boot 3 (UEFI): not 6.1.0-57 on /dev/vda2, running: $out"
	send 'systemctl poweroff'
	local n=480
	while qemu_running && ((n-- > 0)); do sleep 0.25; done
	qemu_running && { problem "disk boot 3: systemctl poweroff did not power off within 2 minutes"; qemu_quit; }
	return 0
}
verify() {
	local a
	for a in "${QEMU_ARGS[@]}"; do
		[[ $a == -kernel ]] && problem "QEMU was given -kernel: not a firmware boot"
	done
	grep -aq 'systemd-boot' "$RUNDIR/console.log" || grep -aq 'Boot0' "$RUNDIR/console.log" ||
		echo "    (the UEFI boot's console does not name the loader)"
	local img=$RUNDIR/disk.img boot=$RUNDIR/boot.part start size
	# The partitions as the MBR says (sfdisk's dump: start and size in sectors).
	read -r start size < <(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*1 :/ { print $2 + 0, $4 + 0 }')
	[[ -n ${size:-} ]] || { problem "no partition 1 on the disk"; return; }
	dd if="$img" of="$boot" bs=512 skip="$start" count="$size" status=none
	local f
	for f in /boot/syslinux/syslinux.cfg /loader/entries/liveroot.conf; do
		MTOOLS_SKIP_CHECK=1 mtype -i "$boot" "::$f" | tr -d '\r' | grep -iqE '^ *(kernel|linux) /boot/vmlinuz-6\.1\.0-57-amd64$' ||
			problem "$f does not start 6.1.0-57's kernel"
		MTOOLS_SKIP_CHECK=1 mtype -i "$boot" "::$f" | tr -d '\r' | grep -iqE '^ *initrd /boot/initrd\.img-6\.1\.0-57-amd64$' ||
			problem "$f does not start 6.1.0-57's initramfs"
	done
	local left
	left=$(MTOOLS_SKIP_CHECK=1 mdir -b -i "$boot" ::/boot | sed 's|.*/||' | grep -E '^(vmlinuz|initrd)' | sort | tr '\n' ' ')
	[[ $left == "initrd.img-6.1.0-57-amd64 vmlinuz-6.1.0-57-amd64 " ]] || problem "the boot partition's /boot holds: $left"
	fsck.fat -n "$boot" >"$RUNDIR/fsck.fat.out" 2>&1 || problem "fsck.fat -n on the boot partition: $(tail -n 3 "$RUNDIR/fsck.fat.out" | tr '\n' ' ')"
	rm -f "$boot"
	read -r start size < <(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*2 :/ { print $2 + 0, $4 + 0 }')
	local e
	dd if="$img" of="$RUNDIR/root.part" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) status=none conv=sparse
	e=$(e2fsck -fn "$RUNDIR/root.part" 2>&1) || problem "e2fsck -fn on the root partition: $(tail -n 3 <<<"$e" | tr '\n' ' ')"
	rm -f "$RUNDIR/root.part"
	echo "    root partition: $(tail -n 1 <<<"$e")"
	# Every boot's console, kept when something failed.
	if ((${#PROBLEMS[@]} > 0)); then
		local c
		for c in "$RUNDIR"/console.*.log; do [[ -e $c ]] && cp "$c" "$LOGDIR/debian-install.${c##*/}"; done
	fi
	return 0
}
