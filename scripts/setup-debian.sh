#!/usr/bin/env bash
# Installs every Debian package AM needs to build, run, test and benchmark.
# Run as root on Debian 12. Safe to run again: it installs only what is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev git ca-certificates
  # libraries the daemon links
  libsqlite3-dev libcivetweb-dev libjansson-dev libsodium-dev libmagic-dev libcurl4-openssl-dev zlib1g-dev
  # the enrichment pipeline: OCR, speech-to-text, audio/video decoding
  libtesseract-dev libleptonica-dev tesseract-ocr-eng libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us
  libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev
  # sources: MQTT, importers (XML, streaming JSON, iCalendar), the desktop collector (XCB)
  libmosquitto-dev libxml2-dev libyajl-dev libical-dev
  libxcb1-dev libxcb-ewmh-dev libxcb-screensaver0-dev
  # tools the tests and benchmarks use
  curl prometheus sqlite3 procps psmisc valgrind python3 python3-websocket
  # test fixtures: rendered text (ImageMagick + a font), clips (ffmpeg), recorded speech (alsa-utils)
  imagemagick fonts-dejavu-core ffmpeg alsa-utils
  # servers and clients the source tests start: an MQTT broker, an X server for am-collect
  mosquitto mosquitto-clients xvfb x11-utils
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null && SUDO=sudo || { echo "setup-debian: run as root to install: ${missing[*]}" >&2; exit 1; }
fi
echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
