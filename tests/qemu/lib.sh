# tests/qemu/lib.sh — host side of the QEMU scenarios (sourced by run.sh and mk/demo.sh).
#
# A boot = a private copy of a flash image + an optional TESTS disk (ext4, label TESTS) holding
# test.sh, lib.sh (guest-lib.sh), bin/ (liveroot and its applet links, optional bundled tools).
# The sample OS mounts the TESTS disk at /run/tests, runs test.sh on the console and powers off.
# QEMU runs in the background: console on a FIFO (stdin) and a log file (stdout), HMP monitor on
# a unix socket, the whole run bounded by `timeout`.

TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_MEM=${QEMU_MEM:-768}
KERNEL=${KERNEL:-$BUILD/kernel/vmlinuz}
INITRD=${INITRD:-$BUILD/initramfs.cpio.gz}
# As the Makefile does, so builds made here and by make are the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 1700000000)}
CONSOLE_APPEND=${CONSOLE_APPEND:-console=ttyS0 panic=-1 loglevel=4}
[[ -v QEMU_EXTRA ]] || QEMU_EXTRA=()
[[ -v TESTS_FILES ]] || TESTS_FILES=()
# AGAIN_EXTRA: QEMU arguments boot_again adds to each further boot (a device such as -device
# i6300esb; QEMU_EXTRA is the first boot's and is not carried over).
[[ -v AGAIN_EXTRA ]] || AGAIN_EXTRA=()
# FLASH_DRIVE_OPTS: extra -drive options for the flash only (mk/bench.sh bootverity throttles its
# reads: throttling.bps-read=N); empty for every scenario.
FLASH_DRIVE_OPTS=${FLASH_DRIVE_OPTS:-}

# make_flash IMAGE OUT: a private sparse copy (reflink when the filesystem can).
make_flash() {
	cp --reflink=auto --sparse=always "$1" "$2"
}

# hook_initrd OUT TEXT: $INITRD with a second archive appended (the kernel unpacks concatenated
# archives in turn) holding /etc/liveroot/test-hooks = TEXT, root-owned, mode 644: the boot's
# test hooks (core/src/testhook.rs; never the kernel command line). Boot it with INITRD=OUT.
hook_initrd() {
	local d
	d=$(mktemp -d)
	mkdir -p "$d/etc/liveroot"
	printf '%s\n' "$2" >"$d/etc/liveroot/test-hooks"
	chmod 755 "$d/etc" "$d/etc/liveroot"
	chmod 644 "$d/etc/liveroot/test-hooks"
	{ cat "$INITRD" && (cd "$d" && find etc | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n); } >"$1"
	local rc=$?
	rm -rf "$d"
	return $rc
}

