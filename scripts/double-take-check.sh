#!/usr/bin/env bash
# Double Take's own CompreFace client against facewatch (issue 27): its detector module
# (api/src/util/detectors/compreface.js, and the `checks` of actions/index.js it calls) is taken unchanged from a
# Double Take clone you give, loaded by Node with the two libraries it needs from npm (axios 0.27.2, form-data 4),
# and pointed at a facewatch daemon started here with an API key. Nothing of Double Take is kept or committed: it
# lives in a temporary folder with three stubs standing for its configuration (url, key, the default thresholds)
# and its detector factory (which would load every other detector).
#
# The check: Double Take trains a subject from two photos (POST /api/v1/recognition/faces), recognises a held-out
# photo of that person and normalises the answer as Double Take does (name, confidence, match), gets no faces for
# a photo without one (code 28), recognises the faces of a group photo, removes the subject, and no longer matches.
#
# Usage: scripts/double-take-check.sh DOUBLE_TAKE   (a clone of github.com/jakowenko/double-take, or its git dir)
# Needs: node and npm (registry access), a built facewatch (FACEWATCH_BIN, default target/debug/facewatch), the
# sample faces (../shared/faces or FACEWATCH_FACES).
set -euo pipefail
cd "$(dirname "$0")/.."
dt="${1:?usage: scripts/double-take-check.sh DOUBLE_TAKE_CLONE}"
bin="${FACEWATCH_BIN:-target/debug/facewatch}"
faces="${FACEWATCH_FACES:-../shared/faces}"
[ -x "$bin" ] || cargo build --quiet
work="$(mktemp -d)"
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

get() {
  if git -C "$dt" rev-parse --git-dir >/dev/null 2>&1; then git -C "$dt" show "HEAD:$1"; else cat "$dt/$1"; fi
}
commit="$(git -C "$dt" rev-parse HEAD 2>/dev/null || echo "not a git clone")"
api="$work/dt/api"
mkdir -p "$api/src/util/detectors/actions" "$api/src/constants"
get api/src/util/detectors/compreface.js >"$api/src/util/detectors/compreface.js"
get api/src/util/detectors/actions/index.js >"$api/src/util/detectors/actions/index.js"
echo "Double Take $commit: api/src/util/detectors/compreface.js ($(wc -l <"$api/src/util/detectors/compreface.js") lines), actions/index.js"
(cd "$api" && npm install --silent --no-audit --no-fund --no-package-lock axios@0.27.2 form-data@4.0.0 >/dev/null)

# facewatch: a gallery with one other person, the daemon with its API on a free port and a CompreFace-style key.
key="$(python3 -c 'import uuid; print(uuid.uuid4())')"
printf '%s\n' "$key" >"$work/keys"
chmod 600 "$work/keys"
mkdir -p "$work/people/biden"
cp "$faces/people/biden/biden.jpg" "$work/people/biden/"
"$bin" --gallery "$work/g.db" --quiet enroll "$work/people" >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" --gallery "$work/g.db" --set api.listen="127.0.0.1:$port" --set api.keys_file="$work/keys" --set runtime.intra_threads=1 \
  run --source "$faces/video/short_hamilton_clip.mp4" --loop --socket "" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/api/health" >/dev/null || { cat "$work/daemon.log" >&2; echo "double-take-check: the daemon did not start" >&2; exit 1; }

# Double Take's configuration and factory, as its config.yml would give them (defaults.js thresholds).
cat >"$api/src/constants/index.js" <<JS
module.exports = () => ({ DETECTORS: { COMPREFACE: { URL: 'http://127.0.0.1:$port', KEY: '$key', TIMEOUT: 15, DET_PROB_THRESHOLD: 0.8 } } });
JS
cat >"$api/src/constants/config.js" <<'JS'
module.exports.detect = () => ({ MATCH: { CONFIDENCE: 60, MIN_AREA: 10000 }, UNKNOWN: { CONFIDENCE: 40, MIN_AREA: 0 } });
JS
echo "module.exports = {};" >"$api/src/util/detectors/factory.js"
noface="$(ls -1 "$faces"/noface/* | head -1)"
cat >"$work/check.js" <<JS
const cf = require('$api/src/util/detectors/compreface.js');
const faces = '$(cd "$faces" && pwd)';
let failed = 0;
const check = (what, ok, detail) => { console.log((ok ? 'ok   ' : 'FAIL ') + what + ': ' + JSON.stringify(detail)); if (!ok) failed++; };
(async () => {
  for (const photo of ['obama.jpg', 'obama2.jpg']) {
    const { status, data } = await cf.train({ name: 'obama', key: faces + '/people/obama/' + photo });
    check('train obama from ' + photo, status === 201 && data.subject === 'obama' && data.image_id, data);
  }
  let res = await cf.recognize({ key: faces + '/people/obama/obama3.jpg' });
  let found = cf.normalize({ camera: 'door', data: res.data });
  check('recognize a held-out photo', found.length === 1 && found[0].name === 'obama' && found[0].match === true, found);
  res = await cf.recognize({ key: '$noface' });
  found = cf.normalize({ camera: 'door', data: res.data });
  check('a photo without a face', res.status === 400 && res.data.code === 28 && found.length === 0, res.data);
  res = await cf.recognize({ key: faces + '/groups/compreface_011_3.jpg', test: true });
  found = cf.normalize({ camera: 'door', data: res.data });
  check('the faces of a group photo', found.length === 3 && found.every((f) => f.box.width > 0), found.map((f) => [f.name, f.confidence]));
  res = await cf.remove({ name: 'obama' });
  check('remove obama', res.status === 200 && res.data.deleted === 2, res.data);
  res = await cf.recognize({ key: faces + '/people/obama/obama3.jpg' });
  found = cf.normalize({ camera: 'door', data: res.data });
  check('no longer obama', found.length === 1 && found[0].name !== 'obama' && found[0].match === false, found);
  console.log(failed ? 'double-take-check: FAILED' : 'double-take-check: PASSED');
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error('double-take-check: FAILED:', e.message); process.exit(1); });
JS
(cd "$work" && node check.js)
