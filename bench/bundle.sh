#!/usr/bin/env bash
# bundle.sh BUILD DATA OUT: packs what `make bench-scale` needs on a machine
# with many cores that may have no compiler, no package registry and none
# of mnistd's libraries (issue 20), into the tarball OUT (.tar.gz):
#
#   mnistd-scale/bin/mnistd       the binary of BUILD
#   mnistd-scale/lib/             every shared library `ldd` lists for it,
#                                 the dynamic loader included (copied
#                                 under their sonames, links resolved)
#   mnistd-scale/data/mnist/      MNIST's four IDX files, gzipped (mnistd
#                                 reads .gz IDX files as they are)
#   mnistd-scale/bench/scale.py   the benchmark (Python 3, standard library)
#   mnistd-scale/run.sh           unpacks MNIST next to the .gz files (once)
#                                 and runs the benchmark with the binary
#                                 started through the bundled loader:
#                                 lib/ld-linux-x86-64.so.2 --library-path lib bin/mnistd
#
# On the target: tar xzf OUT && mnistd-scale/run.sh [MAX_WORKERS]; it needs
# only python3 there. The libraries are those of this machine (Debian's
# OpenBLAS picks its kernels for the CPU it runs on at start-up).
set -euo pipefail
build=${1:?usage: bundle.sh BUILD DATA OUT}
data=${2:?usage: bundle.sh BUILD DATA OUT}
out=${3:?usage: bundle.sh BUILD DATA OUT}
here=$(cd "$(dirname "$0")" && pwd)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/mnistd-scale
mkdir -p "$root/bin" "$root/lib" "$root/data/mnist" "$root/bench"

cp "$build/mnistd" "$root/bin/mnistd"
# `ldd` lines: "name => /path (addr)" for libraries, "/path (addr)" for
# the loader; linux-vdso has no file
loader=
while read -r name arrow path _; do
  if [ "$arrow" = "=>" ] && [ -f "$path" ]; then
    cp -L "$path" "$root/lib/$name"
  elif [ -f "$name" ]; then
    loader=$(basename "$name")
    cp -L "$name" "$root/lib/$loader"
  fi
done < <(ldd "$build/mnistd")
[ -n "$loader" ] || { echo "bundle: ldd named no dynamic loader" >&2; exit 1; }

for f in train-images-idx3-ubyte train-labels-idx1-ubyte \
         t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ -f "$data/mnist/$f.gz" ]; then
    cp "$data/mnist/$f.gz" "$root/data/mnist/"
  else
    gzip -c "$data/mnist/$f" > "$root/data/mnist/$f.gz"
  fi
done
cp "$here/scale.py" "$root/bench/scale.py"

cat > "$root/run.sh" <<EOF
#!/bin/sh
# run.sh [MAX_WORKERS]: bench/scale.py with the bundled binary, started
# through the bundled loader and libraries (made by bench/bundle.sh).
here=\$(cd "\$(dirname "\$0")" && pwd)
# unpacked once: each \`mnistd train\` process would otherwise gunzip MNIST
for f in "\$here"/data/mnist/*.gz; do
  [ -f "\${f%.gz}" ] || gzip -dkf "\$f" || exit 1
done
MNISTD_CMD="\$here/lib/$loader --library-path \$here/lib \$here/bin/mnistd" \\
  exec python3 "\$here/bench/scale.py" "\$here/data" "\$@"
EOF
chmod +x "$root/run.sh"

tar -C "$stage" -czf "$out" mnistd-scale
echo "bundle: $out ($(du -h "$out" | cut -f1); $(ls "$root/lib" | wc -l) libraries, loader $loader)"
