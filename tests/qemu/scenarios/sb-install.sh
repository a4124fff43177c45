# Secure Boot, the installed disk (issue 21): the signed stick (`make flash SB_KEY= SB_CERT=`) on
# USB under OVMF with Secure Boot enforcing; in the live session, under lockdown, `migrate --yes`
# onto a blank whole disk. Then:
#   - on the host: the disk is GPT (protective MBR, both tables valid), an ESP holding the
#     stick's signed systemd-boot and signed unified image byte for byte, one entry `efi
#     /EFI/Linux/liveroot.efi` with no options, a root partition of the x86-64 root type; the
#     box's EFI variable LiverootInstalled names exactly those two partitions;
#   - the disk boots alone in the same box (the same variable store), Secure Boot still on:
#     the firmware starts the signed image, whose sealed line still says root=live:LABEL=LIVE,
#     and the root is the disk's partition 2, found through the variable; what the live session
#     wrote is there; no live stack;
#   - a copy of the disk whose root holds another key file (what a stick carrying the disk's
#     partition GUIDs, which are no secret, would have), in this box: refused for its key;
#   - the same disk in a new box (a fresh variable store: no record): the signed image starts
#     but does not take the disk's root (it looks for the live medium, finds none and stops
#     without a shell).
. "$TOP/tests/qemu/flash-lib.sh"
DESC="Secure Boot install: migrate under lockdown onto a whole disk (GPT, signed loader and image); the disk boots alone under Secure Boot in this box, not in another"
FIRMWARE=uefi-sb
FLASH_BUS=usb
TIMEOUT=420
EXPECT="root-md7 secure-boot-on lockdown-on install partitioned-gpt boots-under-sb md7-only-root state-migrated efivar-written"
FLASH_UNCHANGED=
SB_INSTALL_IMG=$BUILD/flash-sb-install.img
VAR=LiverootInstalled-6c697665-726f-4f74-a9d1-3c0e5b8f2a47

skip() {
	[[ -n $STOCK ]] && { echo "the stock initramfs has no installed boot"; return; }
	local f
	for f in "$OVMF_SB_CODE" "$OVMF_SB_VARS" "$SB_TEST_KEY" "$SB_TEST_CERT"; do
		[[ -r $f ]] || { echo "$f: missing (make deps installs ovmf)"; return; }
	done
}

mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

prepare() {
	openssl pkey -in "$SB_TEST_KEY" -passin pass:snakeoil -out "$RUNDIR/db.key" 2>/dev/null ||
		{ problem "cannot decrypt $SB_TEST_KEY"; : >"$FLASH"; return; }
	make -s -C "$TOP" flash FLASH="$SB_INSTALL_IMG" APPEND="$FLASH_TEST_APPEND" SB_KEY="$RUNDIR/db.key" SB_CERT="$SB_TEST_CERT" \
		>"$RUNDIR/make-flash-sb.log" 2>&1 ||
		{ problem "make flash SB_KEY= SB_CERT= failed: $(tail -n 3 "$RUNDIR/make-flash-sb.log" | tr '\n' ' ')"; : >"$FLASH"; return; }
	rm -f "$RUNDIR/db.key"
	make_flash "$SB_INSTALL_IMG" "$FLASH"
	truncate -s 1G "$RUNDIR/disk.img"
	add_disk "$RUNDIR/disk.img" DISK
}

guest() {
	cat <<G
check_live_root
DISK=\$(disk_by_serial DISK)
check secure-boot-on sh -c 'dmesg | grep -qi "secure boot enabled"'
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
echo "lockdown: \$(cat /sys/kernel/security/lockdown)"
check lockdown-on grep -qE '\[(integrity|confidentiality)\]' /sys/kernel/security/lockdown
echo "written in the live session" >/root/live-file.txt
dd if=/dev/urandom of=/root/live-file.bin bs=1M count=4 2>/dev/null
sync
if migrate --yes "\$DISK" >/tmp/m.out 2>&1; then ok install; else fail install "exit \$?: \$(tail -n 2 /tmp/m.out)"; fi
sed 's/^/  | /' /tmp/m.out
check partitioned-gpt grep -q "partitioned: GPT: " /tmp/m.out
check boots-under-sb grep -q "boots by itself under Secure Boot" /tmp/m.out
check md7-only-root test "\$(md7_members)" = "\${DISK#/dev/}2"
check state-migrated grep -qx "migrated=\${DISK}2" /run/live/state
check efivar-written test -s /sys/firmware/efi/efivars/$VAR
echo "VAR \$(tail -c +5 /sys/firmware/efi/efivars/$VAR | tr '\n' ' ')"
echo "written after migrate" >/root/after.txt
for f in live-file.txt live-file.bin after.txt; do
	echo "SUM \$(sha256sum /root/\$f)"
done
sync
G
}

