#!/usr/bin/env python3
"""Prints facewatch events (JSON lines on stdin, e.g. `facewatch run --print` or `facewatch subscribe`) as one
readable line each: frame, event, track, name, score, and the frame → event latency."""
import json
import sys

for line in sys.stdin:
    try:
        e = json.loads(line)
    except json.JSONDecodeError:
        print(line, end="")
        continue
    kind = e.get("type", "?")
    latency = (e["emit_ts"] - e.get("frame_ts", e["emit_ts"])) * 1000
    if "track_id" in e:
        extra = ""
        if "previous" in e:
            extra = f" (was {e['previous']})"
        elif kind == "track_ended":
            extra = f" after {e['duration_s']:.1f} s, {e['frames']} frames"
        # A track ends max_absence_s after its last sighting, which is what its frame_ts says: no latency there.
        after = "" if kind == "track_ended" else f"  [{latency:.0f} ms after capture]"
        print(f"  frame {e['frame_seq']:>4}  {kind:<16} track {e['track_id']:>3}  {e['name']:<20} "
              f"score {e['score']:.2f}{extra}{after}", flush=True)
    else:
        fields = {k: v for k, v in e.items() if k not in ("v", "type", "emit_ts", "frame_ts")}
        print(f"  {kind:<16} {json.dumps(fields)}", flush=True)
