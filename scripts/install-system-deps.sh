#!/usr/bin/env bash
# Installs the Debian packages the simulators, compilers and emulators need.
# As root: installs what is missing. Otherwise: names what is missing and how to get it.
set -euo pipefail
packages=(iverilog yosys nextpnr-ice40 gcc-arm-none-eabi libnewlib-arm-none-eabi
          picolibc-arm-none-eabi qemu-system-arm valgrind ccache liblz4-dev make g++ perl
          gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
          dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: missing Debian packages: ${missing[*]}" >&2
  echo "         install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  echo "         (tests that need them are skipped unless TTFS_REQUIRE_TOOLS=1)" >&2
fi