# make_tests_disk OUT SCRIPTFILE [TOOLS...]: the TESTS disk for one boot.
# TOOLS are host programs bundled with their libraries (test images only: dmsetup, mdadm...).
# TESTS_FILES (array) lists extra files to put next to test.sh.
make_tests_disk() {
	local out=$1 script=$2 dir
	shift 2
	dir=$(mktemp -d "${out}.d.XXXXXX")
	mkdir -p "$dir/bin"
	cp "$TOP/tests/qemu/guest-lib.sh" "$dir/lib.sh"
	cp "$script" "$dir/test.sh"
	local f
	for f in "${TESTS_FILES[@]}"; do
		cp "$f" "$dir/"
	done
	if [[ -x $BUILD/liveroot ]]; then
		cp "$BUILD/liveroot" "$dir/bin/liveroot"
		local a
		for a in $("$BUILD/liveroot" --list 2>/dev/null); do
			ln -sf liveroot "$dir/bin/$a"
		done
	fi
	if (($#)); then
		# Wrappers in bin/, programs in usr/sbin/, libraries at their host paths.
		# A tool that cannot be bundled fails the boot's set-up: the checks that need it must
		# not run without it and pass.
		if ! "$TOP/mk/bundle.sh" --wrap "$dir" "$@" >/dev/null; then
			rm -rf "$dir"
			return 1
		fi
	fi
	printf 'STOCK=%s\n' "${STOCK:-}" >"$dir/env"
	rm -f "$out"
	local rc=0
	mke2fs -q -F -t ext4 -L TESTS -d "$dir" "$out" 32M >/dev/null || rc=1
	rm -rf "$dir"
	return $rc
}

# Boots through firmware (the flash's own boot loader, never -kernel), for qemu_args/qemu_start
# and boot_again; a scenario sets them (run.sh runs each scenario in its own subshell):
#   FIRMWARE=        "" the fast path: -kernel KERNEL -initrd INITRD -append "CONSOLE_APPEND APPEND"
#                    bios: SeaBIOS (QEMU's default) boots the boot disk's MBR; APPEND is not used
#                    uefi: OVMF (OVMF_CODE below, a fresh copy of OVMF_VARS per boot in RUNDIR)
#                          boots the boot disk's \EFI\BOOT\BOOTX64.EFI; APPEND is not used
#                    uefi-sb: the same with Secure Boot on and enforcing (q35 with SMM, the
#                          pflash secure): OVMF_SB_CODE, a fresh copy of OVMF_SB_VARS per boot
#                          (OVMF_KEEP_VARS: the same store again)
#                          (Debian's snakeoil pair: PK, KEK and db hold the certificate
#                          SB_TEST_CERT, whose key SB_TEST_KEY has the password `snakeoil`)
#   FLASH_BUS=virtio how the boot disk (the flash; boot_again's first DISK) is attached:
#                    virtio (virtio-blk-pci), usb (qemu-xhci + usb-storage: a USB stick, the
#                    only device on that controller, so the boot must load xhci_pci and
#                    usb-storage by modalias to see it) or
#                    ide (ide-hd on the PIIX IDE controller: a CF card on an IDE adapter).
#                    With FIRMWARE set it is the first boot device (bootindex=0).
# The kernel command line is then the boot entry's on the disk (mk/mkflash.sh: APPEND=...).
FIRMWARE=${FIRMWARE:-}
FLASH_BUS=${FLASH_BUS:-virtio}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS.fd}
OVMF_SB_CODE=${OVMF_SB_CODE:-/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd}
OVMF_SB_VARS=${OVMF_SB_VARS:-/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd}
# Set: the next boots keep RUNDIR's variable store (one box powered on again) instead of a
# fresh copy (a new box).
OVMF_KEEP_VARS=${OVMF_KEEP_VARS:-}
SB_TEST_KEY=${SB_TEST_KEY:-/usr/share/ovmf/PkKek-1-snakeoil.key}
SB_TEST_CERT=${SB_TEST_CERT:-/usr/share/ovmf/PkKek-1-snakeoil.pem}

# boot_disk_args FILE ID [DRIVEOPTS]: QEMU arguments attaching FILE as the boot disk on FLASH_BUS
# (device id ID, drive ID"drv").
boot_disk_args() {
	local file=$1 id=$2 opts=${3:-} boot=
	[[ -n $FIRMWARE ]] && boot=,bootindex=0
	local drive="file=$file,format=raw,if=none,id=${id}drv${opts:+,$opts}"
	case $FLASH_BUS in
	virtio) printf '%s\n' -drive "$drive" -device "virtio-blk-pci,drive=${id}drv,id=$id$boot" ;;
	usb) printf '%s\n' -device "qemu-xhci,id=xhci$id" -drive "$drive" -device "usb-storage,bus=xhci$id.0,drive=${id}drv,id=$id$boot" ;;
	ide) printf '%s\n' -drive "$drive" -device "ide-hd,drive=${id}drv,bus=ide.0,id=$id$boot" ;;
	*) echo "FLASH_BUS=$FLASH_BUS: expected virtio, usb or ide" >&2; return 1 ;;
	esac
}

