# liveroot — see README.md. `make demo` and `make test` do all set-up on a fresh Debian machine.
SHELL := /bin/bash
MUSL := x86_64-unknown-linux-musl
BUILD := build
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
KERNEL_MODULES ?=
# generic (Debian's linux-image-amd64, real hardware) or cloud (linux-image-cloud-amd64, VMs only).
KERNEL_FLAVOUR ?= generic
PUBKEY ?=
# The lowest signed image version the initramfs boots or fetches (version=N in the trusted comment).
MIN_VERSION ?= 0

# Debian packages the build, the tests and the benchmarks need.
APT_PKGS := busybox-static squashfs-tools e2fsprogs dosfstools mtools cpio minisign zsync \
	qemu-system-x86 socat mdadm dmsetup openssl util-linux coreutils curl python3 time \
	kmod mount fdisk util-linux-extra xorriso gcc libc6-dev cryptsetup-bin \
	syslinux syslinux-common systemd-boot-efi ovmf initramfs-tools strace \
	fakeroot zstd xz-utils sbsigntool faketime

.PHONY: all deps build test test-all unit qemu-test fuzz bench size kernel initramfs stock-initramfs image flash sign release demo run install deb clean
# Two builds of the one crate. $(BUILD)/liveroot, without the `publisher` feature, is the box's:
# what goes into the initramfs and runs on the boxes, within the size budget (mk/size.sh).
# $(PUBLISHER), with it, has every applet and the publisher's tools besides (`publish`,
# `imgcheck --verity-format`, `--make-index`): what image, flash, sign and release run on the
# publisher's machine. A directory of its own, so that it keeps the multicall name liveroot.
PUBLISHER := $(BUILD)/publisher/liveroot
all: $(BUILD)/liveroot $(PUBLISHER)

# Install what is missing (apt-get update first, as on a fresh machine), add the musl target.
deps: $(BUILD)/.deps
$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL) || \
		echo "deps: musl target unavailable; falling back to glibc +crt-static"
	@rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src || \
		echo "deps: rust-src unavailable; liveroot will link the prebuilt std (about 400 KiB bigger)"
	@touch $@

# Static and stripped: musl if the target is installed, else glibc with crt-static.
# Preferred: std rebuilt from rust-src for size, with panic=immediate-abort (a panic is a bare
# `ud2`: SIGILL, no message; applets never unwrap, so only a bug can get there) and no unwind
# tables (nothing unwinds). This drops std's panic, backtrace and symbolizer code: 784 -> 382 KiB.
# RUSTC_BOOTSTRAP=1 makes the stable toolchain accept these -Z/-C flags; only the std rebuild
# needs them, our code uses no unstable features and still builds on plain stable. Its own target
# dir, so the two builds do not invalidate each other. If rust-src is missing or that build fails
# (offline: it fetches std's crates once), fall back to the prebuilt std, as before.
# That build also links with the toolchain's own lld (rust-lld, through cc; no padding of the
# segments to pages as GNU ld's -z separate-code does: -8,424 bytes) and folds identical functions
# (--icf=all: -5,920 bytes; liveroot never compares function addresses).
# std's own optimize_for_size feature: its smaller sorts and integer formatting, the same results
# (-19,552 bytes).
# LLVM's machine outliner: instruction sequences repeated across functions become one function
# called from each place (it leaves alone any function that may use the red zone): -23,072 bytes.
# No effect measured on imgcheck's SHA-256 rate (the hashing loops are in sha2, at opt-level 3).
SIZE_LINK := "-Clink-self-contained=+linker", "-Clinker-flavor=gnu-lld-cc", "-Clink-arg=-Wl,--icf=all"
SIZE_STD := -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size --target-dir target/min \
	--config 'target.$(MUSL).rustflags=["-Zunstable-options", "-Cpanic=immediate-abort", "-Cforce-unwind-tables=no", $(SIZE_LINK), "-Cllvm-args=-enable-machine-outliner=always"]'
