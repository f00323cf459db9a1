#!/usr/bin/env bash
# Installs the Debian packages Qt needs (fonts, xcb and EGL libraries, and xvfb for a virtual
# screen) when any is missing. Needs root or sudo; without either it says what to install.
set -euo pipefail
pkgs=(fonts-dejavu-core fonts-wqy-microhei libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0
      libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 xvfb xauth)
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not a Debian system: nothing we can do here
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Qt needs these Debian packages: ${missing[*]} (install them as root)" >&2; exit 0
fi
echo "installing Qt's system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
