#!/usr/bin/env bash
# Demo on the bundled sample photos: installs what is missing, builds, enrolls the sample people into a fresh
# demo gallery, then identifies and verifies sample photos and prints the answers.
set -euo pipefail
cd "$(dirname "$0")/.."
faces="${FACEWATCH_FACES:-../shared/faces}"
[ -d "$faces/people" ] || { echo "demo: sample photos not found at $faces (set FACEWATCH_FACES)" >&2; exit 1; }
scripts/setup.sh
cargo build --quiet
fw=target/debug/facewatch
gallery=.facewatch/demo-gallery.db
rm -f "$gallery" "$gallery-wal" "$gallery-shm"
export RUST_LOG="${RUST_LOG:-warn}"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "facewatch ${*#--gallery $gallery }"; "$fw" "$@" || true; }

run --gallery "$gallery" enroll "$faces/people"
run --gallery "$gallery" gallery list
run --gallery "$gallery" identify "$faces/groups/two_people_2.jpg" "$faces/dedupe/obama-720p.jpg" "$faces/video/lin-manuel-miranda.png"
run --gallery "$gallery" verify "$faces/people/obama/obama.jpg" "$faces/people/obama/obama2.jpg"
run --gallery "$gallery" verify "$faces/people/obama/obama.jpg" "$faces/people/biden/biden.jpg"
run --gallery "$gallery" verify --anchor "$faces/people/id00/img1.jpg" --anchor "$faces/people/id00/img2.jpg" --anchor "$faces/people/id00/img4.jpg" "$faces/people/id00/img5.jpg"
run --gallery "$gallery" detect --crop .facewatch/demo-crops "$faces/groups/compreface_012_4.jpg"
run evaluate --pairs "$faces/people/deepface_master.csv" --plots .facewatch/demo-plots
run --gallery "$gallery" gallery check
printf '\naligned crops: .facewatch/demo-crops/  plots: .facewatch/demo-plots/  gallery: %s\n' "$gallery"
