#!/usr/bin/env bash
# Installs what is missing (Debian 12), builds helsim and runs the main demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

helsim_install_packages "${HELSIM_PACKAGES[@]}"
helsim_configure build -DHELSIM_TESTS=ON -DHELSIM_BENCHMARKS=ON -DHELSIM_EXAMPLES=ON
helsim_build build examples/demo/demo
exec ./build/examples/demo/demo "$@"
