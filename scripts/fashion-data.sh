#!/usr/bin/env bash
# fashion-data.sh DIR: links Fashion-MNIST, from Debian's dataset-fashion-mnist
# (scripts/deps.sh installs it), as DIR (data/fashion-mnist), after checking
# that its four gzip IDX files are there and whole.
set -euo pipefail
dest=$1
src=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
for f in "${files[@]}"; do
  if [ ! -r "$src/$f" ]; then
    echo "fashion-data: $src/$f is missing: install dataset-fashion-mnist (scripts/deps.sh)" >&2
    exit 1
  fi
  gzip -t "$src/$f" || { echo "fashion-data: $src/$f is corrupt" >&2; exit 1; }
done
if [ -L "$dest" ] && [ "$(readlink "$dest")" = "$src" ]; then exit 0; fi
if [ -e "$dest" ]; then
  echo "fashion-data: $dest exists and is not a link to $src; leaving it" >&2
  exit 0
fi
ln -s "$src" "$dest"
echo "fashion-data: linked $dest -> $src"
