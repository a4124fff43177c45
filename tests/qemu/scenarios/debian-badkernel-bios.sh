# A release whose kernel never reaches /init falls back by itself: SeaBIOS (syslinux). See
# tests/qemu/debian-badkernel.inc.
FIRMWARE=bios
FLASH_BUS=virtio
DESC="Debian: a release whose kernel panics before /init falls back to the previous one (SeaBIOS)"
. "$TOP/tests/qemu/debian-badkernel.inc"
