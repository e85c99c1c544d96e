#!/bin/bash
# Runs on the lent GPU machine (BENCHMARKS.md "GPU: the CUDA provider"). After `bash benches/gpu/prepare.sh`
# here, five calls of the device tool in a row, each within the machine's warm period:
#   1. carry .gpu/c1: mkdir -p /tmp/g && cp -r .gpu/c1/. /tmp/g/ && cd /tmp/g && LD_LIBRARY_PATH=zlib ./zstd -dc first.tar.zst | tar x
#   2–4. carry .gpu/cN: cp .gpu/cN/* /tmp/g/
#   5. carry .gpu/c5: cp .gpu/c5/* /tmp/g/ && bash benches/gpu/device.sh
# This script joins the parts, points LD_LIBRARY_PATH at the carried libraries and the machine's CUDA 13 libraries,
# and runs `facewatch bench` on the CUDA provider (after TensorRT, which is absent there, to show the fallback) and
# the CPU provider, on the sample clip and the composed clips (benches/clips.py), then the peer baseline
# (benches/peers.py with the machine's own OpenCV and ONNX Runtime). Results go to $OUT (at most 8 files).
set -uo pipefail
G=/tmp/g
REPO=$PWD
cd "$G" || exit 1
export LD_LIBRARY_PATH=$G/zlib
mkdir -p ort
cat ort.tar.zst.* | ./zstd -dc --long=27 | tar x -C ort || exit 1
cat deps.tar.zst.* | ./zstd -dc --long=27 | tar x || exit 1
nv=$(find /opt/torch -path '*site-packages/nvidia*' \( -name 'libcublas.so.13' -o -name 'libcudnn.so.9' \
    -o -name 'libcurand.so.10' -o -name 'libcudart.so.13' -o -name 'libcufft.so.12' -o -name 'libnvrtc.so.13' \) \
    2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
echo "CUDA libraries: $nv"
export LD_LIBRARY_PATH=$G/deps:${nv}$G/zlib
export ORT_DISABLE_TELEMETRY=1 ORT_DYLIB_PATH=$G/ort/libonnxruntime.so.1.31.1
R=$OUT/results.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$R"
echo "cores: $(nproc); $(python3 -c 'import cv2, onnxruntime; print("OpenCV", cv2.__version__, "ONNX Runtime (peers)", onnxruntime.__version__)')" | tee -a "$R"
ldd ./facewatch | grep 'not found'
cd "$REPO" || exit 1
T() { timeout "$@"; }
run() { # label, facewatch arguments…
  local label=$1; shift
  echo "== $label: facewatch $*" >> "$R"
  T 120 "$G/facewatch" "$@" >> "$R" 2>> "$OUT/logs.txt"; echo "$label: exit $?"
}
clip=$G/short_hamilton_clip.mp4
T 120 python3 benches/clips.py --samples "$G/samples" --out "$G/bench" | tee -a "$R"
(nvidia-smi dmon -s um -d 1 > "$OUT/dmon.txt" 2>&1 &)
for i in 1 2; do run "cuda $i" --config "$G/cuda.toml" bench "$clip"; done
for c in webcam_640x480_1face webcam_640x480_4faces webcam_640x480_8faces mosaic_1920x1080; do
  run "cuda $c" --config "$G/cuda.toml" bench "$G/bench/$c.avi"
done
run "cuda 1080p native" --config "$G/cuda.toml" --set detect.input_size=0 bench "$G/bench/mosaic_1920x1080.avi" --no-baseline
run "cuda realtime 4 faces" --config "$G/cuda.toml" bench "$G/bench/webcam_640x480_4faces.avi" --realtime
pkill nvidia-smi
run "cpu realtime 4 faces" --config "$G/cpu.toml" bench "$G/bench/webcam_640x480_4faces.avi" --realtime
run "cpu 1 detect worker" --config "$G/cpu.toml" --set detect.workers=1 bench "$clip" --no-baseline
run "cpu default workers" --config "$G/cpu.toml" bench "$clip" --no-baseline
echo "== peers, CPU provider for facewatch" >> "$R"
T 300 python3 benches/peers.py --facewatch "$G/facewatch" --config "$G/cpu.toml" --models "$G/models" \
  --frames 150 --json "$OUT/peers.json" "$clip" "$G"/bench/*.avi >> "$R" 2>> "$OUT/logs.txt"; echo "peers: exit $?"
grep -h 'provider=' "$OUT/logs.txt" | sed 's/.*\(provider=[a-z]*\) \(model=[^ ]*\).*/\1 \2/' | sort | uniq -c
cat "$R"
