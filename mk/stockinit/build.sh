#!/usr/bin/env bash
# mk/stockinit/build.sh OUT — the stock-tools initramfs (benchmark baseline, plumbing check):
# mk/stockinit/skel/init + busybox + util-linux losetup + dmsetup + mdadm (with their shared
# libraries) + the same modules as the liveroot initramfs. No liveroot inside.
set -euo pipefail
out=${1:?usage: mk/stockinit/build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$here/../bundle.sh" "$tools" losetup dmsetup mdadm
SKEL=$here/skel LIVEROOT= EXTRA=$tools${EXTRA:+:$EXTRA} "$here/../mkinitramfs.sh" "$out"
