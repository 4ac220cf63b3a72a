#!/usr/bin/env bash
# The recipe of the shipped default model, as run on a 2-core CPU (see TRAINING.md for timings).
# Stages run in the background where they can overlap; every stage resumes with --resume.
#   bash scripts/train_default.sh [CORPUS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-corpus/c2}
R=${2:-runs}
aqaa data build --out "$C" --hours 6 --seed 1 --workers 2         # 5.2 h of audio, ~15 min
aqaa data tokenize "$C"                                           # shipped tokenizer, ~40 s
# vocoder: the two stages are independent (stage 2 trains on ground-truth mels): run both at once
aqaa train vocoder --data "$C" --out "$R/voc_flow" --flow-steps 8000 --mel-steps 0 --threads 1 &
aqaa train vocoder --data "$C" --out "$R/voc_mel" --flow-steps 0 --mel-steps 6000 --gan-start 1500 --threads 1 &
# LM: pretrain → SFT-1 → SFT-2 → DPO → merge 5:5:1
aqaa train pretrain --data "$C" --out "$R/lm1" --preset base --max-steps 800 --threads 1
aqaa train sft --stage 1 --data "$C" --out "$R/lm1" --max-steps 600 --threads 1
aqaa train sft --stage 2 --data "$C" --out "$R/lm1" --max-steps 150 --threads 1
aqaa train dpo --data "$C" --out "$R/lm1" --max-steps 100 --threads 1
aqaa train merge --out "$R/lm1"
wait
aqaa train vocoder-join --flow "$R/voc_flow/vocoder" --mel "$R/voc_mel/vocoder" --out "$R/voc_joined"
aqaa train ship --lm "$R/lm1/merged" --vocoder "$R/voc_joined"
