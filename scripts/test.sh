#!/usr/bin/env bash
# Installs what is missing (Debian 12), builds helsim with its tests, benchmarks and examples,
# and runs the tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

helsim_install_packages "${HELSIM_PACKAGES[@]}"
helsim_configure build -DHELSIM_TESTS=ON -DHELSIM_BENCHMARKS=ON -DHELSIM_EXAMPLES=ON
helsim_build build
ctest --test-dir build --output-on-failure "$@"
