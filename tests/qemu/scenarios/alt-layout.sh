# Older/custom layout: rd.live.dir and rd.live.squashimg name the image, and the squashfs holds
# LiveOS/ext3fs.img (ext3) instead of LiveOS/rootfs.img.
DESC="rd.live.dir=$ALT_DIR rd.live.squashimg=$ALT_SQUASHIMG, inner ext3fs.img"
MEDIUM=$ALT_IMG
APPEND="root=live:LABEL=$ALT_LABEL rd.live.image rd.live.dir=$ALT_DIR rd.live.squashimg=$ALT_SQUASHIMG"
EXPECT="root-md7 md7-member-live-rw"
guest() { echo check_live_root; }
