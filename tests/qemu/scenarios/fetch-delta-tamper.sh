# live.fetch, delta: a block the server sends is not the one the signed index names → refused,
# nothing of it kept, the local v1 boots.
DESC="live.fetch: delta with a tampered block → refused → local"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back tamper delta 'does not match the signed index'
