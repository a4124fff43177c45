#!/usr/bin/env bash
# mk/bundle.sh [--wrap] DEST PROG... — copy host programs with their shared libraries into a tree.
#
# Each PROG goes to DEST/usr/sbin/NAME, each library (ldd) to its own path under DEST, so the
# tree can be laid over an initramfs (EXTRA=DEST). With --wrap, DEST/bin/NAME is also a sh
# wrapper that starts the program through the bundled loader, for systems that have no /lib
# (the busybox sample OS running tools from the TESTS disk). Test images only.
set -euo pipefail
wrap=
[[ ${1:-} == --wrap ]] && { wrap=1; shift; }
dest=${1:?usage: mk/bundle.sh [--wrap] DEST PROG...}
shift
mkdir -p "$dest/usr/sbin"
for prog in "$@"; do
	path=$(command -v "$prog") || { echo "bundle: $prog: not found" >&2; exit 1; }
	name=${path##*/}
	cp -L "$path" "$dest/usr/sbin/$name"
	ldd "$path" | awk '/=>/ && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
		mkdir -p "$dest$(dirname "$lib")"
		cp -L "$lib" "$dest$lib"
	done
	if [[ -n $wrap ]]; then
		mkdir -p "$dest/bin"
		loader=$(ldd "$path" | awk '$1 ~ /^\/.*ld-linux/ { print $1 }')
		libdirs=$(cd "$dest" && find . -name '*.so*' -printf '%h\n' | sort -u | sed 's|^\.||' | paste -sd:)
		# The name may already be a link to liveroot: replace the link, never write through it.
		rm -f "$dest/bin/$name"
		cat >"$dest/bin/$name" <<WRAP
#!/bin/sh
d=\$(cd "\${0%/*}/.." && pwd)
exec "\$d$loader" --library-path "\$(echo "$libdirs" | sed "s|^|\$d|; s|:|:\$d|g")" "\$d/usr/sbin/$name" "\$@"
WRAP
		chmod +x "$dest/bin/$name"
	fi
done