# qemu_args APPEND FLASH [TESTSDISK]: QEMU_ARGS without the console/monitor wiring.
# The flash disk's device id is "flash" (for `device_del flash`), the TESTS disk's "tests".
# FIRMWARE and FLASH_BUS (above) choose how it boots; RUNDIR holds the UEFI variables.
qemu_args() {
	local append=$1 flash=$2 tests=${3:-}
	QEMU_ARGS=(-accel tcg -m "$QEMU_MEM" -smp 1 -no-reboot -display none -nodefaults)
	case $FIRMWARE in
	"") QEMU_ARGS+=(-kernel "$KERNEL" -initrd "$INITRD" -append "$CONSOLE_APPEND $append") ;;
	bios) QEMU_ARGS+=(-boot menu=off,strict=on) ;;
	uefi)
		[[ -n $OVMF_KEEP_VARS && -e $RUNDIR/ovmf-vars.fd ]] || cp "$OVMF_VARS" "$RUNDIR/ovmf-vars.fd"
		QEMU_ARGS+=(-drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE"
			-drive "if=pflash,format=raw,file=$RUNDIR/ovmf-vars.fd") ;;
	uefi-sb)
		[[ -n $OVMF_KEEP_VARS && -e $RUNDIR/ovmf-vars.fd ]] || cp "$OVMF_SB_VARS" "$RUNDIR/ovmf-vars.fd"
		QEMU_ARGS+=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on
			-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_SB_CODE"
			-drive "if=pflash,format=raw,unit=1,file=$RUNDIR/ovmf-vars.fd") ;;
	*) echo "FIRMWARE=$FIRMWARE: expected bios, uefi or uefi-sb (or empty)" >&2; return 1 ;;
	esac
	if [[ -n $flash ]]; then
		local a
		mapfile -t a < <(boot_disk_args "$flash" flash "$FLASH_DRIVE_OPTS")
		QEMU_ARGS+=("${a[@]}")
	fi
	if [[ -n $tests ]]; then
		QEMU_ARGS+=(-drive "file=$tests,format=raw,if=none,id=testsdrv"
			-device "virtio-blk-pci,drive=testsdrv,id=tests")
	fi
	QEMU_ARGS+=("${QEMU_EXTRA[@]}")
}

# qemu_start RUNDIR APPEND FLASH [TESTSDISK] [TIMEOUT]: boot in the background.
# Sets QEMU_PID; console in RUNDIR/console.log, input via FIFO RUNDIR/console.in,
# HMP monitor at RUNDIR/monitor.sock.
qemu_start() {
	local run=$1 tmo=${5:-180}
	RUNDIR=$run
	qemu_args "$2" "$3" "${4:-}"
	rm -f "$run/console.in" "$run/monitor.sock"
	mkfifo "$run/console.in"
	# Held open read-write so QEMU never sees EOF and opening never blocks.
	exec {CONSOLE_FD}<>"$run/console.in"
	timeout --kill-after=5 "$tmo" "$QEMU" "${QEMU_ARGS[@]}" \
		-serial stdio -monitor "unix:$run/monitor.sock,server,nowait" \
		<"$run/console.in" >"$run/console.log" 2>&1 &
	QEMU_PID=$!
	RUNDIR=$run
}

qemu_running() { kill -0 "$QEMU_PID" 2>/dev/null; }

# qemu_wait: wait for QEMU to end; sets QEMU_RC (124 = timed out).
qemu_wait() {
	QEMU_RC=0
	wait "$QEMU_PID" || QEMU_RC=$?
	exec {CONSOLE_FD}>&-
}

# wait_for ERE [SECONDS]: until the console log has a line matching ERE (case-insensitive).
# Fails when QEMU ends or time runs out first.
wait_for() {
	local re=$1 n=$(( ${2:-120} * 4 ))
	while ((n-- > 0)); do
		tr -d '\r' <"$RUNDIR/console.log" | grep -aqiE -- "$re" && return 0
		qemu_running || { tr -d '\r' <"$RUNDIR/console.log" | grep -aqiE -- "$re"; return; }
		sleep 0.25
	done
	return 1
}

# send LINE: type a line on the serial console (the guest's shell reads it).
send() { printf '%s\n' "$1" >&"$CONSOLE_FD"; }

