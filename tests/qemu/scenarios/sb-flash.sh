# Secure Boot, the first part (issue 21): `make flash SB_KEY= SB_CERT=` as a USB stick under OVMF
# with Secure Boot enforcing (Debian's snakeoil firmware: db holds the snakeoil certificate, the
# stick is signed with its key, decrypted into the run directory; no key is kept in the tree).
#   (a) the baseline: today's unsigned stick is refused by the firmware, nothing boots;
#   (c) one byte changed in the signed unified image's .linux, then in its .initrd (mcopy out,
#       flip, mcopy back): the firmware refuses the image, nothing boots;
#   (b)+(d) the main boot: the signed stick, its loader entry edited on the FAT to add
#       `options rd.break init=/bin/sh`, boots to the sample OS with Secure Boot on and the
#       kernel in lockdown, and the kernel's command line is the image's own: the words never
#       reach it;
#   (e) an update under Secure Boot and lockdown: in that boot a signed v2 (in /run/live/ram as
#       imgfetch leaves it) is written to the stick by syncflash; the next power-on, Secure Boot
#       still on, runs v2 from the stick, verified.
# The refusals are short boots (OVMF, then stop at the refusal), made in prepare().
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="signed make flash (UKI + systemd-boot) under OVMF Secure Boot on USB: unsigned, altered image refused; edited entry ignored; an update synced and booted under lockdown"
FIRMWARE=uefi-sb
FLASH_BUS=usb
TIMEOUT=420
EXPECT="root-md7 md7-member-live-rw medium-partition medium-fat32 image-verified image-on-medium squashfs-mounted
	cmdline-ends-with-append secure-boot-on lockdown-on cmdline-is-the-image-s entry-words-ignored
	booted-v1 synced nothing-to-do medium-ro-again"
FLASH_UNCHANGED=
SB_FLASH_IMG=$BUILD/flash-sb-test.img
SB_EVIL="rd.break init=/bin/sh"

skip() {
	[[ -n $STOCK ]] && { echo "the stock initramfs loads a fixed list"; return; }
	local f
	for f in "$OVMF_SB_CODE" "$OVMF_SB_VARS" "$SB_TEST_KEY" "$SB_TEST_CERT"; do
		[[ -r $f ]] || { echo "$f: missing (make deps installs ovmf)"; return; }
	done
}

mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

