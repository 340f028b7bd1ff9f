# Shared by the scripts in this folder: which Debian packages kazasu needs,
# and how they are installed (once, non-interactively, only what is missing).

# Packages the test suite needs.
TEST_PACKAGES=(libnfc-dev libnfc-bin libnfc-examples socat tshark pkg-config gcc openssl chromium fonts-noto-cjk squashfs-tools e2fsprogs dosfstools fdisk qemu-system-arm)

install_packages() {
	local missing=()
	local p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
			echo "missing packages (${missing[*]}) and not root: install them and run again" >&2
			return 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}
