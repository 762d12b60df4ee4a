#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the probe guest: a multiboot ELF32 kernel for QEMU's -kernel (guest.S,
# the reference COLO pair's guest) that dirties 100 * PAGES_PER_TICK pages a
# second and prints "HB n" on COM1 every guest second; COM1 input F freezes it
# (no memory writes at all), U thaws it.
#   scripts/qemu/guest/build-guest.sh OUT.elf [PAGES_PER_TICK]   (default 40: 15.6 MiB/s)
set -euo pipefail
case "${1:-}" in
    ""|-h|--help) sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit;;
esac
out=$1
ppt=${2:-40}
[[ $ppt =~ ^[0-9]+$ ]] && [ "$ppt" -ge 1 ] || { echo "build-guest: PAGES_PER_TICK '$ppt' is not a positive number" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -DPAGES_PER_TICK="$ppt" -o "$tmp/guest.o" "$src/guest.S"
ld -m elf_i386 -Ttext 0x100000 -e _start -o "$out" "$tmp/guest.o"
echo "build-guest: $out (PAGES_PER_TICK=$ppt: $((ppt * 100)) pages/s)"
