#!/usr/bin/env bash
# Builds target/debian/facewatch-models_<version>_amd64.deb: ONNX Runtime and the licence-clean models, for
# machines without registry access (README "Install"). It installs them into /usr/lib/facewatch/{lib,models}, where
# the binary looks (`facewatch models` says "../lib/facewatch beside the binary"). Made from the pinned files a
# checkout's scripts/setup.sh installed, each checked against models/manifest.toml's sha256 first. Only models
# whose licence allows any use go in (YuNet MIT, SFace int8 Apache-2.0, faceplugin MIT as declared); the
# non-commercial InsightFace weights never do: `facewatch models install --accept-non-commercial` fetches them.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dpkg-deb >/dev/null || { echo "deb-models: dpkg-deb is missing" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)-1"
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
export SOURCE_DATE_EPOCH
stage="target/deb-models"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/lib/facewatch/lib" "$stage/usr/lib/facewatch/models" "$stage/usr/share/doc/facewatch-models"
# name → (file, where, licence) from the manifest; sha256 checked here.
python3 - "$stage" <<'PY'
import hashlib, sys, tomllib
from pathlib import Path
stage = Path(sys.argv[1])
manifest = tomllib.loads(Path("models/manifest.toml").read_text())
wanted = [("runtime", "onnxruntime"), ("detector", "yunet"), ("recognizer", "sface_int8"), ("recognizer", "faceplugin")]
notes = []
for section, name in wanted:
    e = manifest[section][name]
    assert "non-commercial" not in e["licence"].lower(), f"{name}: {e['licence']}"
    src = Path(e.get("install_dir", "models")) / e["file"]
    if not src.is_file():
        sys.exit(f"deb-models: {src} is missing: run scripts/setup.sh first")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    if digest != e["sha256"]:
        sys.exit(f"deb-models: {src} has sha256 {digest}, the manifest pins {e['sha256']}")
    sub = "lib" if section == "runtime" else "models"
    (stage / "usr/lib/facewatch" / sub / e["file"]).write_bytes(src.read_bytes())
    notes.append(f"Files: usr/lib/facewatch/{sub}/{e['file']}\nComment: {e['what']}\n sha256 {e['sha256']}\nLicense: {e['licence']}\n")
(stage / "usr/lib/facewatch/models/manifest.toml").write_text(Path("models/manifest.toml").read_text())
(stage / "usr/share/doc/facewatch-models/copyright").write_text(
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: facewatch-models\n\n"
    + "\n".join(notes))
PY
chmod 0644 "$stage"/usr/lib/facewatch/*/* "$stage/usr/share/doc/facewatch-models/copyright"
# Depends of the runtime library, from its own dynamic section.
tmp="$(mktemp -d)"
mkdir -p "$tmp/debian"
printf 'Source: facewatch-models\n\nPackage: facewatch-models\nArchitecture: amd64\n' >"$tmp/debian/control"
lib="$(realpath "$stage"/usr/lib/facewatch/lib/libonnxruntime.so.*)"
depends="$(cd "$tmp" && dpkg-shlibdeps -O --ignore-missing-info -e"$lib" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
rm -rf "$tmp"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: facewatch-models
Version: $version
Architecture: amd64
Maintainer: facewatch developers <facewatch@users.noreply.github.com>
Section: video
Priority: optional
Depends: $depends
Enhances: facewatch
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Description: ONNX Runtime and licence-clean models for facewatch
 ONNX Runtime 1.32.0 (MIT) and the models facewatch's "open" and "faceplugin" packs use: YuNet (MIT), SFace int8
 (Apache-2.0) and the faceplugin recognizer (MIT as declared), each checked against facewatch's pinned sha256,
 for machines that cannot reach the package registries. Non-commercial weights are not included.
CONTROL
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p target/debian
out="target/debian/facewatch-models_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
