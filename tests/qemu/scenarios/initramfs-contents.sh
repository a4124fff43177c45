# What mk/mkinitramfs.sh put into build/initramfs.cpio.gz: /init, liveroot and its links (never
# shadowed by a busybox link of the same name), busybox, the boot's modules with a modules.dep.
# The liveroot is the box's build, without the publisher's tools.
DESC="initramfs holds /init, liveroot + links, busybox, the modules"
HOST_ONLY=1
skip() { [[ -n $STOCK ]] && echo "checks the liveroot initramfs"; }
verify() {
	local d=$RUNDIR/x kver
	mkdir -p "$d"
	(cd "$d" && gzip -dc "$INITRD" | cpio -id --quiet 2>/dev/null) || { problem "cannot unpack $INITRD"; return; }
	kver=$(cat "$BUILD/kernel/kver")
	[[ -x $d/init ]] || problem "no executable /init"
	[[ -x $d/bin/liveroot && -x $d/bin/busybox ]] || problem "no /bin/liveroot or /bin/busybox"
	cmp -s "$d/bin/liveroot" "$BUILD/liveroot" || problem "/bin/liveroot is not build/liveroot"
	[[ -e $d/bin/publish || -L $d/bin/publish ]] && problem "/bin/publish: the publisher's tools are in the initramfs"
	local a p
	for a in $("$BUILD/liveroot" --list); do
		[[ $(readlink "$d/bin/$a") == liveroot ]] || problem "/bin/$a is not a link to liveroot"
		for p in sbin usr/bin usr/sbin; do
			[[ $(readlink "$d/$p/$a" 2>/dev/null) == *busybox ]] && problem "/$p/$a is busybox's, shadowing liveroot's"
		done
	done
	[[ -e $d/bin/sh ]] || problem "no /bin/sh"
	local m
	for m in virtio_pci virtio_blk loop squashfs dm_snapshot dm_verity reed_solomon dm_mod dm_bufio raid1 md_mod vfat fat \
		nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 isofs efivarfs; do
		grep -qE "(^|/)${m//_/[-_]}\.ko(\.[a-z]+)?:" "$d/lib/modules/$kver/modules.dep" ||
			problem "module $m missing from modules.dep"
	done
	# The hardware's drivers are found through it (liveinit coldplug).
	grep -qE '^alias pci:v00001AF4d\*sv\*sd\*bc\*sc\*i\* virtio_pci$' "$d/lib/modules/$kver/modules.alias" ||
		problem "no modules.alias with virtio_pci's alias"
	return 0
}
