#!/usr/bin/env bash
# Installs facewatch as a systemd service, from a checkout where scripts/setup.sh has run. Run it as yourself:
# it builds with your own cargo (rustup's lives in your home, not root's) and asks sudo for the install steps
# only; under `sudo` it builds as the user who called sudo, so root never owns target/. It installs:
#   binary → /usr/local/bin, ONNX Runtime and models → /usr/local/lib/facewatch/{lib,models} (found there as
#   ../lib/facewatch beside the binary), configuration → /etc/facewatch/config.toml (kept if present), unit →
#   /etc/systemd/system (its /usr/bin paths made /usr/local/bin), user `facewatch`.
# On Debian and Ubuntu prefer the package (README "Install"): `scripts/deb.sh` builds it.
# Then: enroll into /var/lib/facewatch/gallery.db as that user, and `systemctl enable --now facewatch`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  cargo build --release --quiet
  exec sudo "$0" --built
fi
if [ "${1:-}" != --built ]; then
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    # A login shell of that user, so that ~/.cargo/bin is on its PATH.
    runuser -u "$SUDO_USER" -- bash -lc "cd $(printf %q "$PWD") && cargo build --release --quiet"
  else
    cargo build --release --quiet
  fi
fi
[ -x target/release/facewatch ] || { echo "install: target/release/facewatch was not built" >&2; exit 1; }
id facewatch >/dev/null 2>&1 || useradd --system --home-dir /var/lib/facewatch --shell /usr/sbin/nologin --groups video facewatch
install -D -m 0755 target/release/facewatch /usr/local/bin/facewatch
install -D -m 0644 lib/libonnxruntime.so.1.32.0 /usr/local/lib/facewatch/lib/libonnxruntime.so.1.32.0
install -d -m 0755 /usr/local/lib/facewatch/models
install -m 0644 models/manifest.toml models/*.onnx /usr/local/lib/facewatch/models/
install -D -m 0644 README.md /usr/local/share/doc/facewatch/README.md
install -d -m 0750 -g facewatch /etc/facewatch
[ -e /etc/facewatch/config.toml ] || install -m 0640 -g facewatch systemd/config.toml /etc/facewatch/config.toml
install -d -m 0700 -o facewatch -g facewatch /var/lib/facewatch
sed 's#/usr/bin/facewatch#/usr/local/bin/facewatch#g' systemd/facewatch.service >/etc/systemd/system/facewatch.service
chmod 0644 /etc/systemd/system/facewatch.service
systemctl daemon-reload
echo "installed. Next:"
echo "  sudo -u facewatch facewatch --config /etc/facewatch/config.toml enroll /path/to/people"
echo "  sudo systemctl enable --now facewatch && journalctl -u facewatch -f"
echo "  facewatch subscribe --socket /run/facewatch/events.sock   # as a member of the facewatch group"
