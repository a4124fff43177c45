# The dm-log-writes replay tool (tests/qemu/logreplay.py) on logs written by its test in the
# kernel's documented format: parser, replay to each FLUSH/FUA/MARK point, refusals of malformed
# logs. No QEMU: the parser is proven apart from the guest that records real logs
# (syncflash-flushpoints).
DESC="logreplay.py: synthetic dm-log-writes logs parsed, replayed to every flush point"
HOST_ONLY=1
verify() {
	local out
	out=$(python3 "$TOP/tests/qemu/test_logreplay.py" 2>&1) || problem "python3 tests/qemu/test_logreplay.py: $(tail -n 15 <<<"$out" | tr '\n' ' ')"
	grep -qE '^Ran [1-9][0-9]* tests' <<<"$out" || problem "no tests ran: $out"
	echo "    $(grep -E '^Ran ' <<<"$out")"
}
