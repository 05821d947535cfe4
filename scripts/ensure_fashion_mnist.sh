#!/usr/bin/env bash
# Make sure the Fashion-MNIST data set is installed (Debian package dataset-fashion-mnist).
#
# Installs the package with apt-get when its files are missing (as root, or with password-less
# sudo). Idempotent and silent on success; `effnet ... --data fashion-mnist` reads the files it
# installs (the original idx .gz files, listed by `dpkg -L dataset-fashion-mnist`), with no network.
set -euo pipefail

fail() { echo "ensure_fashion_mnist: $*" >&2; exit 1; }

if dpkg -L dataset-fashion-mnist 2>/dev/null | grep -q 't10k-labels-idx1-ubyte.gz$'; then
    exit 0
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

export DEBIAN_FRONTEND=noninteractive
# apt-get waits for another apt-get (a parallel make) instead of failing at once
as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 \
        || fail "dataset-fashion-mnist is not installed and apt-get update failed (needs root or sudo)"
    as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
        || fail "apt-get install dataset-fashion-mnist failed"
}