RUST_SRC = $(shell rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library/Cargo.lock

SOURCES := Cargo.toml core/Cargo.toml sys/Cargo.toml build.rs \
	$(wildcard src/*.rs applets/*.rs applets/*/*.rs core/src/*.rs core/src/*/*.rs sys/src/*.rs)

# $(call static,CARGO-FEATURE-ARGS,OUT): build the binary and copy it to OUT. Both builds share
# the target directories (the features differ in the top crate only: the second build links
# again, it does not rebuild std and the dependencies).
define static
	@mkdir -p $(dir $2)
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL); then \
		if [ -f "$(RUST_SRC)" ] && RUSTC_BOOTSTRAP=1 cargo build --release --locked --target $(MUSL) $(SIZE_STD) $1; then \
			cp target/min/$(MUSL)/release/liveroot $2; \
		else \
			echo "notice: no std rebuilt for size (rust-src missing or build failed); using the prebuilt std"; \
			cargo build --release --locked --target $(MUSL) $1 && cp target/$(MUSL)/release/liveroot $2; \
		fi; \
	else \
		RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target x86_64-unknown-linux-gnu $1 && \
		cp target/x86_64-unknown-linux-gnu/release/liveroot $2; \
	fi
	@ls -l $2 | awk '{print "built " $$NF ": " $$5 " bytes"}'
endef

$(BUILD)/liveroot: $(BUILD)/.deps $(SOURCES)
	$(call static,--no-default-features,$@)

# After the box's build (order only): under make -j the two cargo runs would share target/.
$(PUBLISHER): $(BUILD)/.deps $(SOURCES) | $(BUILD)/liveroot
	$(call static,--features publisher,$@)

build: $(BUILD)/liveroot $(PUBLISHER)

# cargo's unit and integration tests (root tests use real loop devices), then the QEMU scenarios.
test: $(BUILD)/liveroot $(PUBLISHER)
	cargo test --locked
	@$(MAKE) --no-print-directory qemu-test

# Coverage-guided fuzzing (mk/fuzz.sh): every fuzz target of liveroot-core (core/src/fuzz.rs)
# under libFuzzer for FUZZ_SECONDS each (FUZZ_TARGETS=a,b picks targets), on stable Rust. Crashes
# are saved under tests/fuzz/TARGET/ and fail the run. `make test` runs the same targets 1 s each
# through the in-tree mutation loop with a fixed seed, and replays tests/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' mk/fuzz.sh

qemu-test: $(BUILD)/liveroot $(PUBLISHER)
	@if [ -x tests/qemu/run.sh ]; then tests/qemu/run.sh; else echo "qemu: no scenarios yet"; fi

# Everything `make test` runs, and the long scenarios it leaves out (tests/qemu/run.sh LONG).
test-all: $(BUILD)/liveroot $(PUBLISHER)
	cargo test --locked
	@QEMU_ALL=1 $(MAKE) --no-print-directory qemu-test

size: $(BUILD)/liveroot $(PUBLISHER) initramfs
	@PUBLISHER='$(PUBLISHER)' mk/size.sh $(BUILD)/liveroot $(BUILD)/initramfs.cpio.gz

bench: $(BUILD)/liveroot $(PUBLISHER)
	@PUBLISHER='$(PUBLISHER)' mk/bench.sh $(BUILD)/liveroot

kernel: $(BUILD)/.deps
	@KERNEL_MODULES='$(KERNEL_MODULES)' KERNEL_FLAVOUR='$(KERNEL_FLAVOUR)' mk/kernel.sh $(BUILD)/kernel

# The recovery password's hash (docs/trust.md "Recovery"): RECOVERY_HASH='$6$...' (taken
# literally: override + $(value), so make expands no $ in it) or RECOVERY_HASH_FILE=file; for
# initramfs, flash, release.
RECOVERY_EXPORTS := initramfs flash release
$(RECOVERY_EXPORTS): override export RECOVERY_HASH := $(value RECOVERY_HASH)
$(RECOVERY_EXPORTS): override export RECOVERY_HASH_FILE := $(value RECOVERY_HASH_FILE)
initramfs: $(BUILD)/liveroot kernel
	@PUBKEY='$(PUBKEY)' MIN_VERSION='$(MIN_VERSION)' mk/mkinitramfs.sh $(BUILD)/initramfs.cpio.gz

# The same boot done with busybox + util-linux/dmsetup/mdadm: benchmark baseline, plumbing check.
stock-initramfs: kernel
	@mk/stockinit/build.sh $(BUILD)/stock-initramfs.cpio.gz

# The dm-verity sidecars beside each image are made by liveroot itself (the publisher's build).
image: $(BUILD)/.deps $(PUBLISHER)
	@PUBLISHER='$(PUBLISHER)' mk/mkimage.sh $(BUILD)

# A whole-disk image to dd onto a USB stick or a CF/SD card, booting under BIOS and UEFI (see
# README "From an image to a bootable stick" and mk/mkflash.sh). Without SQUASHFS=DIR: the sample
# image (make image). Passed through the environment, so APPEND may hold any characters.
FLASH ?= $(BUILD)/flash.img
flash: export SQUASHFS := $(SQUASHFS)
flash: export PUBKEY := $(PUBKEY)
flash: export LABEL := $(LABEL)
flash: export SIZE_MIB := $(SIZE_MIB)
flash: export APPEND := $(APPEND)
flash: export SETTINGS := $(SETTINGS)
flash: export MIN_VERSION := $(MIN_VERSION)
flash: export SB_KEY := $(SB_KEY)
flash: export SB_CERT := $(SB_CERT)
flash: export FLASH := $(FLASH)
# A release (make release) brings its own kernel: the project's is fetched only for the others.
flash: export PUBLISHER := $(PUBLISHER)
flash: $(BUILD)/liveroot $(PUBLISHER) $(if $(wildcard $(SQUASHFS)/vmlinuz),,kernel)
	@[ -n "$$SQUASHFS" ] || $(MAKE) --no-print-directory image
	@mk/mkflash.sh "$$FLASH"

# Sign a release directory (mk/sign.sh): DIR= KEY= VERSION= [NAME=] [ROLLOUT=] [EXPIRES=].
sign: $(PUBLISHER)
	@DIR='$(DIR)' KEY='$(KEY)' VERSION='$(VERSION)' NAME='$(NAME)' ROLLOUT='$(ROLLOUT)' EXPIRES='$(EXPIRES)' \
		INDEX='$(INDEX)' KEY_PASSWORD_FILE='$(KEY_PASSWORD_FILE)' PUBLISHER='$(PUBLISHER)' mk/sign.sh

# A signed release from a root filesystem, with the root's own kernel and an initramfs for it
# (mk/release.sh; README "Your root filesystem to a stick in three commands"):
# ROOTFS=DIR|FILE.tar[.gz|.xz|.zst] KEY= PUBKEY= VERSION= OUT= [PREVIOUS= KVER= MIN_VERSION=
# ROLLOUT= EXPIRES= ROOT_MIB= MARK_GOOD=systemd|rc KEY_PASSWORD_FILE= SB_KEY= SB_CERT= LABEL= APPEND=]
release: export ROOTFS := $(ROOTFS)
release: export KEY := $(KEY)
release: export PUBKEY := $(PUBKEY)
release: export VERSION := $(VERSION)
release: export OUT := $(OUT)
release: export PREVIOUS := $(PREVIOUS)
release: export KVER := $(KVER)
release: export MIN_VERSION := $(MIN_VERSION)
release: export ROLLOUT := $(ROLLOUT)
release: export EXPIRES := $(EXPIRES)
release: export ROOT_MIB := $(ROOT_MIB)
release: export MARK_GOOD := $(MARK_GOOD)
release: export KEY_PASSWORD_FILE := $(KEY_PASSWORD_FILE)
release: export SB_KEY := $(SB_KEY)
release: export SB_CERT := $(SB_CERT)
release: export LABEL := $(LABEL)
release: export APPEND := $(APPEND)
release: $(BUILD)/liveroot $(PUBLISHER)
	@LIVEROOT='$(BUILD)/liveroot' PUBLISHER='$(PUBLISHER)' mk/release.sh

demo: $(BUILD)/liveroot
	@mk/demo.sh

run: $(BUILD)/liveroot
	@mk/demo.sh --interactive

# The binary, its applet links (in PREFIX/lib/liveroot/bin: out of PATH, so that liveroot's
# losetup never shadows util-linux's), the publisher's build (PREFIX/lib/liveroot/publisher/) and
# tools (PREFIX/bin/liveroot-sign, -mkflash, -mkinitramfs, -kernel), the man pages and the docs;
# see mk/install.sh and README "Installing".
PREFIX ?= /usr/local
install: $(BUILD)/liveroot $(PUBLISHER)
	@DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' LIVEROOT='$(BUILD)/liveroot' PUBLISHER='$(PUBLISHER)' mk/install.sh

# A Debian package of the same, PREFIX=/usr: build/liveroot_VERSION_amd64.deb (mk/deb.sh).
deb: $(BUILD)/liveroot $(PUBLISHER)
	@LIVEROOT='$(BUILD)/liveroot' PUBLISHER='$(PUBLISHER)' OUT='$(BUILD)' mk/deb.sh

clean:
	rm -rf $(BUILD) target
