#!/usr/bin/env bash
# fetch-uplot.sh DIR: puts uPlot's minified script and stylesheet (npm
# package uplot@1.6.32, fetched with `npm pack` through npm's configured
# registry) into DIR, checking their sha256 sums. The dashboard embeds
# them: the browser never fetches anything from the internet.
set -euo pipefail
dir=${1:?usage: fetch-uplot.sh DIR}
version=1.6.32
sums="19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f  uPlot.iife.min.js
df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04  uPlot.min.css"
if [ -d "$dir" ] && (cd "$dir" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-uplot: npm is missing (run: make deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-uplot: npm pack uplot@$version"
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tar -xzf "$tmp/uplot-$version.tgz" -C "$tmp"
mkdir -p "$dir"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$dir/"
(cd "$dir" && echo "$sums" | sha256sum --check --quiet) || {
  echo "fetch-uplot: sha256 mismatch in uplot@$version" >&2
  rm -f "$dir/uPlot.iife.min.js" "$dir/uPlot.min.css"
  exit 1
}
