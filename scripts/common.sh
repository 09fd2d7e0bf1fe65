# shellcheck shell=bash
# shellcheck disable=SC2034  # HELSIM_PACKAGES is used by the scripts that source this file
# Shared by the scripts in this folder (source it; do not run it). It moves to the
# repository root, whatever directory the calling script was started from.
#
# HELSIM_JOBS sets the number of parallel build jobs (default: the number of CPUs).

HELSIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HELSIM_ROOT" || exit 1

HELSIM_JOBS="${HELSIM_JOBS:-$(nproc)}"

# The Debian 12 packages that building helsim, its tests, benchmarks and examples needs.
HELSIM_PACKAGES=(build-essential cmake ninja-build libboost-context-dev libboost-fiber-dev
	libgtest-dev libgmock-dev libbenchmark-dev libfmt-dev liburing-dev pkg-config)

helsim_apt_updated=0

# helsim_install_packages PACKAGE...: installs those that dpkg does not list as installed.
# Runs apt-get update once per script run, and only if something is missing.
helsim_install_packages() {
	local missing=() package
	for package in "$@"; do
		if ! dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then
			missing+=("$package")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	echo "helsim: installing missing packages: ${missing[*]}"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	if ((helsim_apt_updated == 0)); then
		"${sudo[@]}" apt-get update
		helsim_apt_updated=1
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
}

# helsim_configure BUILD_DIR [CMAKE_ARGS...]: later arguments override the defaults.
helsim_configure() {
	local dir="$1"
	shift
	cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@"
}

# helsim_build BUILD_DIR [NINJA_TARGETS...]
helsim_build() {
	local dir="$1"
	shift
	ninja -C "$dir" -j "$HELSIM_JOBS" "$@"
}
