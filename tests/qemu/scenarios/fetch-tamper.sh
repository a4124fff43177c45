# live.fetch: tampered image → checksum mismatch → the local image boots, with one line saying why.
DESC="live.fetch: tampered image → checksum mismatch → local"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back tamper new 'checksum mismatch'
