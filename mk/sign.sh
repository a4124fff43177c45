#!/usr/bin/env bash
# mk/sign.sh — publish a release directory: SHA256SUMS over the image, its delta block index
# (NAME.zidx, made here with `liveroot imgcheck --make-index` unless INDEX=0) and its dm-verity
# sidecars and a release's vmlinuz and initrd.img (and liveroot.efi) when present, signed with minisign; the trusted comment carries the fleet words
# imgfetch reads.
#   DIR=dir KEY=release.key VERSION=N [NAME=squashfs.img] [ROLLOUT=PCT|START+DURATION]
#   [EXPIRES=UNIXTIME|+SECONDS] [INDEX=0] [KEY_PASSWORD_FILE=file]
#   [PUBLISHER=build/publisher/liveroot] mk/sign.sh
#   (`make sign ...` runs it; PUBLISHER is liveroot built with the publisher's tools, which write
#   the trusted comment and the index)
# ROLLOUT=25 lets a quarter of the boxes take version N; re-sign with ROLLOUT=100 (or without
# ROLLOUT) to open it to all, ROLLOUT=0 to stop it. START+DURATION opens linearly in unix time.
# EXPIRES=+604800 makes the manifest refused a week from now (a box then sees a replay of it as
# stale): re-sign before that. Upload the image and sidecars first, SHA256SUMS.minisig and
# SHA256SUMS last.
set -euo pipefail
die() { echo "sign: $*" >&2; exit 1; }
: "${DIR:?DIR=release directory}" "${KEY:?KEY=minisign secret key}" "${VERSION:?VERSION=N}"
NAME=${NAME:-squashfs.img}
[[ $VERSION =~ ^[0-9]+$ ]] || die "VERSION=$VERSION: not a number"
[[ -f $DIR/$NAME ]] || die "$DIR/$NAME: no such file"
publisher=${PUBLISHER:-build/publisher/liveroot}
# An encrypted key's password: the first line of KEY_PASSWORD_FILE, on minisign's stdin.
pw=${KEY_PASSWORD_FILE:-/dev/null}
[[ -r $pw ]] || die "$pw: cannot read (KEY_PASSWORD_FILE)"
# The trusted comment as the boxes read it (src/rollout.rs): the binary writes and checks it.
tc=$("$publisher" publish comment --version "$VERSION" ${ROLLOUT:+--rollout "$ROLLOUT"} ${EXPIRES:+--expires "$EXPIRES"} 2>&1) ||
	die "${tc#publish: }"
files=("$NAME")
# The index is made from this very image each time (a stale one would fail every delta); with
# INDEX=0 none is listed and boxes download in full.
if [[ ${INDEX:-1} != 0 ]]; then
	"$publisher" imgcheck --make-index "$DIR/$NAME" || die "$DIR/$NAME: no block index made"
	files+=("$NAME.zidx")
fi
for s in .verity .roothash; do [[ -f $DIR/$NAME$s ]] && files+=("$NAME$s"); done
# A release's own kernel and initramfs (make release) are members too: signed with the image;
# with them, its signed unified image for Secure Boot (make release SB_KEY=).
for f in vmlinuz initrd.img; do [[ -f $DIR/$f ]] && files+=("$f"); done
[[ -f $DIR/vmlinuz && -f $DIR/initrd.img && -f $DIR/liveroot.efi ]] && files+=(liveroot.efi)
(cd "$DIR" && sha256sum "${files[@]}" >SHA256SUMS && rm -f SHA256SUMS.minisig &&
	minisign -S -s "$KEY" -m SHA256SUMS -t "$tc" <"$pw" >/dev/null) || die "signing $DIR/SHA256SUMS failed"
echo "sign: $DIR/SHA256SUMS signed: $tc"
