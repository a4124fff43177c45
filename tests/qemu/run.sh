#!/usr/bin/env bash
# tests/qemu/run.sh [--stock] [SCENARIO...] — boot the sample image in QEMU (TCG) per scenario.
#
# Scenarios are tests/qemu/scenarios/NAME.sh, run in name order (or those named; an argument
# with a / is a scenario file's path), each in its own subshell. A scenario file sets variables
# and defines functions (all optional):
#   DESC="one line"              shown in the result line
#   MEDIUM=live-flash.img        image under build/ copied as the flash disk ("" = none)
#   APPEND="root=live:..."       kernel command line (console options are added)
#   TIMEOUT=180                  seconds for the whole boot
#   EXPECT="name ..."            guest markers that must say `LIVEROOT-TEST ok NAME`
#                                (`done` is implied when guest() exists)
#   TOOLS="dmsetup mdadm"        host programs bundled onto the TESTS disk (test image only)
#   TESTS_FILES=(file ...)       extra files put next to test.sh on the TESTS disk
#   FLASH_UNCHANGED=1            the flash copy's sha256 must be the same after the boot
#   HOST_ONLY=1                  no QEMU: only verify() runs
#   FIRMWARE=bios|uefi           boot the flash through SeaBIOS/OVMF and its own boot loader
#                                instead of -kernel (APPEND unused); FLASH_BUS=virtio|usb|ide
#                                attaches it (see lib.sh; flash-lib.sh builds a `make flash` image)
#   guest()    prints the guest script (sourced after lib.sh, i.e. guest-lib.sh)
#   skip()     prints a reason when the scenario cannot run here (counted as skipped)
#   prepare()  host side, after $FLASH (the copy) is made, before the boot
#   drive()    host side, while QEMU runs: wait_for, send, monitor, qemu_quit (see lib.sh)
#   verify()   host side, after QEMU ended; report with `problem "why"`
# Default checks: no timeout (unless drive() stopped QEMU), no kernel panic, no FAIL marker,
# every EXPECT marker present, flash unchanged.
# With no SCENARIO, every one but the long ones (LONG below; QEMU_ALL=1 runs them too).
# --stock (or STOCK=1): boot the stock-tools initramfs instead (plumbing check; dmsetup on the
# TESTS disk stands in for dmsnap). Last line: `N passed, N failed[, N skipped]`.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
STOCK=${STOCK:-}
[[ ${1:-} == --stock ]] && { STOCK=1; shift; }
. "$TOP/tests/qemu/lib.sh"
LOGDIR=$BUILD/qemu-logs
mkdir -p "$LOGDIR"

if [[ -n $STOCK ]]; then
	INITRD=$BUILD/stock-initramfs.cpio.gz
	targets=(kernel image stock-initramfs)
else
	targets=(kernel image initramfs)
fi
if ! make -s -C "$TOP" "${targets[@]}"; then
	echo "qemu: building ${targets[*]} failed"
	echo "0 passed, 1 failed"
	exit 1
fi
. "$BUILD/live-images.env"

