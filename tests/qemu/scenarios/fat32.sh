# The medium is FAT32 (what many users put on a USB stick).
DESC="FAT32 medium, label LIVE"
MEDIUM=$FAT_IMG
EXPECT="root-md7 md7-member-live-rw"
guest() { echo check_live_root; }
