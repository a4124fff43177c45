#!/usr/bin/env bash
# mk/demo.sh [--interactive] — build everything and boot the sample live image in QEMU.
#
# Default (make demo): the guest shows its live root (md7 over the live-rw snapshot) through the
# test hook, then powers off; bounded by DEMO_TIMEOUT (300 s). --interactive (make run): a shell
# on the serial console, no timeout (leave it with `exit`, or Ctrl-A X).
# STOCK=1 boots the stock-tools initramfs instead of liveroot's.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/qemu/lib.sh"
interactive=
[[ ${1:-} == --interactive ]] && interactive=1

if [[ -n ${STOCK:-} ]]; then
	INITRD=$BUILD/stock-initramfs.cpio.gz
	make -s -C "$TOP" kernel image stock-initramfs
else
	make -s -C "$TOP" kernel image initramfs
fi
. "$BUILD/live-images.env"

run=$(mktemp -d /tmp/liveroot-demo.XXXXXX)
trap 'rm -rf "$run"' EXIT
# The demo never modifies build outputs: it boots a copy of the medium.
make_flash "$BUILD/$LIVE_IMG" "$run/flash.img"
append="root=live:LABEL=$LIVE_LABEL rd.live.image"

if [[ -n $interactive ]]; then
	qemu_args "$append" "$run/flash.img"
	echo "demo: booting; the sample OS gives a shell on this console (exit powers off, Ctrl-A X quits QEMU)"
	exec "$QEMU" "${QEMU_ARGS[@]}" -serial mon:stdio
fi

cat >"$run/demo.sh" <<'G'
. /run/tests/lib.sh
show() { echo; echo "demo\$ $*"; "$@" 2>&1; }
show cat /proc/mdstat
echo; echo "demo\$ mount | grep ' / '"; mount | grep ' / '
echo; echo "demo\$ md7's members and metadata"
ls -d /sys/block/md7/md/dev-*; cat /sys/block/md7/md/metadata_version
if command -v dmsnap >/dev/null; then
	show dmsnap status
	show mdmirror detail /dev/md7
else
	echo; echo "demo: no liveroot applets on the TESTS disk; snapshot status:"; snap_status
fi
echo; echo "demo\$ dd if=/dev/zero of=/root/demo bs=1M count=4 && sync"
dd if=/dev/zero of=/root/demo bs=1M count=4 2>&1 && sync
echo "demo: the write went to the RAM overlay: $(snap_status 2>&1)"
done_tests
G
[[ -n ${STOCK:-} ]] && tools=dmsetup || tools=
STOCK=${STOCK:-} make_tests_disk "$run/tests.img" "$run/demo.sh" $tools || { echo "demo: cannot build the TESTS disk" >&2; exit 1; }
qemu_start "$run" "$append" "$run/flash.img" "$run/tests.img" "${DEMO_TIMEOUT:-300}"
t0=$(date +%s)
tail -n +1 --pid="$QEMU_PID" -f "$run/console.log" | tr -d '\r'
qemu_wait
if marker done; then
	echo "demo: done in $(($(date +%s) - t0)) s"
else
	echo "demo: the guest did not finish (QEMU exit $QEMU_RC)" >&2
	exit 1
fi