if (($#)); then
	files=()
	for n in "$@"; do
		# A path runs a scenario kept elsewhere (the benchmarks in tests/qemu/bench/).
		if [[ $n == */* ]]; then files+=("$(cd "$(dirname "$n")" && pwd)/$(basename "$n")"); else files+=("$TOP/tests/qemu/scenarios/${n%.sh}.sh"); fi
	done
else
	# The longest scenarios run in `make test-all` (QEMU_ALL=1), not in `make test`, which must
	# stay under 45 minutes on a 2-core machine; named here, and said at the start of a run.
	# debian-update is debian-sb-update's story under SeaBIOS: make test runs the Secure Boot one.
	LONG="syncflash-powercut debian-kexec debian-badkernel-uefi debian-release-reproducible debian-install debian-update debian-sb-install"
	files=()
	for f in "$TOP"/tests/qemu/scenarios/*.sh; do
		n=$(basename "$f" .sh)
		if [[ ${QEMU_ALL:-} != 1 && " $LONG " == *" $n "* ]]; then
			echo "qemu: $n runs in make test-all (QEMU_ALL=1), not here"
			continue
		fi
		files+=("$f")
	done
fi

# run_one FILE: exit 0 pass, 1 fail, 77 skip.
run_one() {
	local file=$1 name
	name=$(basename "$file" .sh)
	DESC= MEDIUM=$LIVE_IMG APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image" TIMEOUT=180
	EXPECT= TOOLS= FLASH_UNCHANGED=1 HOST_ONLY= TESTS_FILES=() PROBLEMS=() QEMU_EXTRA=()
	ENDED_BY_DRIVE= BOOT_S=
	problem() { PROBLEMS+=("$*"); }
	skip() { :; }
	prepare() { :; }
	drive() { :; }
	verify() { :; }
	unset -f guest
	[[ -f $file ]] || { echo "FAIL $name: no such scenario"; return 1; }
	. "$file"
	[[ -n $STOCK ]] && TOOLS="$TOOLS dmsetup"

	local why
	why=$(skip)
	if [[ -n $why ]]; then
		echo "SKIP $name: $why"
		return 77
	fi
	local run t0
	run=$(mktemp -d /tmp/liveroot-qemu.XXXXXX)
	trap 'rm -rf "$run"' RETURN
	RUNDIR=$run
	: >"$run/console.log"
	t0=$(date +%s)
	if [[ -z $HOST_ONLY ]]; then
		FLASH=
		if [[ -n $MEDIUM ]]; then
			FLASH=$run/flash.img
			make_flash "$BUILD/$MEDIUM" "$FLASH"
			prepare
			FLASH_SHA=$(sha256sum <"$FLASH")
		else
			prepare
		fi
		local tests=
		if declare -F guest >/dev/null; then
			echo ". /run/tests/lib.sh" >"$run/test.sh"
			guest >>"$run/test.sh"
			echo "done_tests" >>"$run/test.sh"
			EXPECT="$EXPECT done"
			tests=$run/tests.img
			# shellcheck disable=SC2086
			if ! make_tests_disk "$tests" "$run/test.sh" $TOOLS; then
				echo "FAIL $name: cannot build the TESTS disk (bundling: $TOOLS)"
				return 1
			fi
		fi
		qemu_start "$run" "$APPEND" "$FLASH" "$tests" "$TIMEOUT"
		drive
		# Unless drive() ended it: note when the sample OS is up, and stop early when the boot
		# fell into a shell instead (the scenario would otherwise sit until its timeout).
		if qemu_running && [[ -z $ENDED_BY_DRIVE ]]; then
			if wait_for 'sample-os: up|built-in shell \(ash\)' "$TIMEOUT"; then
				if grep -aq 'sample-os: up' "$run/console.log"; then
					BOOT_S=$(($(date +%s) - t0))
				else
					sleep 2
					problem "the boot stopped in a shell before the sample OS came up"
					qemu_quit
					ENDED_BY_DRIVE=1
				fi
			fi
		fi
		qemu_wait
		[[ $QEMU_RC == 124 || $QEMU_RC == 137 ]] && [[ -z $ENDED_BY_DRIVE ]] &&
			problem "timed out after ${TIMEOUT}s"
		local log
		log=$(tr -d '\r' <"$run/console.log")
		grep -aq 'Kernel panic' <<<"$log" && problem "kernel panic"
		local fails
		fails=$(grep -aoE 'LIVEROOT-TEST FAIL .*' <<<"$log")
		[[ -n $fails ]] && problem "guest: $fails"
		local m
		for m in $EXPECT; do
			marker "$m" || problem "no 'LIVEROOT-TEST ok $m' on the console"
		done
		if [[ -n $FLASH && -n $FLASH_UNCHANGED && $(sha256sum <"$FLASH") != "$FLASH_SHA" ]]; then
			problem "the flash image was modified"
		fi
	fi
	verify
	local secs=$(($(date +%s) - t0)) extra=
	[[ -n $BOOT_S ]] && extra=", sample OS up after ${BOOT_S}s"
	if ((${#PROBLEMS[@]} == 0)); then
		echo "PASS $name (${secs}s$extra)${DESC:+ — $DESC}"
		[[ -n ${KEEP_LOGS:-} && -z $HOST_ONLY ]] && cp "$run/console.log" "$LOGDIR/$name.log"
		[[ -n ${KEEP_LOGS:-} ]] || rm -f "$LOGDIR/$name.log"
		return 0
	fi
	echo "FAIL $name (${secs}s)${DESC:+ — $DESC}"
	printf '    %s\n' "${PROBLEMS[@]}" | head -n 20
	if [[ -z $HOST_ONLY ]]; then
		cp "$run/console.log" "$LOGDIR/$name.log"
		echo "    --- last console lines ($LOGDIR/$name.log) ---"
		tr -d '\r' <"$run/console.log" | tail -n 25 | sed 's/^/    | /'
	fi
	return 1
}

pass=0 failed=0 skipped=0
for f in "${files[@]}"; do
	(run_one "$f")
	case $? in
	0) pass=$((pass + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done
summary="$pass passed, $failed failed"
((skipped)) && summary+=", $skipped skipped"
echo "$summary"
((failed == 0))
