#!/usr/bin/env bash
# deps.sh: installs the Debian packages mnistd builds and tests with, when missing.
set -euo pipefail
pkgs=(build-essential pkg-config libmicrohttpd-dev libgnutls28-dev libjansson-dev libsqlite3-dev
      libpq-dev postgresql libsodium-dev
      libopenblas-dev zlib1g-dev libpng-dev libcairo2-dev libfontconfig-dev
      fonts-dejavu-core
      libcriterion-dev sqlite3
      clang libclang-rt-dev gcovr
      libonnx-dev protobuf-c-compiler libprotobuf-c-dev python3-onnx
      python3 python3-pytest python3-requests python3-jsonschema python3-yaml
      python3-numpy npm ca-certificates chromium wrk openssl
      dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  # a nodejs build that bundles npm conflicts with Debian's npm package
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
