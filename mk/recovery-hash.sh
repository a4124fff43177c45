# mk/recovery-hash.sh — sourced by mk/mkinitramfs.sh, mk/mkflash.sh and mk/release.sh: the
# recovery password's hash (Secure Boot's shell, docs/trust.md "Recovery"), checked before
# anything is built.
#
# recovery_hash_check LIVEROOT: RECOVERY_HASH (a `$6$...` line, as `openssl passwd -6` prints)
# or RECOVERY_HASH_FILE (a file holding one) becomes RECOVERY_HASH, exported, with
# RECOVERY_HASH_FILE unset; checked by `LIVEROOT liveinit recovery --check` (the parser the
# boot uses). Returns 1 with the reason in RECOVERY_ERR (`RECOVERY_HASH: reason`).
recovery_hash_check() {
	local lr=$1 err
	RECOVERY_ERR=
	if [[ -n ${RECOVERY_HASH_FILE:-} ]]; then
		if [[ -n ${RECOVERY_HASH:-} ]]; then
			RECOVERY_ERR="RECOVERY_HASH_FILE=$RECOVERY_HASH_FILE: give RECOVERY_HASH or RECOVERY_HASH_FILE, not both"
			return 1
		fi
		if [[ ! -r $RECOVERY_HASH_FILE ]]; then
			RECOVERY_ERR="RECOVERY_HASH_FILE=$RECOVERY_HASH_FILE: cannot read"
			return 1
		fi
		RECOVERY_HASH=$(head -c 4096 "$RECOVERY_HASH_FILE")
	fi
	unset RECOVERY_HASH_FILE
	[[ -n ${RECOVERY_HASH:-} ]] || return 0
	if [[ $RECOVERY_HASH == *$'\n'* ]]; then
		RECOVERY_ERR="RECOVERY_HASH: must be one line"
		return 1
	fi
	if ! err=$("$lr" liveinit recovery --check --hash-file /dev/stdin <<<"$RECOVERY_HASH" 2>&1); then
		err=${err#liveinit: recovery: }
		RECOVERY_ERR="RECOVERY_HASH: ${err#/dev/stdin: }"
		return 1
	fi
	export RECOVERY_HASH
}
