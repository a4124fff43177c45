# Secure Boot recovery (issue 21): `make flash SB_KEY= SB_CERT= RECOVERY_HASH=` under OVMF with
# Secure Boot enforcing (snakeoil keys, as sb-flash), the stick on USB.
#   (a) prepare(): the Secure Boot stick of sb-flash, made without a recovery hash, with its
#       image deleted from the FAT: the boot fails, and under Secure Boot /init offers no shell:
#       it says why and restarts on Enter (a line typed there is never run);
#   (b) the main boot: the stick with a hash, loader.conf's default switched on the FAT to the
#       recovery entry (what anyone holding the stick can do): the signed recovery image starts,
#       /init stops at rd.break's shell and asks for the password, a wrong one is refused, the
#       right one gives a shell that runs a command, the password is never echoed, and leaving
#       the shell continues the boot to the sample OS, Secure Boot on.
. "$TOP/tests/qemu/flash-lib.sh"
DESC="signed recovery entry under OVMF Secure Boot: password asked, wrong refused, right gives a shell; a failed boot without a hash offers none"
FIRMWARE=uefi-sb
FLASH_BUS=usb
TIMEOUT=420
EXPECT="root-md7 secure-boot-on cmdline-is-the-recovery-image-s recovery-shell-42"
REC_PW="open sesame 42"
REC_IMG=$BUILD/flash-sb-recovery.img
SB_PLAIN_IMG=$BUILD/flash-sb-test.img

skip() {
	[[ -n $STOCK ]] && { echo "the stock initramfs has no recovery gate"; return; }
	local f
	for f in "$OVMF_SB_CODE" "$OVMF_SB_VARS" "$SB_TEST_KEY" "$SB_TEST_CERT"; do
		[[ -r $f ]] || { echo "$f: missing (make deps installs ovmf)"; return; }
	done
}

mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

# sb_make OUT [VAR=VALUE...]: make flash signed with the snakeoil key (decrypted for the call).
sb_make() {
	local out=$1
	shift
	openssl pkey -in "$SB_TEST_KEY" -passin pass:snakeoil -out "$RUNDIR/db.key" 2>/dev/null || return 1
	make -s -C "$TOP" flash FLASH="$out" APPEND="$FLASH_TEST_APPEND" SB_KEY="$RUNDIR/db.key" SB_CERT="$SB_TEST_CERT" "$@" \
		>"$RUNDIR/make-$(basename "$out").log" 2>&1
	local rc=$?
	rm -f "$RUNDIR/db.key"
	return $rc
}

# (a) a failed Secure Boot boot, no hash baked in: no shell.
no_hash_rescue() {
	local img=$RUNDIR/nohash.img
	make_flash "$SB_PLAIN_IMG" "$img"
	mt mdel -i "$img@@1M" ::/LiveOS/squashfs.img || { problem "cannot delete LiveOS/squashfs.img"; return; }
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "" "$img" "" 240
	if wait_for 'liveinit: recovery: no shell \(said above\)' 230; then
		marker_line=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aE 'liveinit: recovery: .*no recovery password was set' | head -n 1)
		[[ -n $marker_line ]] || problem "no-hash boot: the refusal does not say why"
		sleep 2
		# Typed at the prompt: read as the Enter that restarts, never run by a shell.
		send 'echo NOSHELL-$((6*7))'
		wait_for 'reboot: Restarting system' 60 || problem "no-hash boot: Enter did not restart the machine"
		grep -aq 'NOSHELL-42' "$RUNDIR/console.log" && problem "no-hash boot: a shell ran the typed line"
	else
		problem "no-hash boot: no 'liveinit: recovery: no shell' line after the failed boot"
	fi
	grep -aqE 'built-in shell \(ash\)' "$RUNDIR/console.log" && problem "no-hash boot: a shell started"
	qemu_quit
	qemu_wait
	mv "$RUNDIR/console.log" "$RUNDIR/console-nohash.log"
	rm -f "$img"
}

