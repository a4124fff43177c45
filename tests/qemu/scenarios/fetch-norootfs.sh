# live.fetch: a correctly signed newer image (v2) that has no LiveOS/rootfs.img inside: it is torn
# down and removed, and the verified local image boots (one bad release must not stop a fleet).
DESC="live.fetch: signed fetched image without a rootfs → torn down, local boot"
. "$TOP/tests/qemu/fetch-lib.sh"
fetch_falls_back ok norootfs 'loop-rootfs: .*LiveOS/rootfs.img: not in'
EXPECT="$EXPECT one-squashfs"
eval "fb_guest() $(declare -f guest | tail -n +2)"
guest() {
	fb_guest
	echo "check one-squashfs test \"\$(grep -c ' squashfs ' /proc/mounts)\" = 1"
}
