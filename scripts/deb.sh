#!/usr/bin/env bash
# Builds the Debian package target/debian/facewatch_<version>-1_amd64.deb (README "Install"):
#   the release binary (stripped), the hardened unit (enabled, not started), the `facewatch` system user
#   (sysusers.d), /etc/facewatch/config.toml (a conffile), man pages per command and shell completions generated
#   by the binary, and Depends computed from the binary's libraries by dpkg-shlibdeps.
# Reproducible: file times are the last commit's (SOURCE_DATE_EPOCH), man pages gzipped without names or times.
# Needs: cargo, dpkg-dev (dpkg-shlibdeps), and cargo-deb (installed here on first use, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  echo "deb: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet
fi
command -v dpkg-shlibdeps >/dev/null || { echo "deb: dpkg-shlibdeps is missing: apt-get install dpkg-dev" >&2; exit 1; }
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
export SOURCE_DATE_EPOCH
cargo build --release --locked --quiet
extra=target/deb-extra
rm -rf "$extra"
mkdir -p "$extra/man" "$extra/completions"
bin=target/release/facewatch
"$bin" man --dir "$extra/man" >/dev/null
gzip -9n "$extra"/man/*.1
"$bin" completions bash >"$extra/completions/facewatch.bash"
"$bin" completions zsh >"$extra/completions/_facewatch"
"$bin" completions fish >"$extra/completions/facewatch.fish"
cargo deb --no-build --locked --strip --quiet "$@"
ls -1 target/debian/facewatch_*.deb | tail -1
