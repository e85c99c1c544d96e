#!/usr/bin/env bash
# Demo on the bundled samples: installs what is missing, builds, enrolls the sample people into a fresh demo
# gallery, runs the daemon on the sample video (events printed as they happen, preview window when a display
# exists), then the still-image jobs: identify, verify, detect, evaluate, gallery check.
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

# Lin-Manuel Miranda and Alex Lacamoire are enrolled from one photo each; the clip shows Miranda on stage,
# Lacamoire at the piano, Miranda again, then the audience with Barack Obama (enrolled with the sample people).
samples=.facewatch/samples
rm -rf .facewatch/demo-people && mkdir -p .facewatch/demo-people/lin-manuel-miranda .facewatch/demo-people/alex-lacamoire
cp "$samples/lin-manuel-miranda.png" .facewatch/demo-people/lin-manuel-miranda/
cp "$samples/alex-lacamoire.png" .facewatch/demo-people/alex-lacamoire/
run --gallery "$gallery" enroll "$faces/people"
run --gallery "$gallery" enroll .facewatch/demo-people
run --gallery "$gallery" gallery list

# A private MQTT broker on a free port (as Home Assistant would use one), and a client watching presence.
mqtt=()
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > .facewatch/demo-mosquitto.conf
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c .facewatch/demo-mosquitto.conf >/dev/null 2>&1 &
  broker=$!
  sleep 0.5
  mosquitto_sub -h 127.0.0.1 -p "$port" -v -t 'facewatch/+/availability' -t 'facewatch/+/+/person/+' -t 'facewatch/+/+/last_recognized' \
    > .facewatch/demo-mqtt.log 2>/dev/null &
  watcher=$!
  mqtt=(--set mqtt.host=127.0.0.1 --set mqtt.port="$port" --set mqtt.node_id=demo --set mqtt.presence_timeout_s=2)
  trap 'kill $watcher $broker 2>/dev/null || true' EXIT
fi

# The daemon, paced at the clip's frame rate like a camera; --preview opens the window only when a display exists.
step "facewatch run --source $samples/short_hamilton_clip.mp4 --camera stage --preview --print ${mqtt[*]}"
"$fw" --gallery "$gallery" --set publish.update_interval_ms=0 "${mqtt[@]}" run --source "$samples/short_hamilton_clip.mp4" --camera stage \
  --socket .facewatch/demo.sock --preview --print | python3 scripts/show_events.py || true
if ((${#mqtt[@]})); then
  sleep 0.5
  step "mosquitto_sub -v -t 'facewatch/+/availability' -t 'facewatch/+/+/person/+' -t 'facewatch/+/+/last_recognized'"
  cat .facewatch/demo-mqtt.log
  kill "$watcher" "$broker" 2>/dev/null || true
fi
# How well it named them, frame by frame, against the clip's ground truth (timeline.png shows it).
run --gallery "$gallery" evaluate --video "$samples/short_hamilton_clip.mp4" --truth tests/data/hamilton_truth.csv --plots .facewatch/demo-plots
run --gallery "$gallery" identify "$faces/groups/two_people_2.jpg" "$faces/dedupe/obama-720p.jpg" "$samples/alex-lacamoire.png"
run --gallery "$gallery" verify "$faces/people/obama/obama.jpg" "$faces/people/obama/obama2.jpg"
run --gallery "$gallery" verify "$faces/people/obama/obama.jpg" "$faces/people/biden/biden.jpg"
run --gallery "$gallery" verify --anchor "$faces/people/id00/img1.jpg" --anchor "$faces/people/id00/img2.jpg" --anchor "$faces/people/id00/img4.jpg" "$faces/people/id00/img5.jpg"
run --gallery "$gallery" detect --crop .facewatch/demo-crops "$faces/groups/compreface_012_4.jpg"
run evaluate --pairs "$faces/people/deepface_master.csv" --plots .facewatch/demo-plots
run --gallery "$gallery" gallery check
printf '\naligned crops: .facewatch/demo-crops/  plots: .facewatch/demo-plots/  gallery: %s\n' "$gallery"
