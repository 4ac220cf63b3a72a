"""Stage 4 (design §2): LM pretraining on the task mixture.

Audio continuation, ASR, TTS, interleaved text/audio and text-only QA, weighted by `Mixture`.
Starts from random weights of a preset (or from `init`), and trains the text tokenizer from the
corpus texts when there is none yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aqaa.data.shards import shard_tokenizer
from aqaa.lm.audio_init import init_audio_embeddings
from aqaa.lm.data import Mixture, PretrainSource, iter_records, load_items
from aqaa.lm.format import FormatConfig
from aqaa.lm.input_noise import InputNoise
from aqaa.lm.model import build_model, check_audio_tokenizer, load_checkpoint
from aqaa.lm.vocab import DEFAULT_TEXT_VOCAB, Vocab, shard_texts, train_vocab
from aqaa.tokenizer.dual import DualCodebookTokenizer
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
from aqaa.train.stage import check_fresh, stage_dir


def _pretrain_loop() -> LoopConfig:
    return LoopConfig(lr=1e-3, warmup_steps=100, audio_embedding_lr_mult=2.0)


@dataclass
class PretrainConfig:
    data: str
    out: str
    preset: str = "base"
    #: Start from this checkpoint (weights and tokenizer) instead of random weights.
    init: str | None = None
    text_vocab_size: int = DEFAULT_TEXT_VOCAB
    #: The audio embeddings start from the code geometry of `audio_tokenizer`
    #: (`aqaa.lm.audio_init`): for a fresh model, or for an `init` checkpoint that read another
    #: tokenizer's codes (its text knowledge is kept). Ignored on resume.
    audio_init: bool = False
    #: Tokenizer directory for `audio_init` (None: the shipped default); it must be the one that
    #: wrote the token shards.
    audio_tokenizer: str | None = None
    max_len: int = 768
    text_loss_weight: float = 1.0
    audio_loss_weight: float = 1.0
    #: Weight of the spelling CTC on ASR examples (`aqaa.lm.spelling`); 0 turns it off.
    ctc_weight: float = 0.0
    #: Weight of guided attention on ASR examples (`aqaa.lm.guide`); 0 turns it off.
    guide_weight: float = 0.0
    #: Layers whose first `guide_heads` heads are guided (empty: the upper half of the stack).
    guide_layers: list[int] = field(default_factory=list)
    guide_heads: int = 1
    #: Width of the Gaussian around the expected audio position, as a fraction of the clip.
    guide_width: float = 0.15
    #: Weight of the speaking guide on TTS and interleaved examples: the audio queries read the
    #: text being said (`aqaa.lm.guide`, same heads and width); 0 turns it off.
    speech_guide_weight: float = 0.0
    #: Chance that each context audio code (the ASR input, the questions) is swapped for a near
    #: code while training (`aqaa.lm.input_noise`); 0 is off.
    input_noise: float = 0.0
    #: Chance that each audio code of the answer is swapped for a near code *as an input* (the
    #: target stays true): robustness to the LM's own sampled codes; 0 is off.
    answer_noise: float = 0.0
    #: Tokenizer whose code geometry gives the near codes (None: the shipped one).
    noise_tokenizer: str | None = None
    #: Share α of each audio position's target taken from a frozen speech teacher's distribution
    #: (`aqaa.train.distill`): keeps how the model speaks while other tasks train; 0 is off.
    speech_distill: float = 0.0
    #: The teacher checkpoint (None: `init`, the model the run starts from).
    speech_teacher: str | None = None
    eval_examples: int = 64
    mixture: Mixture = field(default_factory=Mixture)
    format: FormatConfig = field(default_factory=FormatConfig)
    loop: LoopConfig = field(default_factory=_pretrain_loop)


def build_vocab(cfg: PretrainConfig) -> Vocab:
    """Train the BPE on the train shard's texts and the format's fixed strings."""
    texts = list(cfg.format.fixed_texts()) + list(shard_texts(iter_records(cfg.data, "train")))
    return train_vocab(texts, cfg.text_vocab_size)


def run_pretrain(
    cfg: PretrainConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    d = setup_dist()
    sdir = stage_dir(cfg.out, "pretrain")
    check_fresh(sdir, resume)
    tok_dir = sdir / "tokenizer"
    if resume:
        ck = latest_checkpoint(sdir)
        assert ck is not None
        model, vocab = load_checkpoint(ck)
    elif cfg.init:
        model, vocab = load_checkpoint(cfg.init)
    else:
        if d.main and not (tok_dir / "tokenizer.json").exists():
            build_vocab(cfg).save(tok_dir)
        d.barrier()
        vocab = Vocab.load(tok_dir)
        model = build_model(cfg.preset, vocab.size, seed=cfg.loop.seed)
    data_tokenizer = shard_tokenizer(cfg.data)
    if cfg.audio_init and not resume:
        tok = DualCodebookTokenizer.load(cfg.audio_tokenizer)
        if data_tokenizer not in (None, tok.fingerprint()):
            raise ValueError(
                f"--audio-tokenizer {tok.directory} is {tok.fingerprint()}, but {cfg.data} was "
                f"tokenized with {data_tokenizer}"
            )
        init_audio_embeddings(model, vocab.audio_base, tok, seed=cfg.loop.seed)
        model.config.audio_tokenizer = tok.fingerprint()
    check_audio_tokenizer(model, data_tokenizer, cfg.data)
    train_items = load_items(cfg.data, "train")
    try:
        valid_items = load_items(cfg.data, "valid")
    except (FileNotFoundError, ValueError):
        valid_items = []
    src = PretrainSource(train_items, vocab, cfg.format, cfg.max_len, cfg.mixture)
    eval_src = (
        PretrainSource(valid_items, vocab, cfg.format, cfg.max_len, cfg.mixture)
        if valid_items
        else None
    )
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
        guide_layers=cfg.guide_layers,
        guide_heads=cfg.guide_heads,
        guide_width=cfg.guide_width,
        speech_guide_weight=cfg.speech_guide_weight,
        input_noise=InputNoise.for_run(cfg, vocab.audio_base, data_tokenizer),
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