# The guest script for the disk's own boot in this box.
disk_checks() {
	local script=$RUNDIR/disk.sh sums
	sums=$(tr -d '\r' <"$LOGDIR/sb-install.live.log" | awk '$1 == "SUM" { print $2, $3 }')
	{
		echo 'root=$(liveinit find-medium --wait 5 PARTUUID='"$ROOT_GUID"' 2>/dev/null)'
		echo 'echo "root: $(mount_dev /) (PARTUUID='"$ROOT_GUID"': $root)"'
		echo 'check root-is-the-disk-s test -n "$root" -a "$(mount_dev /)" = "$root"'
		echo 'check secure-boot-on-disk sh -c "dmesg | grep -qi \"secure boot enabled\""'
		echo 'mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security'
		echo "check lockdown-on-disk grep -qE '\\[(integrity|confidentiality)\\]' /sys/kernel/security/lockdown"
		echo "check sealed-line test \"\$(cat /proc/cmdline)\" = \"root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 $FLASH_TEST_APPEND\""
		echo 'check no-md test ! -e /sys/block/md7'
		echo 'check no-live-stack sh -c "[ -z \"$(liveroot losetup -a)\" ] && ! [ -e /dev/mapper/live-rw ]"'
		while read -r sha file; do
			echo "check 'sum-${file##*/}' sh -c 'sha256sum $file | grep -q ^$sha'"
		done <<<"$sums"
	} >"$script"
	echo "$script"
}

# short_boot IMG ERE KEEPVARS WHAT: IMG alone, the firmware Secure Boot, until the console says
# ERE; KEEPVARS non-empty: this box's variable store, else a fresh one (another box). The
# console is kept as sb-install.WHAT.log.
short_boot() {
	local n=1 saved=("${QEMU_EXTRA[@]}") r=0
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	QEMU_EXTRA=()
	OVMF_KEEP_VARS=$3 qemu_start "$RUNDIR" "" "$1" "" 240
	QEMU_EXTRA=("${saved[@]}")
	wait_for "$2" 230 || r=1
	sleep 2
	qemu_quit
	qemu_wait
	cp "$RUNDIR/console.log" "$LOGDIR/sb-install.$4.log"
	return $r
}

