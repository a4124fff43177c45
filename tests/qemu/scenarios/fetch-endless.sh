# live.fetch: the server refuses HEAD and sends an endless body without Content-Length. imgfetch
# caps it (room on the RAM tmpfs, MemAvailable) or runs out of live.fetch.timeout; either way the
# local image boots and nothing of the download stays in /run/live/ram.
DESC="live.fetch: endless body without length → capped, local boot, RAM clean"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back endless new '(goes past the cap of|timed out)'
prepare() {
	fetch_server endless new
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=40 liveroot.stamps"
}
eval "fb_verify() $(declare -f verify | tail -n +2)"
verify() {
	fb_verify
	# The whole /init, network phase included, within live.fetch.timeout (+ 15 s for the rest).
	local t0 t1
	t0=$(grep -aoE 'liveroot-stamp init-start [0-9.]+' "$RUNDIR/console.log" | awk '{ print int($3) }')
	t1=$(grep -aoE 'liveroot-stamp init-exec [0-9.]+' "$RUNDIR/console.log" | awk '{ print int($3) }')
	[[ -n $t0 && -n $t1 ]] && ((t1 - t0 <= 55)) || problem "/init took $((${t1:-999} - ${t0:-0})) s (live.fetch.timeout=40)"
}