# monitor CMD: one HMP command; prints the monitor's answer.
monitor() {
	printf '%s\n' "$1" | socat -t 2 - "UNIX-CONNECT:$RUNDIR/monitor.sock" 2>/dev/null | tr -d '\r'
}

# qemu_quit: stop the guest now (monitor quit, then kill).
qemu_quit() {
	monitor quit >/dev/null
	local n=20
	while qemu_running && ((n-- > 0)); do sleep 0.25; done
	qemu_running && kill "$QEMU_PID" 2>/dev/null
	return 0
}

# marker NAME: the console has `LIVEROOT-TEST ok NAME`.
marker() { tr -d '\r' <"$RUNDIR/console.log" | grep -aqE -- "LIVEROOT-TEST ok $1( |\$)"; }

# add_disk FILE SERIAL: one more virtio disk for the next boot (QEMU_EXTRA), found in the guest
# with disk_by_serial SERIAL.
add_disk() {
	QEMU_EXTRA+=(-drive "file=$1,format=raw,if=none,id=drv$2" -device "virtio-blk-pci,drive=drv$2,id=$2,serial=$2")
}

# boot_again APPEND TIMEOUT SCRIPTFILE DISK...: a further boot in the same RUNDIR, from verify():
# no flash, DISK... as vda, vdb, ... and a TESTS disk with SCRIPTFILE (guest-lib.sh sourced,
# done_tests appended) last. The previous console log is kept as console.N.log; the new one is
# console.log (marker() reads it). Returns when QEMU has ended; QEMU_RC as qemu_wait.
# With FIRMWARE=bios|uefi (e.g. `FIRMWARE=uefi boot_again "" 400 script disk.img`), the first
# DISK is the boot disk, attached on FLASH_BUS, and firmware boots it (APPEND unused).
boot_again() {
	local append=$1 tmo=$2 script=$3 n=1 i=0 d saved=("${QEMU_EXTRA[@]}")
	shift 3
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	{ echo ". /run/tests/lib.sh"; cat "$script"; echo done_tests; } >"$RUNDIR/test.$n.sh"
	make_tests_disk "$RUNDIR/tests.$n.img" "$RUNDIR/test.$n.sh" || { problem "cannot build the TESTS disk"; return 1; }
	QEMU_EXTRA=("${AGAIN_EXTRA[@]}")
	local boot=
	[[ -n $FIRMWARE ]] && { boot=$1; shift; }
	for d in "$@" "$RUNDIR/tests.$n.img"; do
		i=$((i + 1))
		QEMU_EXTRA+=(-drive "file=$d,format=raw,if=none,id=again$i" -device "virtio-blk-pci,drive=again$i")
	done
	qemu_start "$RUNDIR" "$append" "$boot" "" "$tmo"
	QEMU_EXTRA=("${saved[@]}")
	qemu_wait
}

# refused_before_mounting PATTERN WHAT: drive() of a boot that must stop at verify: wait for the
# console line matching PATTERN (WHAT names it when it never comes), then ask the rescue shell
# whether a squashfs is mounted or md7 exists (markers no-squashfs-mounted and no-md7).
refused_before_mounting() {
	if ! wait_for "$1" "$TIMEOUT"; then
		problem "no $2 line"
		return
	fi
	sleep 3
	send 'grep -q squashfs /proc/mounts && echo LIVEROOT-TEST" FAIL" no-squashfs-mounted: squashfs mounted || echo LIVEROOT-TEST" ok" no-squashfs-mounted'
	send 'test -b /dev/md7 && echo LIVEROOT-TEST" FAIL" no-md7: md7 exists || echo LIVEROOT-TEST" ok" no-md7'
	wait_for 'LIVEROOT-TEST (ok|FAIL) no-md7' 30
	qemu_quit
	ENDED_BY_DRIVE=1
}

# not_booted: part of verify() for such a boot: the sample OS must not have come up.
not_booted() {
	grep -aq 'sample-os: up' "$RUNDIR/console.log" && problem "the sample OS booted anyway"
	return 0
}
