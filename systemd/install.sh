#!/usr/bin/env bash
# Installs facewatch as a systemd service (run as root from a checkout where scripts/setup.sh has run):
#   binary → /usr/local/bin, ONNX Runtime → /usr/local/lib/facewatch, models → /usr/local/share/facewatch/models,
#   configuration → /etc/facewatch/config.toml (kept if present), unit → /etc/systemd/system, user `facewatch`.
# Then: enroll into /var/lib/facewatch/gallery.db as that user, and `systemctl enable --now facewatch`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "install: run as root" >&2; exit 1; }
cargo build --release --quiet
id facewatch >/dev/null 2>&1 || useradd --system --home-dir /var/lib/facewatch --shell /usr/sbin/nologin --groups video facewatch
install -D -m 0755 target/release/facewatch /usr/local/bin/facewatch
install -D -m 0644 lib/libonnxruntime.so.1.32.0 /usr/local/lib/facewatch/libonnxruntime.so.1.32.0
install -d -m 0755 /usr/local/share/facewatch/models
install -m 0644 models/manifest.toml models/*.onnx /usr/local/share/facewatch/models/
install -D -m 0644 README.md /usr/local/share/facewatch/README.md
install -d -m 0750 -g facewatch /etc/facewatch
[ -e /etc/facewatch/config.toml ] || install -m 0640 -g facewatch systemd/config.toml /etc/facewatch/config.toml
install -d -m 0700 -o facewatch -g facewatch /var/lib/facewatch
install -m 0644 systemd/facewatch.service /etc/systemd/system/facewatch.service
systemctl daemon-reload
echo "installed. Next:"
echo "  sudo -u facewatch facewatch --config /etc/facewatch/config.toml enroll /path/to/people"
echo "  sudo systemctl enable --now facewatch && journalctl -u facewatch -f"
echo "  facewatch subscribe --socket /run/facewatch/events.sock   # as a member of the facewatch group"