# sb_refused IMG WHAT ERE: boot IMG under Secure Boot until the console says ERE (the firmware's
# refusal); then nothing may have started a kernel. The console log is kept as console-WHAT.log.
sb_refused() {
	local img=$1 what=$2 re=$3
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "" "$img" "" 180
	if wait_for "$re" 170; then
		sleep 2
	else
		problem "$what: no line matching '$re' (the firmware's refusal)"
	fi
	qemu_quit
	qemu_wait
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqE 'Linux version|EFI stub|sample-os' <<<"$log" && problem "$what: a kernel started: $(grep -aE 'Linux version|EFI stub|sample-os' <<<"$log" | head -n 2 | tr '\n' ' ')"
	echo "$what: $(grep -aoE "$re" <<<"$log" | head -n 1 | sed "s/\x1b\[[0-9;]*m//g")" >>"$RUNDIR/refusals.txt"
	mv "$RUNDIR/console.log" "$RUNDIR/console-$what.log"
}

# sb_flip IMG SECTION WHAT: a copy of IMG whose /EFI/Linux/liveroot.efi has one byte changed
# in SECTION, 1 MiB into it (or in its middle when shorter); prints the copy's path.
sb_flip() {
	local img=$1 sec=$2 out=$RUNDIR/flip-$3.img efi=$RUNDIR/flip.efi off size
	make_flash "$img" "$out"
	mt mcopy -n -i "$out@@1M" ::/EFI/Linux/liveroot.efi "$efi" || return 1
	read -r off size < <(objdump -h "$efi" | awk -v s="$sec" '$2 == s { print $6, $3 }')
	[[ -n $off ]] || return 1
	off=$((16#$off)) size=$((16#$size))
	((size > 2 << 20)) && off=$((off + (1 << 20))) || off=$((off + size / 2))
	local b
	b=$(od -An -tu1 -j "$off" -N1 "$efi" | tr -d ' ')
	printf "$(printf '\\%03o' $(((b ^ 0xff) & 0xff)))" | dd of="$efi" bs=1 seek="$off" conv=notrunc status=none
	cmp -s "$efi" <(mt mtype -i "$img@@1M" ::/EFI/Linux/liveroot.efi) && return 1
	mt mcopy -o -i "$out@@1M" "$efi" ::/EFI/Linux/liveroot.efi || return 1
	rm -f "$efi"
	echo "$out"
}

prepare() {
	: >"$RUNDIR/refusals.txt"
	# The signing key, decrypted for this run only.
	openssl pkey -in "$SB_TEST_KEY" -passin pass:snakeoil -out "$RUNDIR/db.key" 2>/dev/null ||
		{ problem "cannot decrypt $SB_TEST_KEY"; : >"$FLASH"; return; }
	# (a) today's stick, unsigned.
	flash_build || { : >"$FLASH"; return; }
	# OVMF refuses systemd-boot itself (\EFI\BOOT\BOOTX64.EFI, unsigned).
	sb_refused "$FLASH_TEST_IMG" unsigned 'BdsDxe: failed to load Boot[0-9]+ .*USB.*: Access Denied'
	make -s -C "$TOP" flash FLASH="$SB_FLASH_IMG" APPEND="$FLASH_TEST_APPEND" SB_KEY="$RUNDIR/db.key" SB_CERT="$SB_TEST_CERT" \
		>"$RUNDIR/make-flash-sb.log" 2>&1 ||
		{ problem "make flash SB_KEY= SB_CERT= failed: $(tail -n 3 "$RUNDIR/make-flash-sb.log" | tr '\n' ' ')"; : >"$FLASH"; return; }
	rm -f "$RUNDIR/db.key"
	# (c) one byte changed in the kernel, then in the initramfs, inside the signed image.
	local sec f
	for sec in .linux .initrd; do
		if f=$(sb_flip "$SB_FLASH_IMG" "$sec" "${sec#.}"); then
			# The signed systemd-boot starts; the firmware's LoadImage refuses the image.
			sb_refused "$f" "altered-${sec#.}" 'Error loading .EFI.Linux.liveroot.efi: (Access Denied|Security Violation)'

			rm -f "$f"
		else
			problem "cannot change a byte of $sec in /EFI/Linux/liveroot.efi"
		fi
	done
	# (d) the main boot's stick: its entry asks for a shell.
	make_flash "$SB_FLASH_IMG" "$FLASH"
	mt mtype -i "$FLASH@@1M" ::/loader/entries/liveroot.conf | tr -d '\r' >"$RUNDIR/entry.conf"
	echo "options $SB_EVIL" >>"$RUNDIR/entry.conf"
	mt mcopy -o -i "$FLASH@@1M" "$RUNDIR/entry.conf" ::/loader/entries/liveroot.conf
	# (e) the update the main boot writes to the stick.
	signed_v2
	: >"$RUNDIR/console.log"
}

guest() {
	flash_guest_checks '/dev/sd[a-z]1'
	cat <<G
dmesg | grep -iE 'secure ?boot|lockdown' || true
check secure-boot-on sh -c 'dmesg | grep -qi "secure boot enabled"'
check cmdline-is-the-image-s test "\$(cat /proc/cmdline)" = "root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 $FLASH_TEST_APPEND"
check entry-words-ignored sh -c '! grep -qE "rd.break|init=/bin/sh" /proc/cmdline'
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
echo "lockdown: \$(cat /sys/kernel/security/lockdown)"
check lockdown-on grep -qE '\[(integrity|confidentiality)\]' /sys/kernel/security/lockdown
G
	# (e) syncflash of v2 under lockdown (the lines flash-syncflash runs under SeaBIOS).
	sync_v2_guest | grep -v '^check_live_root$'
}

verify() {
	not_kernel_boot
	local ent
	ent=$(mt mtype -i "$FLASH@@1M" ::/loader/entries/liveroot.conf | tr -d '\r')
	grep -qx "efi /EFI/Linux/liveroot.efi" <<<"$ent" || problem "the loader entry does not start /EFI/Linux/liveroot.efi: $ent"
	grep -qx "options $SB_EVIL" <<<"$ent" || problem "the edited entry lacks 'options $SB_EVIL': $ent"
	mt mtype -i "$FLASH@@1M" ::/loader/loader.conf | tr -d '\r' | grep -qx 'default liveroot.conf' || problem "loader.conf's default is not liveroot.conf"
	local d=$RUNDIR/sbv f
	mkdir -p "$d"
	for f in EFI/Linux/liveroot.efi EFI/BOOT/BOOTX64.EFI; do
		mt mcopy -n -i "$FLASH@@1M" "::/$f" "$d/x.efi" && sbverify --cert "$SB_TEST_CERT" "$d/x.efi" >/dev/null 2>&1 ||
			problem "/$f: not signed with $SB_TEST_CERT"
	done
	# syslinux (BIOS) still boots the plain kernel and initramfs.
	mt mtype -i "$FLASH@@1M" ::/boot/syslinux/syslinux.cfg | tr -d '\r' | grep -q 'KERNEL /boot/vmlinuz' || problem "syslinux.cfg does not boot /boot/vmlinuz"
	# Signed, still reproducible: built again a second later under another name, the same bytes.
	openssl pkey -in "$SB_TEST_KEY" -passin pass:snakeoil -out "$RUNDIR/db.key" 2>/dev/null
	sleep 1
	make -s -C "$TOP" flash FLASH="$d/again.img" APPEND="$FLASH_TEST_APPEND" SB_KEY="$RUNDIR/db.key" SB_CERT="$SB_TEST_CERT" \
		>"$RUNDIR/make-flash-again.log" 2>&1 || problem "make flash SB_KEY= SB_CERT= (again) failed"
	rm -f "$RUNDIR/db.key"
	cmp -s "$d/again.img" "$SB_FLASH_IMG" || problem "two signed builds differ: $(cmp "$d/again.img" "$SB_FLASH_IMG" 2>&1)"
	sed 's/^/    /' "$RUNDIR/refusals.txt"
	rm -rf "$d"
	# (e) the next power-on, Secure Boot still on: v2 from the stick.
	local script=$RUNDIR/again.sh m fs
	{
		v2_boot_checks
		echo "check secure-boot-on-again sh -c 'dmesg | grep -qi \"secure boot enabled\"'"
	} >"$script"
	boot_again "" 300 "$script" "$FLASH"
	for m in root-md7 booted-v2 verified primary-pair secure-boot-on-again done; do
		marker "$m" || problem "Secure Boot power-on after the update: no 'LIVEROOT-TEST ok $m'"
	done
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "Secure Boot power-on after the update: $fs"
	return 0
}
