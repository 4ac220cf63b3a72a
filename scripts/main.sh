#!/usr/bin/env bash
# The main job, for now: build a small spoken-dialogue corpus and print its statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${1:-corpus/demo}
aqaa data build --out "$OUT" --hours 0.05 --seed 0 --workers 2
aqaa data stats "$OUT"
