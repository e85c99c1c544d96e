#!/usr/bin/env python3
"""The peer baseline: what people would run instead of facewatch, on the same clip, models and cores.

For each clip it runs, one after the other on the same machine:

  opencv     OpenCV's own loop: FaceDetectorYN (YuNet, at the frame's size, as OpenCV's sample does) and
             FaceRecognizerSF (alignCrop + feature) on every face, with OpenCV's threads
  python+ort FaceDetectorYN for detection, FaceRecognizerSF.alignCrop, and the recognizer in an ONNX Runtime
             session with the manifest's pre-processing, every face embedded
  facewatch  `facewatch bench CLIP` (the daemon end to end: capture, detect, track, embed when the tracker asks,
             match, publish to a live socket) and its bare-model baseline (every face embedded, one thread)
  fw, every  the same with `track.embed_every = 1` and no per-frame budget (`track.embed_budget = 1000`): the
             daemon embedding every face of every frame, the work the peers do

and prints frames per second, faces found and the ratios facewatch ÷ peer. Same models: the detector and
recognizer files facewatch is configured with (models/), the same core count for every contender.

    .facewatch/peers/bin/python benches/peers.py [CLIP…] [--frames N] [--facewatch PATH] [--json FILE]

Without CLIP: the sample clip and the clips benches/clips.py composes (made first when missing). scripts/setup.sh
installs the pinned OpenCV and ONNX Runtime wheels into .facewatch/peers.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def recognizer_entry(manifest: dict, name: str) -> dict:
    return manifest["recognizer"][name]


def frames_of(path: Path, limit: int):
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        sys.exit(f"peers.py: cannot open {path}")
    n = 0
    while n < limit:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
        yield f


def timed_loop(clip: Path, det_model: Path, limit: int, embed) -> dict:
    """OpenCV's YuNet at each frame's own size, then `embed(frame, face)` for every face found; timed from the
    first read to the last embedding."""
    det = cv2.FaceDetectorYN.create(str(det_model), "", (320, 320), 0.6, 0.3, 5000)
    faces = frames = 0
    start = time.perf_counter()
    for f in frames_of(clip, limit):
        det.setInputSize((f.shape[1], f.shape[0]))
        _, found = det.detect(f)
        for face in found if found is not None else []:
            embed(f, face)
            faces += 1
        frames += 1
    seconds = time.perf_counter() - start
    return {"frames": frames, "faces": faces, "seconds": seconds, "fps": frames / seconds}


def opencv_loop(clip: Path, det_model: Path, rec_model: Path, limit: int) -> dict:
    rec = cv2.FaceRecognizerSF.create(str(rec_model), "")
    return timed_loop(clip, det_model, limit, lambda f, face: rec.feature(rec.alignCrop(f, face)))


def python_ort_loop(clip: Path, det_model: Path, rec_model: Path, rec: dict, limit: int, threads: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(rec_model), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    spec = rec["input"]
    mean, std, rgb = float(spec["mean"]), float(spec["std"]), spec["color"] == "rgb"
    align = cv2.FaceRecognizerSF.create(str(rec_model), "")

    def embed(f, face):
        crop = align.alignCrop(f, face)
        if rgb:
            crop = crop[:, :, ::-1]
        x = ((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
        v = session.run(None, {name: np.ascontiguousarray(x)})[0][0]
        return v / (np.linalg.norm(v) + 1e-12)

    return timed_loop(clip, det_model, limit, embed)


def facewatch_bench(fw: Path, clip: Path, limit: int, extra: list, baseline: bool = True) -> dict:
    cmd = [str(fw), "--json", "-q", *extra, "bench", str(clip), "--frames", str(limit)]
    if not baseline:
        cmd.append("--no-baseline")
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"peers.py: {' '.join(cmd)} exited {run.returncode}: {run.stderr.strip()[-500:]}")
    r = json.loads(run.stdout)
    p = r["pipeline"]
    return {
        "frames": p["frames"], "faces": p["faces"], "seconds": p["seconds"], "fps": p["fps"],
        "embedded": p["embedded"], "cores_busy": r["cpu_cores_busy"],
        "bare_fps": r["baseline"]["fps"] if r.get("baseline") else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--frames", type=int, default=300, help="frames per clip (default 300)")
    ap.add_argument("--facewatch", type=Path, default=ROOT / "target/release/facewatch")
    ap.add_argument("--config", type=Path, help="facewatch configuration file (models, gallery, runtime)")
    ap.add_argument("--set", action="append", default=[], help="facewatch --set KEY=VALUE (repeatable)")
    ap.add_argument("--detector", default="face_detection_yunet_2023mar.onnx")
    ap.add_argument("--recognizer", default="w600k_mbf")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()

    threads = os.cpu_count() or 1
    cv2.setNumThreads(threads)
    manifest = tomllib.loads((a.models / "manifest.toml").read_text())
    rec = recognizer_entry(manifest, a.recognizer)
    det_model, rec_model = a.models / a.detector, a.models / rec["file"]
    clips = a.clips
    if not clips:
        bench = ROOT / ".facewatch/bench"
        names = ["webcam_640x480_1face.avi", "webcam_640x480_4faces.avi", "webcam_640x480_8faces.avi",
                 "mosaic_1920x1080.avi"]
        if not all((bench / n).is_file() for n in names):
            subprocess.run([sys.executable, str(ROOT / "benches/clips.py"), "--out", str(bench)], check=True)
        clips = [ROOT / ".facewatch/samples/short_hamilton_clip.mp4", *(bench / n for n in names)]
    extra = (["--config", str(a.config)] if a.config else []) + [x for s in a.set for x in ("--set", s)]
    extra += ["--set", f"models.recognizer={a.recognizer}"]
    print(f"{threads} cores; OpenCV {cv2.__version__}; detector {a.detector}, recognizer {a.recognizer}")
    print(f"{'clip (fps)':28} {'facewatch':>9} {'fw,every':>8} {'bare':>6} {'opencv':>7} {'py+ort':>7}  "
          f"{'÷opencv':>8} {'every÷cv':>8} {'÷py+ort':>8}  faces fw/cv  cores fw/every")
    results = []
    for clip in clips:
        fw = facewatch_bench(a.facewatch, clip, a.frames, extra)
        every = facewatch_bench(a.facewatch, clip, a.frames, extra + ["--set", "track.embed_every=1", "--set", "track.embed_budget=1000"], baseline=False)
        cv = opencv_loop(clip, det_model, rec_model, a.frames)
        po = python_ort_loop(clip, det_model, rec_model, rec, a.frames, threads)
        bare = fw["bare_fps"] or float("nan")
        print(f"{clip.name:28} {fw['fps']:9.1f} {every['fps']:8.1f} {bare:6.1f} {cv['fps']:7.1f} {po['fps']:7.1f}  "
              f"{fw['fps'] / cv['fps']:7.2f}× {every['fps'] / cv['fps']:7.2f}× {fw['fps'] / po['fps']:7.2f}×  "
              f"{fw['faces']:5}/{cv['faces']:<5} {fw['cores_busy']:5.2f}/{every['cores_busy']:.2f}", flush=True)
        results.append({"clip": str(clip), "facewatch": fw, "facewatch_every_face": every, "opencv": cv,
                        "python_ort": po})
    if a.json:
        a.json.write_text(json.dumps({"v": 1, "cores": threads, "opencv": cv2.__version__, "results": results},
                                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
