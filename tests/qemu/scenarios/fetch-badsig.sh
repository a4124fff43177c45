# live.fetch: bad signature on the server's manifest → the local image boots, with one line saying why.
DESC="live.fetch: bad signature on the server's manifest → local"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back ok badsig 'signature verification failed'
