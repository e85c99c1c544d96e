#!/usr/bin/env bash
# The house habits, checked (CI runs this after the tests): formatting, lints with warnings as errors, and the
# API documentation with broken links or missing docs as errors. Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
