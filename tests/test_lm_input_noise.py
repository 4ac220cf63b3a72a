"""`aqaa.lm.input_noise`: near-code swaps of the question's audio, never of a trained token."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT, KIND_TEXT
from aqaa.lm.input_noise import InputNoise, fsq_step, nearest_codes
from aqaa.tokenizer.ids import LINGUISTIC_CODES

LEVELS = (8, 8, 8, 8)
BASE = 100


def test_nearest_codes_on_a_line() -> None:
    c = torch.tensor([[0.0], [1.0], [2.5], [10.0]])
    assert nearest_codes(c, 1).squeeze(1).tolist() == [1, 0, 1, 2]
    assert nearest_codes(c, 2).tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    with pytest.raises(ValueError, match="k must be in"):
        nearest_codes(c, 4)


def test_fsq_step_moves_one_digit_by_one() -> None:
    codes = torch.arange(4096)
    moved = fsq_step(codes, LEVELS, torch.Generator().manual_seed(0))
    basis = torch.tensor([1, 8, 64, 512])
    before = (codes[:, None] // basis) % 8
    after = (moved[:, None] // basis) % 8
    diff = (after - before).abs()
    assert torch.equal(diff.sum(1), torch.ones(4096, dtype=torch.long))  # one digit, by one
    assert moved.min() >= 0 and moved.max() < 4096
    # the corners can only move inward
    corner = fsq_step(torch.zeros(50, dtype=torch.long), LEVELS, torch.Generator().manual_seed(1))
    assert set(corner.tolist()) <= {1, 8, 64, 512}


def _noise(p: float, seed: int = 0, answer_p: float = 0.0) -> InputNoise:
    # linguistic code n's neighbours are n+1 and n+2 (mod 1024): easy to check
    n = torch.arange(LINGUISTIC_CODES)
    neighbours = torch.stack([(n + 1) % LINGUISTIC_CODES, (n + 2) % LINGUISTIC_CODES], 1)
    return InputNoise(p, neighbours, LEVELS, BASE, seed, answer_p)


def _example(n: int = 3000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    codes = torch.randint(0, 5120, (n,), generator=g)
    ids = codes + BASE
    ids[:10] = torch.arange(10)  # text/special tokens of the prompt
    kinds = torch.full((n,), KIND_CONTEXT)
    kinds[n // 2 :: 2] = KIND_AUDIO  # trained answer audio
    kinds[n // 2 + 1 :: 2] = KIND_TEXT
    return ids, kinds


def test_only_context_audio_changes_to_near_codes() -> None:
    ids, kinds = _example()
    out = _noise(0.3).example(ids, kinds)
    changed = out != ids
    ctx_audio = (kinds == KIND_CONTEXT) & (ids >= BASE)
    assert not changed[~ctx_audio].any()  # prompt text and every trained token untouched
    share = changed[ctx_audio].float().mean().item()
    assert 0.27 < share < 0.33
    code, new = ids[changed] - BASE, out[changed] - BASE
    ling = code < LINGUISTIC_CODES
    assert ((new[ling] - code[ling]) % LINGUISTIC_CODES).unique().tolist() == [1, 2]
    assert (new[~ling] >= LINGUISTIC_CODES).all()  # a semantic code stays semantic
    sem_step = (new[~ling] - code[~ling]).abs()
    assert set(sem_step.unique().tolist()) <= {1, 8, 64, 512}


def test_answer_noise_swaps_the_answer_audio_only() -> None:
    ids, kinds = _example()
    out = _noise(0.0, answer_p=0.2).example(ids, kinds)
    changed = out != ids
    assert changed.any() and (kinds[changed] == KIND_AUDIO).all()
    answer_audio = (kinds == KIND_AUDIO) & (ids >= BASE)
    assert 0.17 < changed[answer_audio].float().mean().item() < 0.23


def test_noise_is_seeded_by_the_example() -> None:
    ids, kinds = _example(400)
    a, b = _noise(0.2).example(ids, kinds), _noise(0.2).example(ids, kinds)
    assert torch.equal(a, b)
    assert not torch.equal(a, _noise(0.2, seed=1).example(ids, kinds))
    # a row of a batch gets the noise it gets alone, whatever else is in the batch
    ids2, kinds2 = _example(400)
    ids2 = ids2.flip(0)
    batch = _noise(0.2).batch(torch.stack([ids, ids2]), torch.stack([kinds, kinds2]), [400, 400])
    assert torch.equal(batch[0], a)
    # ...and however long the batch's padding is
    padded = torch.cat([ids, torch.zeros(50, dtype=ids.dtype)])[None]
    pad_kinds = torch.cat([kinds, torch.zeros(50, dtype=kinds.dtype)])[None]
    out = _noise(0.2).batch(padded, pad_kinds, [400])
    assert torch.equal(out[0, :400], a) and not out[0, 400:].any()


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="not both 0"):
        _noise(0.0)
    with pytest.raises(ValueError, match="must be in"):
        _noise(0.1, answer_p=1.0)
    with pytest.raises(ValueError, match="FSQ levels"):
        InputNoise(0.1, _noise(0.1).neighbours, (8, 8, 8), BASE)


def test_shipped_tokenizer_neighbours_and_fingerprint_check() -> None:
    noise = InputNoise.from_tokenizer(None, 0.1, BASE, k=3)
    assert noise.neighbours.shape == (LINGUISTIC_CODES, 3) and noise.levels == LEVELS
    assert not (noise.neighbours == torch.arange(LINGUISTIC_CODES)[:, None]).any()
    with pytest.raises(ValueError, match="tokenized with 000000000000"):
        InputNoise.from_tokenizer(None, 0.1, BASE, data_tokenizer="000000000000")


def test_sft_with_input_noise_trains_and_records_it(tmp_path: Path) -> None:
    from aqaa.lm.data import write_synthetic_corpus
    from aqaa.train.sft import SFTConfig
    from aqaa.train.stage import load_config

    corpus = write_synthetic_corpus(tmp_path / "corpus", n_train=12, n_valid=2)
    fast = ["--max-steps", "2", "--batch-size", "2", "--micro-batch", "2", "--threads", "1",
            "--no-bf16", "--no-progress"]  # fmt: skip
    run = [str(a) for a in ("--data", corpus, "--out", tmp_path / "run")]
    r = CliRunner().invoke(app, ["train", "pretrain", *run, "--preset", "tiny", "--text-vocab",
                                 "300", "--max-len", "512", *fast])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", "sft", *run, "--input-noise", "1.5", *fast])
    assert r.exit_code == 2 and "--input-noise must be in [0, 1)" in r.output
    r = CliRunner().invoke(app, ["train", "sft", *run, "--input-noise", "0.2", "--answer-noise",
                                 "0.1", *fast])  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = load_config(SFTConfig, tmp_path / "run" / "sft1")
    assert (cfg.input_noise, cfg.answer_noise) == (0.2, 0.1)


def test_lm_task_swaps_while_training_only() -> None:
    from types import SimpleNamespace

    from torch import nn

    from aqaa.lm.format import Example
    from aqaa.train.objectives import LMTask

    class Recorder(nn.Module):
        """Stands in for `TargetLogprobs`: keeps the ids it was given."""

        def forward(self, ids, select, aux=None, targets=None):
            self.seen, self.targets = ids.clone(), targets
            return torch.zeros(int(select.sum()), requires_grad=True)

    ids, kinds = _example(300)
    ex = Example(ids.tolist(), kinds.tolist())
    src = SimpleNamespace(vocab=SimpleNamespace(audio_id=lambda n: BASE + n))
    task = LMTask(src, 0, input_noise=_noise(0.3))
    rec = Recorder()
    task.loss(rec.train(), [ex], 1.0)
    assert torch.equal(rec.seen[0], _noise(0.3).example(ids, kinds))
    assert torch.equal(rec.targets[0], ids)  # the targets stay true
    task.loss(rec.eval(), [ex], 1.0)  # held-out losses read the clean question
    assert torch.equal(rec.seen[0], ids) and rec.targets is None


def test_answer_noise_keeps_the_targets_true(tiny_model_dir: Path) -> None:
    """With noisy inputs the log-probs are still of the true next tokens."""
    from aqaa.lm.model import load_checkpoint
    from aqaa.train.objectives import TargetLogprobs

    model, vocab = load_checkpoint(tiny_model_dir / "lm")
    wrapped = TargetLogprobs(model).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab.audio_base, vocab.audio_base + 5120, (1, 40), generator=g)
    noisy = ids.clone()
    noisy[0, 10:20] = vocab.audio_base + 7
    select = torch.ones(1, 39, dtype=torch.bool)
    with torch.no_grad():
        clean, read = wrapped(ids, select), wrapped(noisy, select, targets=ids)
        logits = model(input_ids=noisy).logits[0, :-1].float().log_softmax(-1)
    want = logits.gather(1, ids[0, 1:, None]).squeeze(1)
    assert torch.allclose(read, want, atol=1e-4)
    assert torch.allclose(read[:10], clean[:10], atol=1e-4)  # before the swaps: the same
    assert not torch.allclose(read[10:], clean[10:], atol=1e-3)
