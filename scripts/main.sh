#!/usr/bin/env bash
# The main job: answer the bundled spoken question out loud with the default model.
#   bash scripts/main.sh [QUESTION.wav] [ANSWER.wav]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
Q=${1:-examples/question.wav}
OUT=${2:-answer.wav}
echo "question: $Q ($(python -c "import json;print(next(e['question'] for e in json.load(open('examples/questions.json')) if e['file']=='$(basename "$Q")'))" 2>/dev/null || echo 'your question'))"
aqaa answer "$Q" -o "$OUT"
echo "the spoken answer is in $OUT"
