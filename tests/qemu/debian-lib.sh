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
# Every release is one for Secure Boot too (SB_ARGS, its command line DEBIAN_SB_APPEND sealed in
# its liveroot.efi): a BIOS stick boots its files as any release's, and the same releases serve
# the Secure Boot scenarios (debian-sb-update) without a second build.
debian_release() {
	local name=$1 version=$2 tar key dir
	shift 2
	tar=$("$TOP/tests/debian/root.sh" "$name" 2>"$RUNDIR/root.log") || {
		problem "Debian root $name: $(tail -n 2 "$RUNDIR/root.log" | tr '\n' ' ')"
		return 1
	}
	debian_keys || { problem "cannot make the test key pair"; return 1; }
	debian_sb_key || return 1
	set -- "${SB_ARGS[@]}" APPEND="$DEBIAN_SB_APPEND" "$@"
	key=$( {
		echo "$tar $version $*"
		sha256sum "$BUILD/liveroot" "$BUILD/publisher/liveroot" "$DEBIAN_KEYS/pub" "$TOP"/mk/{release,mkinitramfs,sign,sb}.sh "$TOP"/dist/* /bin/busybox
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

# The command line sealed in the releases' signed images: the Secure Boot stick's (a flash made
# with SB_KEY from a release must give the same APPEND).
DEBIAN_SB_APPEND="ip=dhcp live.fetch=http://10.0.2.100/stable/ live.fetch.timeout=400"

# debian_sb_key: the Secure Boot test key (Debian's snakeoil db key, shipped with ovmf)
# decrypted once into $CACHE/sb/db.key (a fixed path: releases signed with it stay cached);
# sets SB_ARGS=(SB_KEY=... SB_CERT=...).
debian_sb_key() {
	local k=$CACHE/sb/db.key
	if [[ ! -s $k ]]; then
		mkdir -p "$CACHE/sb" && chmod 0700 "$CACHE/sb"
		openssl pkey -in "$SB_TEST_KEY" -passin pass:snakeoil -out "$k.tmp" 2>/dev/null && mv "$k.tmp" "$k" ||
			{ problem "cannot decrypt $SB_TEST_KEY"; return 1; }
	fi
	SB_ARGS=(SB_KEY="$k" SB_CERT="$SB_TEST_CERT")
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

# debian_nginx DIR: Debian's nginx (the package unpacked once into $CACHE/nginx: no service, no
# port 80) serving DIR on 127.0.0.1, and the guest's way to it as http://10.0.2.100/ (slirp,
# restrict=on, one socat per connection): sets NET_ARGS; its access log is $RUNDIR/access.log.
debian_nginx() {
	local srv=$1 bin=$CACHE/nginx/usr/sbin/nginx port
	if [[ ! -x $bin ]]; then
		local t
		t=$(mktemp -d) && chmod 0777 "$t"
		apt-cache show nginx >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1
		(cd "$t" && apt-get download -q nginx >/dev/null 2>&1) && dpkg-deb -x "$t"/nginx_*.deb "$CACHE/nginx" ||
			{ rm -rf "$t"; problem "cannot fetch Debian's nginx package"; return 1; }
		rm -rf "$t"
	fi
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$RUNDIR/nginx"
	cat >"$RUNDIR/nginx/nginx.conf" <<C
daemon off;
user root;
worker_processes 1;
pid $RUNDIR/nginx/pid;
error_log $RUNDIR/nginx/error.log;
events { worker_connections 64; }
http {
	access_log $RUNDIR/access.log;
	client_body_temp_path $RUNDIR/nginx/body;
	proxy_temp_path $RUNDIR/nginx/proxy;
	fastcgi_temp_path $RUNDIR/nginx/fastcgi;
	uwsgi_temp_path $RUNDIR/nginx/uwsgi;
	scgi_temp_path $RUNDIR/nginx/scgi;
	server { listen 127.0.0.1:$port; root $srv; }
}
C
	"$bin" -c "$RUNDIR/nginx/nginx.conf" -p "$RUNDIR/nginx" &
	NGINX_PID=$!
	local n=40
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		problem "nginx did not start: $(tail -n 2 "$RUNDIR/nginx/error.log" 2>/dev/null | tr '\n' ' ')"
		return 1
	fi
	NET_ARGS=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:$port"
		-device virtio-net-pci,netdev=n0)
}
debian_nginx_stop() { [[ -n ${NGINX_PID:-} ]] && kill "$NGINX_PID" 2>/dev/null; return 0; }

# debian_login [SECONDS]: wait for the automatic root login on the serial console.
debian_login() {
	wait_for 'debian-live login: root \(automatic login\)|^root@debian-live' "${1:-600}" && sleep 3
}

# debian_next_boot [QEMU-EXTRA...]: end the running guest, keep its console as console.N.log,
# and power on again from $FLASH through the firmware with these extra QEMU arguments.
debian_next_boot() {
	qemu_quit
	qemu_wait
	local n=1
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	rm -f "$RUNDIR/sh_n"
	: >"$RUNDIR/console.log"
	QEMU_EXTRA=("$@")
	qemu_start "$RUNDIR" "" "$FLASH" "" "$TIMEOUT"
}

# blocks_changed A B: how many 4 KiB blocks of two images differ (the bytes a step wrote).
blocks_changed() {
	python3 - "$1" "$2" <<'P'
import sys
n = 0
with open(sys.argv[1], 'rb') as a, open(sys.argv[2], 'rb') as b:
    while True:
        x, y = a.read(1 << 22), b.read(1 << 22)
        if not x and not y:
            break
        for i in range(0, max(len(x), len(y)), 4096):
            if x[i:i + 4096] != y[i:i + 4096]:
                n += 1
print(n)
P
}

# debian_bad_release VERSION: release 1 re-made as VERSION with an initramfs the kernel cannot
# unpack (what a broken kernel package does to a box: its kernel never reaches /init), signed
# with make sign; sets RELEASE. Release 1 must have been made (debian_release v1 1 ...) first.
debian_bad_release() {
	local version=$1 good=$RELEASE dir
	dir=$CACHE/releases/bad-v$version-$(basename "$good")-$(sha256sum <"$TOP/tests/qemu/debian-lib.sh" | cut -c1-8)
	RELEASE=$dir
	[[ -s $dir/SHA256SUMS.minisig ]] && return 0
	rm -rf "$CACHE/releases/bad-v$version-"*
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	cp "$good"/squashfs.img "$good"/vmlinuz "$dir.tmp/"
	# Its own image bytes (4 KiB after the squashfs, which the kernel ignores): a release is
	# known by its image's digest, and syncflash writes nothing for an image the flash holds.
	head -c 4096 /dev/zero | tr '\0' '3' >>"$dir.tmp/squashfs.img"
	"$BUILD/publisher/liveroot" imgcheck --verity-format "$dir.tmp/squashfs.img" >/dev/null ||
		{ problem "imgcheck --verity-format of the bad release failed"; return 1; }
	head -c 65536 /dev/zero | tr '\0' 'x' >"$dir.tmp/initrd.img"
	make -s -C "$TOP" sign DIR="$dir.tmp" KEY="$DEBIAN_KEYS/sec" VERSION="$version" >"$RUNDIR/sign.log" 2>&1 ||
		{ problem "make sign of the bad release: $(tail -n 2 "$RUNDIR/sign.log" | tr '\n' ' ')"; return 1; }
	mv "$dir.tmp" "$dir"
}
