#!/usr/bin/env bash
# Installs the system packages fabnet's tests and demo run against, where they are missing:
# Mosquitto (the broker), PrusaSlicer, Slic3r and CuraEngine (external slicers), Chromium and
# ChromeDriver (dashboard tests), and Cura's printer definitions (unpacked, not installed).
# Usage: scripts/install-system-deps.sh [demo|test]
set -euo pipefail
mode="${1:-test}"
here="$(cd "$(dirname "$0")/.." && pwd)"

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mosquitto || need+=(mosquitto)
if [ "$mode" = test ]; then
  have prusa-slicer || need+=(prusa-slicer)
  have slic3r || need+=(slic3r)
  have CuraEngine || need+=(cura-engine)
  have chromium || need+=(chromium)
  have chromedriver || need+=(chromium-driver)
fi

if [ "${#need[@]}" -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
    || { $sudo_ apt-get update >/dev/null && $sudo_ apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; } \
    || { echo "error: could not install ${need[*]}; install them by hand (Debian/Ubuntu: apt-get install ${need[*]})" >&2; exit 1; }
fi

# Cura's printer definitions live in Debian's `cura` package (132 dependencies); fetch the .deb and
# unpack only its data instead of installing it.
if [ "$mode" = test ] && [ ! -f "$here/var/cura/usr/share/cura/resources/definitions/fdmprinter.def.json" ]; then
  mkdir -p "$here/var/cura"
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download cura >/dev/null 2>&1) \
    || { echo "error: could not fetch Debian's cura package (apt-get download cura)" >&2; exit 1; }
  dpkg-deb -x "$tmp"/cura_*.deb "$here/var/cura"
  rm -rf "$tmp"
fi
