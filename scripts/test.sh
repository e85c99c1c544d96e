#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (scripts/setup.sh), then runs every unit
# and integration test on the real models and the real photos in ../shared/faces (or $FACEWATCH_FACES).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Schemathesis (PyPI, pinned) for the schema-driven fuzz run of the HTTP API (tests/integration/api.rs).
if [ ! -x .facewatch/fuzz/bin/st ]; then
  python3 -m venv .facewatch/fuzz
  .facewatch/fuzz/bin/pip install --quiet --disable-pip-version-check schemathesis==3.39.16 hypothesis==6.122.0
fi
# The web page's browser test (tests/integration/browser.rs): Debian's chromium, and playwright-core pinned by
# tests/browser/package-lock.json (npm ci checks its integrity hash).
if ! [ -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test: installing chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! [ -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
