#!/usr/bin/env bash
# embed-file.sh SYMBOL FILE: prints a C file defining SYMBOL[] (the bytes of
# FILE, NUL-terminated) and SYMBOL_len, so the binary needs no source tree.
set -euo pipefail
sym=$1 file=$2
echo "/* generated from $file by scripts/embed-file.sh; do not edit */"
echo "const unsigned char ${sym}[] = {"
od -An -v -tx1 "$file" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'
echo "0x00};"
echo "const unsigned long ${sym}_len = sizeof ${sym} - 1;"
