# dmsnap/mdmirror against dmsetup/mdadm in the live system (the tools ride on the TESTS disk:
# test image only). Runs tests/qemu/dmsnap-check.sh and tests/qemu/mdmirror-check.sh; each is
# sourced by the guest after lib.sh and reports with ok/fail itself; a nonzero exit also fails.
DESC="dmsetup/mdadm parity checks"
TOOLS="dmsetup mdadm losetup"
checks=()
for c in dmsnap-check.sh mdmirror-check.sh; do
	[[ -f $TOP/tests/qemu/$c ]] && checks+=("$TOP/tests/qemu/$c")
done
TESTS_FILES=("${checks[@]}")
EXPECT="root-md7"
for c in "${checks[@]}"; do EXPECT="$EXPECT $(basename "$c" .sh)"; done
skip() { ((${#checks[@]})) || echo "no tests/qemu/dmsnap-check.sh or mdmirror-check.sh yet"; }
guest() {
	echo check_live_root
	for c in "${checks[@]}"; do
		c=$(basename "$c")
		printf 'if (. "$T/%s"); then ok %s; else fail %s "exit $?"; fi\n' "$c" "${c%.sh}" "${c%.sh}"
	done
}
