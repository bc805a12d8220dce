#!/usr/bin/env bash
# The tests on a fresh machine: installs Mesa's software Vulkan driver
# (lavapipe) where wgpu finds no adapter, then runs every Rust test, the GPU
# tests one at a time on whatever adapter wgpu finds.
#
#   scripts/test.sh            the tests
#   scripts/test.sh --no-install   never install anything (fail instead)
set -euo pipefail
cd "$(dirname "$0")/.."
# lavapipe complains on every device creation when this is unset.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# no circle of imports among the library's modules (ARCHITECTURE.md)
python3 scripts/module-cycles.py 1
python3 scripts/module-cycles.py 2

cargo build --release --locked
devices() { cargo run --release --locked --quiet -- devices "$@"; }
if ! devices >/dev/null 2>&1; then
    if [ "${1:-}" = "--no-install" ]; then
        echo "no GPU adapter, and --no-install: install mesa-vulkan-drivers (Debian/Ubuntu) first" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null; then
        echo "no GPU adapter and no apt-get: install a Vulkan driver (Mesa's lavapipe runs everything, slowly)" >&2
        exit 2
    fi
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "no GPU adapter: installing Mesa's software Vulkan driver (mesa-vulkan-drivers)" >&2
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends mesa-vulkan-drivers
fi
devices --format table

cargo test --release --locked -- --test-threads=1