prepare() {
	local hash
	hash=$(openssl passwd -6 -salt sbrecov "$REC_PW") || { problem "openssl passwd -6 failed"; : >"$FLASH"; return; }
	# A malformed hash is refused before anything is built.
	local out
	out=$(make -s -C "$TOP" flash FLASH="$RUNDIR/bad.img" RECOVERY_HASH='$6$x$short' 2>&1) && problem "make flash took a malformed RECOVERY_HASH"
	grep -q 'mkflash: RECOVERY_HASH: the hash is not 86 characters' <<<"$out" || problem "malformed RECOVERY_HASH: $out"
	[[ -e $RUNDIR/bad.img ]] && problem "a refused make flash left $RUNDIR/bad.img"
	# (a) sb-flash's stick (cached by its stamp when sb-flash ran first).
	if sb_make "$SB_PLAIN_IMG"; then
		no_hash_rescue
	else
		problem "make flash SB_KEY= (no hash) failed: $(tail -n 3 "$RUNDIR/make-$(basename "$SB_PLAIN_IMG").log" | tr '\n' ' ')"
	fi
	# (b) the recovery stick, its default switched to the recovery entry.
	sb_make "$REC_IMG" RECOVERY_HASH="$hash" ||
		{ problem "make flash SB_KEY= RECOVERY_HASH= failed: $(tail -n 3 "$RUNDIR/make-$(basename "$REC_IMG").log" | tr '\n' ' ')"; : >"$FLASH"; return; }
	make_flash "$REC_IMG" "$FLASH"
	printf 'default liveroot-recovery.conf\ntimeout 0\n' >"$RUNDIR/loader.conf"
	mt mcopy -o -i "$FLASH@@1M" "$RUNDIR/loader.conf" ::/loader/loader.conf
	: >"$RUNDIR/console.log"
}

guest() {
	cat <<G
check_live_root
echo "cmdline: \$(cat /proc/cmdline)"
check secure-boot-on sh -c 'dmesg | grep -qi "secure boot enabled"'
check cmdline-is-the-recovery-image-s test "\$(cat /proc/cmdline)" = "root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 $FLASH_TEST_APPEND liveroot.recovery"
G
}

drive() {
	if ! wait_for 'rd.break: the root is mounted at /sysroot' "$TIMEOUT"; then
		problem "the recovery entry did not stop at rd.break"
		return
	fi
	wait_for 'liveinit: recovery: .*the shell needs the recovery password' 30 || { problem "no password asked"; return; }
	wait_for 'password: ' 10 || { problem "no password prompt"; return; }
	sleep 2
	send "not the password"
	wait_for 'liveinit: recovery: wrong password \(1 of 3\)' 30 || { problem "a wrong password was not refused"; return; }
	sleep 3
	send "$REC_PW"
	wait_for 'liveinit: recovery: password accepted' 30 || { problem "the right password was not accepted"; return; }
	sleep 2
	# Quoted so the echo of the typed line does not itself look like the marker.
	send 'test -s /etc/liveroot/recovery.hash && grep -q " /sysroot " /proc/mounts && echo LIVEROOT-TEST" ok" recovery-shell-$((6*7))'
	wait_for 'LIVEROOT-TEST ok recovery-shell-42' 30 || { problem "the recovery shell did not run the command"; return; }
	send 'exit'
	wait_for 'sample-os: up' 120 || problem "the boot did not continue after the recovery shell"
}

verify() {
	not_kernel_boot
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqF "$REC_PW" <<<"$log" && problem "the password was echoed on the console"
	grep -aq 'wrong password (1 of 3)' <<<"$log" || problem "no refusal of the wrong password on the console"
	# The stick as made: the default entry is the plain one, the recovery entry starts its own
	# signed image.
	mt mtype -i "$REC_IMG@@1M" ::/loader/loader.conf | tr -d '\r' | grep -qx 'default liveroot.conf' || problem "loader.conf's default is not liveroot.conf"
	local ent
	ent=$(mt mtype -i "$REC_IMG@@1M" ::/loader/entries/liveroot-recovery.conf | tr -d '\r')
	grep -qx 'efi /EFI/Linux/liveroot-recovery.efi' <<<"$ent" && grep -qx 'title liveroot recovery' <<<"$ent" ||
		problem "the recovery entry: $ent"
	local d=$RUNDIR/sbv f
	mkdir -p "$d"
	for f in EFI/Linux/liveroot-recovery.efi EFI/Linux/liveroot.efi; do
		mt mcopy -n -i "$REC_IMG@@1M" "::/$f" "$d/x.efi" && sbverify --cert "$SB_TEST_CERT" "$d/x.efi" >/dev/null 2>&1 ||
			problem "/$f: not signed with $SB_TEST_CERT"
	done
	rm -rf "$d"
	[[ -f $RUNDIR/console-nohash.log ]] || problem "the no-hash boot did not run"
	return 0
}
