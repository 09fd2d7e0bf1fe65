#!/usr/bin/env bash
# Checks formatting (clang-format, .clang-format) and runs clang-tidy (.clang-tidy) over
# include/, src/ and sim/. Exits non-zero on any formatting difference or clang-tidy finding.
# Arguments are passed to clang-tidy (e.g. --fix).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

helsim_install_packages "${HELSIM_PACKAGES[@]}" clang-format clang-tidy
# clang-tidy needs build/compile_commands.json; configuring again is cheap and keeps it current.
helsim_configure build -DHELSIM_TESTS=ON -DHELSIM_BENCHMARKS=ON -DHELSIM_EXAMPLES=ON >/dev/null

mapfile -t sources < <(find include src sim -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | sort)
mapfile -t units < <(printf '%s\n' "${sources[@]}" | grep '\.cpp$')

status=0
echo "clang-format: ${#sources[@]} files"
clang-format --dry-run --Werror "${sources[@]}" || status=1
echo "clang-tidy: ${#units[@]} translation units"
clang-tidy -p build --quiet --warnings-as-errors='*' "$@" "${units[@]}" || status=1
exit "$status"
