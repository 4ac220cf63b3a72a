"""Stages 5 and 6 (design §2): supervised fine-tuning.

- **SFT-1**: full-parameter; spoken question (with history) → text + audio answer, and a fraction
  → text-only answer. Starts from the pretrained checkpoint.
- **SFT-2**: a high-quality subset (by default the style-bearing categories and multi-turn
  dialogues), multi-style answers (several marked clips) drawn more often, plus some replay of
  everything. Starts from SFT-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aqaa.data.shards import shard_tokenizer
from aqaa.lm.data import SFTSource, load_items
from aqaa.lm.format import FormatConfig
from aqaa.lm.input_noise import InputNoise
from aqaa.lm.model import check_audio_tokenizer, load_checkpoint
from aqaa.lm.notes import mark_note_taker
from aqaa.train.distill import SpeechTeacher
from aqaa.train.loop import (
    LoopConfig,
    TrainResult,
    config_dict,
    latest_checkpoint,
    setup_dist,
    train,
)
from aqaa.train.objectives import LMTask
from aqaa.train.stage import check_fresh, final_checkpoint, stage_dir

#: SFT-2's default subset: where style and dialogue skills live.
SFT2_CATEGORIES: tuple[str, ...] = (
    "voice_instruction",
    "emotion",
    "roleplay",
    "voice_understanding",
    "creativity",
    "multi_turn",
)


def _sft_loop() -> LoopConfig:
    return LoopConfig(lr=3e-4, warmup_steps=50)


@dataclass
class SFTConfig:
    data: str
    out: str
    stage: int = 1
    #: Checkpoint to start from (default: `pretrain/final` for stage 1, `sft1/final` for stage 2).
    init: str | None = None
    max_len: int = 1024
    text_answer_fraction: float = 0.3
    #: Item categories to train on (None: all). Stage 2 defaults to `SFT2_CATEGORIES`.
    categories: tuple[str, ...] | None = None
    multi_style_boost: float = 1.0
    replay: float = 0.0
    #: Fraction of draws that replay the ASR task (keeps the reading learnt in pretraining)
    asr_replay: float = 0.0
    #: Fraction of draws that replay the text-only `generated_qa` task (keeps what the text
    #: channel knows)
    qa_replay: float = 0.0
    #: Spelling CTC and guided attention on those ASR draws (`aqaa.lm.spelling`, `aqaa.lm.guide`)
    ctc_weight: float = 0.0
    guide_weight: float = 0.0
    #: Guided attention from each spoken answer clip to the sentence it says (`aqaa.lm.guide`)
    speech_guide_weight: float = 0.0
    #: Share α of each audio position's target taken from a frozen speech teacher's distribution
    #: (`aqaa.train.distill`); 0 is off.
    speech_distill: float = 0.0
    #: The teacher checkpoint (None: the checkpoint the stage starts from).
    speech_teacher: str | None = None
    text_loss_weight: float = 1.0
    audio_loss_weight: float = 1.0
    #: Chance that each audio code of the context (the question) is swapped for a near code while
    #: training (`aqaa.lm.input_noise`): robustness to voices the tokenizer never heard; 0 is off.
    input_noise: float = 0.0
    #: Chance that each audio code of the answer is swapped for a near code *as an input* (the
    #: target stays true): robustness to the LM's own sampled codes; 0 is off.
    answer_noise: float = 0.0
    #: Tokenizer whose code geometry gives the near codes (None: the shipped one); it must be the
    #: one that wrote the shards.
    noise_tokenizer: str | None = None
    #: Weight of the text-twin alignment (`aqaa.lm.twin`): hidden states after hearing a question
    #: pulled toward those after reading it; 0 is off.
    twin_weight: float = 0.0
    #: Listening notes (`aqaa.lm.notes`): each spoken question is followed by its transcript,
    #: which the LM learns to write before it answers.
    notes: bool = False
    eval_examples: int = 64
    format: FormatConfig = field(default_factory=FormatConfig)
    loop: LoopConfig = field(default_factory=_sft_loop)

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"SFT stage must be 1 or 2, got {self.stage}")
        if not 0.0 <= self.asr_replay < 1.0:
            raise ValueError(f"--asr-replay must be in [0, 1), got {self.asr_replay}")
        if not 0.0 <= self.qa_replay < 1.0 - self.asr_replay:
            raise ValueError(
                f"--qa-replay must be ≥ 0 with --asr-replay + --qa-replay < 1, got {self.qa_replay}"
            )
        if not 0.0 <= self.input_noise < 1.0:
            raise ValueError(f"--input-noise must be in [0, 1), got {self.input_noise}")
        if not 0.0 <= self.answer_noise < 1.0:
            raise ValueError(f"--answer-noise must be in [0, 1), got {self.answer_noise}")
        if self.twin_weight < 0.0:
            raise ValueError(f"--twin-weight must be ≥ 0, got {self.twin_weight}")


def sft2_defaults(cfg: SFTConfig) -> SFTConfig:
    """Fill SFT-2's subset, boost and replay where the config left the SFT-1 defaults."""
    if cfg.stage == 2:
        if cfg.categories is None:
            cfg.categories = SFT2_CATEGORIES
        if cfg.multi_style_boost == 1.0:
            cfg.multi_style_boost = 3.0
        if cfg.replay == 0.0:
            cfg.replay = 0.2
    return cfg


def run_sft(
    cfg: SFTConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    d = setup_dist()
    name = f"sft{cfg.stage}"
    sdir = stage_dir(cfg.out, name)
    check_fresh(sdir, resume)
    if resume:
        ck = latest_checkpoint(sdir)
        assert ck is not None
    else:
        ck = cfg.init or final_checkpoint(cfg.out, "pretrain" if cfg.stage == 1 else "sft1")
        cfg.init = str(ck)
    model, vocab = load_checkpoint(ck)
    if cfg.notes:
        mark_note_taker(model)
    data_tokenizer = shard_tokenizer(cfg.data)
    check_audio_tokenizer(model, data_tokenizer, cfg.data)
    items = load_items(cfg.data, "train")
    src = SFTSource(
        items,
        vocab,
        cfg.format,
        cfg.max_len,
        cfg.text_answer_fraction,
        cfg.categories,
        cfg.multi_style_boost,
        cfg.replay,
        cfg.asr_replay,
        cfg.qa_replay,
        text_twins=cfg.twin_weight > 0,
        notes=cfg.notes,
    )
    try:
        valid = load_items(cfg.data, "valid")
        eval_src = SFTSource(valid, vocab, cfg.format, cfg.max_len, cfg.text_answer_fraction,
                             text_twins=cfg.twin_weight > 0, notes=cfg.notes)  # fmt: skip
    except (FileNotFoundError, ValueError):
        eval_src = None
    task = LMTask(
        src,
        cfg.loop.seed,
        cfg.text_loss_weight,
        cfg.audio_loss_weight,
        eval_src,
        cfg.eval_examples,
        d.device,
        ctc_weight=cfg.ctc_weight,
        guide_weight=cfg.guide_weight,
        speech_guide_weight=cfg.speech_guide_weight,
        input_noise=InputNoise.for_run(cfg, vocab.audio_base, data_tokenizer),
        twin_weight=cfg.twin_weight,
        teacher=SpeechTeacher.for_run(
            cfg.speech_distill, cfg.speech_teacher or cfg.init, vocab, d.device
        ),
    )
    return train(
        stage_dir=sdir,
        model=model,
        vocab=vocab,
        task=task,
        cfg=cfg.loop,
        config=config_dict(cfg),
        resume=resume,
        dist_ctx=d,
        progress=progress,
        stop_after=stop_after,
    )
