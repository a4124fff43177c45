# mk/sb.sh — Secure Boot signing for mk/release.sh and mk/mkflash.sh (sourced; the caller
# defines die, and sets epoch and tmp).
#
#   sb_check KEY CERT      both or neither; readable, unencrypted (sbsign would prompt for a
#                          password), a PEM key and a PEM certificate of one pair. Dies otherwise.
#   sb_sign IN OUT         OUT = IN signed with the pair, at the pinned time (same inputs, same
#                          bytes)
#   sb_resign FILE         FILE's own signatures removed (a distribution's kernel comes signed by
#                          its vendor: the kernel's kexec check and the firmware read one
#                          signature only), then signed with the pair
#   sb_osrel ROOT OUT      the .osrel of a unified image: ROOT's os-release (a regular file inside
#                          ROOT), or liveroot's
sb_efistub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub

sb_check() {
	local key=$1 cert=$2 keypub certpub t
	[[ -n $key || -z $cert ]] || die "SB_CERT=$cert: SB_KEY missing (give both or neither)"
	[[ -z $key || -n $cert ]] || die "SB_KEY=$key: SB_CERT missing (give both or neither)"
	[[ -n $key ]] || return 0
	[[ -r $sb_efistub ]] || die "$sb_efistub: missing (make deps installs systemd-boot-efi)"
	for t in sbsign sbattach faketime openssl; do
		command -v $t >/dev/null || die "$t: missing (make deps installs sbsigntool, faketime, openssl)"
	done
	[[ -r $key ]] || die "$key: cannot read (SB_KEY)"
	[[ -r $cert ]] || die "$cert: cannot read (SB_CERT)"
	grep -q ENCRYPTED "$key" && die "$key: encrypted (SB_KEY must be an unencrypted PEM key: openssl pkey -in KEY -out PLAIN)"
	keypub=$(openssl pkey -in "$key" -passin pass: -pubout 2>/dev/null) ||
		die "$key: not a PEM private key (SB_KEY)"
	certpub=$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null) ||
		die "$cert: not a PEM certificate (SB_CERT)"
	[[ $keypub == "$certpub" ]] || die "$key: not the key of $cert (SB_KEY and SB_CERT must be one pair)"
}

# The signing time pinned (frozen, not ticking) so that the same inputs sign to the same bytes.
sb_sign() {
	TZ=UTC faketime "$(TZ=UTC date -d "@$epoch" '+%Y-%m-%d %H:%M:%S')" \
		sbsign --key "$sb_key" --cert "$sb_cert" --output "$2" "$1" >"$tmp/sbsign.log" 2>&1 ||
		die "$1: sbsign failed: $(tail -n 1 "$tmp/sbsign.log")"
}

sb_resign() {
	local f=$1 n=0
	while sbverify --list "$f" 2>/dev/null | grep -q '^signature [0-9]'; do
		((n++ < 8)) || die "$f: cannot remove its signatures"
		sbattach --remove "$f" >/dev/null 2>&1 || die "$f: sbattach --remove failed"
	done
	sb_sign "$f" "$f.signed"
	mv -f "$f.signed" "$f"
}

sb_osrel() {
	local root=$1 out=$2 r
	for r in "$root/etc/os-release" "$root/usr/lib/os-release"; do
		r=$(realpath -e "$r" 2>/dev/null) || continue
		[[ $r == "$(realpath -e "$root")"/* && -f $r ]] || continue
		head -c 4096 "$r" >"$out"
		return 0
	done
	printf 'NAME=liveroot\nID=liveroot\nPRETTY_NAME="liveroot"\n' >"$out"
}
