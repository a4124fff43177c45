# Host helpers for the scenarios on a real Debian root (tests/qemu/scenarios/debian-*.sh): the
# root (tests/debian/root.sh), releases made from it with `make release`, and the serial-console
# session a person would type into. Roots and releases are cached under $LIVEROOT_CACHE
# (default /var/cache/liveroot): built once per machine and input, shared between scenarios.
CACHE=${LIVEROOT_CACHE:-/var/cache/liveroot}
DEBIAN_KEYS=$CACHE/keys

# debian_keys: the test release key pair, made once ($DEBIAN_KEYS/{sec,pub}).
debian_keys() {
	[[ -s $DEBIAN_KEYS/sec && -s $DEBIAN_KEYS/pub ]] && return 0
	mkdir -p "$DEBIAN_KEYS" && minisign -G -W -f -p "$DEBIAN_KEYS/pub" -s "$DEBIAN_KEYS/sec" >/dev/null
}

# debian_release ROOTNAME VERSION [MAKE-ARGS...]: `make release` of that root (v1, v2) at VERSION,
# cached by everything it is made of; sets RELEASE to its directory. problem() on failure.
debian_release() {
	local name=$1 version=$2 tar key dir
	shift 2
	tar=$("$TOP/tests/debian/root.sh" "$name" 2>"$RUNDIR/root.log") || {
		problem "Debian root $name: $(tail -n 2 "$RUNDIR/root.log" | tr '\n' ' ')"
		return 1
	}
	debian_keys || { problem "cannot make the test key pair"; return 1; }
	key=$( {
		echo "$tar $version $*"
		sha256sum "$BUILD/liveroot" "$DEBIAN_KEYS/pub" "$TOP"/mk/{release,mkinitramfs,sign}.sh "$TOP"/dist/* /bin/busybox
		(cd "$TOP/initramfs-skel" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16)
	dir=$CACHE/releases/$name-v$version-$key
	RELEASE=$dir
	[[ -s $dir/SHA256SUMS.minisig ]] && return 0
	mkdir -p "$CACHE/releases"
	# One release per root and version: the older inputs' go.
	rm -rf "$CACHE/releases/$name-v$version-"*
	make -s -C "$TOP" release ROOTFS="$tar" KEY="$DEBIAN_KEYS/sec" PUBKEY="$DEBIAN_KEYS/pub" \
		VERSION="$version" OUT="$dir" "$@" >"$RUNDIR/release.log" 2>&1 && return 0
	problem "make release $name: $(tail -n 3 "$RUNDIR/release.log" | tr '\n' ' ')"
	return 1
}

# debian_flash RELEASE OUT [MAKE-ARGS...]: make flash of a release into OUT.
debian_flash() {
	local rel=$1 out=$2
	shift 2
	make -s -C "$TOP" flash SQUASHFS="$rel" FLASH="$out" "$@" >"$RUNDIR/make-flash.log" 2>&1 && return 0
	problem "make flash: $(tail -n 3 "$RUNDIR/make-flash.log" | tr '\n' ' ')"
	return 1
}

# sh_run CMD [SECONDS]: type CMD on the logged-in serial console; its output, framed by markers
# the command itself prints (so that the echo of the typed line never matches), goes to stdout.
sh_run() {
	local cmd=$1 tmo=${2:-60} n tag
	n=$(($(cat "$RUNDIR/sh_n" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$RUNDIR/sh_n"
	tag=LRQ${n}X
	send "echo ${tag}B\$((1+1)); { $cmd; } 2>&1; echo ${tag}E\$((1+1))"
	wait_for "${tag}E2\$" "$tmo" || { echo "(no answer within ${tmo}s)"; return 1; }
	# Without the shell's escape sequences (bracketed paste) around the lines.
	tr -d '\r' <"$RUNDIR/console.log" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' |
		awk -v b="${tag}B2" -v e="${tag}E2" '$0 ~ (e "$") { on = 0 } on { print } $0 ~ (b "$") { on = 1 }'
}
