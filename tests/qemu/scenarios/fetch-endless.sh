# live.fetch: the server refuses HEAD and sends an endless body without Content-Length. imgfetch
# caps it (room on the RAM tmpfs, MemAvailable) or runs out of live.fetch.timeout; either way the
# local image boots and nothing of the download stays in /run/live/ram.
DESC="live.fetch: endless body without length → capped, local boot, RAM clean"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back endless new '(goes past the cap of|timed out)'
prepare() {
	fetch_server endless new
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=40"
}
