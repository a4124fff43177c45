# live.fetch: older signed version (0 < 1) → the local image boots, with one line saying why.
DESC="live.fetch: older signed version (0 < 1) → local"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back ok old 'rollback refused'
