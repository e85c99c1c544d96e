#!/bin/bash
# Prepares what the GPU machine needs, in parts that fit its 64 MiB per call (BENCHMARKS.md "GPU"):
# .gpu/c1 … .gpu/cN, each carried by one call while the machine stays warm; device.sh runs in the last.
# Needs: a release build, models installed (scripts/setup.sh), the demo gallery (scripts/demo.sh), network to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
w=${GPU_WORK:-/tmp/facewatch-gpu}
part=${GPU_PART_BYTES:-63000000}
mkdir -p "$w" && cd "$w"
[ -f ort.tar.zst ] || {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d wheel onnxruntime-gpu==1.31.1
  rm -rf ort && mkdir ort && unzip -q -j -o wheel/onnxruntime_gpu-1.31.1-*.whl -d ort \
    'onnxruntime/capi/libonnxruntime.so.1.31.1' 'onnxruntime/capi/libonnxruntime_providers_cuda.so' \
    'onnxruntime/capi/libonnxruntime_providers_shared.so'
  tar cf - -C ort . | zstd -q -19 --long=27 -T0 -o ort.tar.zst
}
[ -f deps.tar.zst ] || {
  # The binary's shared libraries (OpenCV and all it pulls in) except glibc and the compiler runtime.
  rm -rf deps && mkdir deps
  ldd "$root/target/release/facewatch" | awk '/=>/{print $3}' \
    | grep -v -E '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+)\.so' | xargs -I{} cp -L {} deps/
  tar cf - deps | zstd -q -19 --long=27 -T0 -o deps.tar.zst
}
rm -rf first && mkdir -p first/models first/zlib
cp "$root/target/release/facewatch" first/ && strip first/facewatch
cp "$root"/models/manifest.toml "$root"/models/face_detection_yunet_2023mar.onnx "$root"/models/w600k_mbf.onnx first/models/
cp "$root"/.facewatch/samples/short_hamilton_clip.mp4 first/
mkdir -p first/samples && cp "$root"/.facewatch/samples/{cap12_edit,cap13_edit2,franck}.mp4 first/samples/
install -m 0600 "$root"/.facewatch/demo-gallery.db first/gallery.db
cp "$root"/benches/gpu/cuda.toml first/ && sed 's/"tensorrt", "cuda", "cpu"/"cpu"/' first/cuda.toml > first/cpu.toml
cp /usr/bin/zstd first/ && cp -L /lib/x86_64-linux-gnu/{libz.so.1,liblzma.so.5,liblz4.so.1} first/zlib/
tar cf - -C first facewatch models samples short_hamilton_clip.mp4 gallery.db cuda.toml cpu.toml | zstd -q -f -19 -T0 -o first.tar.zst
# Parts: c1 holds zstd, its libraries and first.tar.zst, then the data streams cut to fill each part.
rm -rf "$root/.gpu" && mkdir -p "$root/.gpu/c1/zlib"
cp first/zstd "$root/.gpu/c1/" && cp first/zlib/* "$root/.gpu/c1/zlib/" && cp first.tar.zst "$root/.gpu/c1/"
used=$(du -cb "$root/.gpu/c1" | tail -1 | cut -f1)
python3 - "$root/.gpu" "$part" "$used" <<'PY'
import os, sys
out, part, used = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n, room = 1, part - used
for name in ("ort.tar.zst", "deps.tar.zst"):
    data, k = open(name, "rb").read(), 0
    while data:
        if room <= 0:
            n, room = n + 1, part
        take, data = data[:room], data[room:]
        os.makedirs(f"{out}/c{n}", exist_ok=True)
        open(f"{out}/c{n}/{name}.{k:02d}", "wb").write(take)
        room -= len(take); k += 1
print(f"{n} parts")
PY
du -sb "$root"/.gpu/c*
