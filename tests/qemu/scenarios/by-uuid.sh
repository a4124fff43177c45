# The medium named by its filesystem UUID instead of its label.
DESC="root=live:UUID=..."
APPEND="root=live:UUID=$LIVE_UUID rd.live.image"
EXPECT="root-md7 md7-member-live-rw"
guest() { echo check_live_root; }
