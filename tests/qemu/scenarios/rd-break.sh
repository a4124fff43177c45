# rd.break: a shell before switch_root with the root already mounted at /sysroot; leaving the
# shell continues the boot into the live system.
DESC="rd.break → shell with /sysroot mounted, exit continues the boot"
APPEND="$APPEND rd.break"
EXPECT="sysroot-mounted root-md7"
guest() {
	echo check_live_root
}
drive() {
	if ! wait_for 'rd.break: the root is mounted at /sysroot' "$TIMEOUT"; then
		problem "no rd.break shell"
		return
	fi
	sleep 2
	# Quoted so the echo of the typed line does not itself look like a marker.
	send 'grep -q " /sysroot " /proc/mounts && echo LIVEROOT-TEST" ok" sysroot-mounted'
	wait_for 'LIVEROOT-TEST ok sysroot-mounted' 30 || return
	send 'exit'
	# Past the shell before handing back, or the runner takes the shell for a failed boot.
	wait_for 'sample-os: up' 60 || problem "the boot did not continue after the shell"
}
verify() {
	grep -aq 'sample-os: up' "$RUNDIR/console.log" || problem "the boot did not continue after the shell"
}
