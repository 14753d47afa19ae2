#!/usr/bin/env bash
# Installs what moeckpt needs from Debian's packages when it is missing. Safe to re-run.
set -euo pipefail

# System libraries the package links against: libhdf5 (HDF5 files) and zlib (its deflate filter).
packages=(libhdf5-dev zlib1g-dev pkg-config)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: the Swift toolchain (6.x) is not on PATH" >&2; exit 2; }