verify() {
	not_kernel_boot
	cp "$RUNDIR/console.log" "$LOGDIR/sb-install.live.log"
	local var esp_guid
	var=$(tr -d '\r' <"$RUNDIR/console.log" | awk '$1 == "VAR" { $1 = ""; print; exit }')
	esp_guid=$(sed -n 's/.*esp=\([0-9a-f-]*\).*/\1/p' <<<"$var")
	ROOT_GUID=$(sed -n 's/.*root=\([0-9a-f-]*\).*/\1/p' <<<"$var")
	[[ -n $esp_guid && -n $ROOT_GUID ]] || { problem "the live session showed no LiverootInstalled variable: $var"; return; }
	local img=$RUNDIR/disk.img d
	d=$(sfdisk -d "$img" 2>&1)
	echo "$d" | sed 's/^/    /'
	grep -q '^label: gpt' <<<"$d" || problem "the disk is not GPT"
	grep -qi "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_guid" <<<"$d" || problem "partition 1 is not the ESP the variable names ($esp_guid)"
	grep -qi "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_GUID" <<<"$d" || problem "partition 2 is not the root the variable names ($ROOT_GUID)"
	sfdisk --verify "$img" >"$RUNDIR/verify.out" 2>&1 || problem "sfdisk --verify: $(tr '\n' ' ' <"$RUNDIR/verify.out")"
	local esp=$RUNDIR/esp.part out f
	dd if="$img" of="$esp" bs=1M skip=1 count=128 status=none
	out=$(fsck.fat -n "$esp" 2>&1) || problem "fsck.fat -n on the ESP: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	local ent
	ent=$(mt mtype -i "$esp" ::/loader/entries/liveroot.conf | tr -d '\r')
	grep -qx "efi /EFI/Linux/liveroot.efi" <<<"$ent" || problem "the ESP's entry does not start /EFI/Linux/liveroot.efi: $ent"
	grep -qE '^(options|linux|initrd)' <<<"$ent" && problem "the ESP's entry adds words or files: $ent"
	mt mdir -i "$esp" ::/boot >/dev/null 2>&1 && problem "the ESP has a /boot (unsigned kernel and initramfs)"
	for f in EFI/Linux/liveroot.efi EFI/BOOT/BOOTX64.EFI; do
		cmp -s <(mt mtype -i "$esp" "::/$f") <(mt mtype -i "$FLASH@@1M" "::/$f") || problem "/$f on the ESP is not the stick's"
	done
	rm -f "$esp"
	# The disk alone, in this box: the same variable store.
	local m
	OVMF_KEEP_VARS=1 boot_again "" 360 "$(disk_checks)" "$img"
	cp "$RUNDIR/console.log" "$LOGDIR/sb-install.disk.log"
	for m in root-is-the-disk-s secure-boot-on-disk lockdown-on-disk sealed-line no-md no-live-stack \
		sum-live-file.txt sum-live-file.bin sum-after.txt done; do
		marker "$m" || problem "the disk's boot in this box: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'liveroot: installed: the loader came from this box' "$RUNDIR/console.log" || problem "the disk's boot did not say it took the installed root"
	# A copy of the disk whose root holds another key (what a stick made to carry the disk's
	# partition GUIDs would have), in this box: the image finds the root and refuses it.
	local start size copy=$RUNDIR/copy.img part=$RUNDIR/copy-root.part log
	read -r start size < <(sfdisk -d "$img" | awk -F'[=,]' '/^[^ ]*2 :/ { print $2 + 0, $4 + 0 }')
	cp --sparse=always "$img" "$copy"
	dd if="$copy" of="$part" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) status=none conv=sparse
	head -c 32 /dev/urandom >"$RUNDIR/otherkey"
	# The journal first (the guest powered off with transactions in it): debugfs reads past it,
	# and the next mount's replay would bring the old directory entry back.
	e2fsck -fy "$part" >/dev/null 2>&1
	debugfs -w -R "rm /etc/liveroot/installed-key" "$part" >/dev/null 2>&1
	debugfs -w -R "write $RUNDIR/otherkey /etc/liveroot/installed-key" "$part" >"$RUNDIR/debugfs.out" 2>&1 ||
		problem "cannot put another key on the copy: $(tr '\n' ' ' <"$RUNDIR/debugfs.out")"
	cmp -s "$RUNDIR/otherkey" <(debugfs -R "cat /etc/liveroot/installed-key" "$part" 2>/dev/null) ||
		problem "the copy's root does not hold the other key"
	dd if="$part" of="$copy" bs=1M oflag=seek_bytes seek=$((start * 512)) conv=notrunc status=none
	rm -f "$part"
	if ! short_boot "$copy" 'liveroot: installed: PARTUUID' 1 otherkey; then
		problem "a root with another key: no refusal"
	fi
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aq "liveroot: installed: PARTUUID=$ROOT_GUID: /etc/liveroot/installed-key is not the key this box recorded" <<<"$log" ||
		problem "a root with another key: not refused for its key: $(grep -a -m1 'liveroot: installed' <<<"$log")"
	grep -aq "liveroot: the boot cannot continue" <<<"$log" || problem "a root with another key: the boot went on"
	echo "    another key: $(grep -a -m1 'liveroot: installed: PARTUUID' <<<"$log")"
	rm -f "$copy"
	# The disk in another box (a fresh store): the image starts and does not take the root.
	short_boot "$img" 'liveroot: find-medium' "" otherbox ||
		problem "another box: no find-medium failure (the live medium looked for and not found)"
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aq 'EFI stub: UEFI Secure Boot is enabled' <<<"$log" || problem "another box: the signed image did not start under Secure Boot"
	grep -aq 'liveroot: installed:' <<<"$log" && problem "another box: the installed root was taken without this box's record"
	grep -aqE 'EXT4-fs \(sd[a-z]2\): mounted' <<<"$log" && problem "another box: the disk's root was mounted"
	echo "    another box: $(grep -a -m1 'liveroot: find-medium' <<<"$log")"
	return 0
}
