"""Audio-masked DPO (loss by hand, invariance to audio logits), corrupted pairs, and merging."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from aqaa.data.schema import parse_tagged
from aqaa.lm.data import DPOSource, TokenItem, restyle, synthetic_records
from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT, KIND_TEXT, FormatConfig, parse_response
from aqaa.lm.model import build_model, load_checkpoint, save_checkpoint
from aqaa.lm.vocab import Vocab, train_vocab
from aqaa.train.dpo import DPOTask, dpo_loss_from_logits
from aqaa.train.merge import merge_checkpoints
from aqaa.train.objectives import TargetLogprobs, pad_batch

pytestmark = pytest.mark.usefixtures("one_thread")


C, T, A = KIND_CONTEXT, KIND_TEXT, KIND_AUDIO


def toy() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two pairs (rows: chosen0, chosen1, rejected0, rejected1), length 6, vocabulary 5."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (4, 6), generator=g)
    kinds = torch.tensor(
        [
            [C, C, T, A, A, T],
            [C, T, T, A, T, T],
            [C, C, A, T, A, T],
            [C, T, A, A, A, T],
        ]
    )
    pol = torch.randn(4, 5, 5, generator=g)
    ref = torch.randn(4, 5, 5, generator=g)
    return ids, kinds, pol, ref


def hand_dpo(ids, kinds, pol, ref, beta: float) -> float:
    """The DPO loss written out with floats: text positions only."""

    def seq(logits, r: int) -> float:
        total = 0.0
        for j in range(ids.shape[1] - 1):
            if int(kinds[r, j + 1]) != T:
                continue
            row = [float(x) for x in logits[r, j]]
            lse = math.log(sum(math.exp(x) for x in row))
            total += row[int(ids[r, j + 1])] - lse
        return total

    losses = []
    for i in range(2):
        margin = (seq(pol, i) - seq(ref, i)) - (seq(pol, i + 2) - seq(ref, i + 2))
        losses.append(-math.log(1 / (1 + math.exp(-beta * margin))))
    return sum(losses) / 2


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_hand_computation(beta: float) -> None:
    ids, kinds, pol, ref = toy()
    got = float(dpo_loss_from_logits(pol, ref, ids, kinds, beta))
    assert got == pytest.approx(hand_dpo(ids, kinds, pol, ref, beta), rel=1e-6)


def test_dpo_loss_ignores_audio_logits() -> None:
    ids, kinds, pol, ref = toy()
    base = dpo_loss_from_logits(pol, ref, ids, kinds, 0.1)
    audio_pos = (kinds[:, 1:] == A)[..., None].expand_as(pol)
    noise = torch.randn(pol.shape, generator=torch.Generator().manual_seed(1)) * 10
    pol2, ref2 = pol + noise * audio_pos, ref - noise * audio_pos
    assert torch.equal(dpo_loss_from_logits(pol2, ref2, ids, kinds, 0.1), base)
    # … but not when audio is scored (the variant the paper rejected) or text logits change
    assert not torch.equal(
        dpo_loss_from_logits(pol2, ref, ids, kinds, 0.1, mask_audio=False),
        dpo_loss_from_logits(pol, ref, ids, kinds, 0.1, mask_audio=False),
    )
    text_pos = (kinds[:, 1:] == T)[..., None].expand_as(pol)
    assert not torch.equal(dpo_loss_from_logits(pol + noise * text_pos, ref, ids, kinds, 0.1), base)


@pytest.fixture(scope="module")
def setup() -> tuple[Vocab, list[TokenItem]]:
    recs = synthetic_records(30, seed=5)
    texts = (
        FormatConfig().fixed_texts()
        + [t["answer_text"] for r in recs for t in r["turns"]]
        + [t["human_text"] for r in recs for t in r["turns"]]
    )
    return train_vocab(texts, 350), [TokenItem.from_dict(r) for r in recs]


def test_corrupted_pairs(setup) -> None:
    vocab, items = setup
    src = DPOSource(items, vocab, FormatConfig(), 2048)
    kinds = set()
    for i in range(40):
        p = src.pair(0, i)
        kinds.add(p.kind)
        a, b = parse_response(vocab, p.chosen.ids), parse_response(vocab, p.rejected.ids)
        prompt_c = [x for x, k in zip(p.chosen.ids, p.chosen.kinds, strict=True) if k == C]
        prompt_r = [x for x, k in zip(p.rejected.ids, p.rejected.kinds, strict=True) if k == C]
        assert prompt_c == prompt_r and prompt_c == p.chosen.ids[: len(prompt_c)]  # same prompt
        assert a.complete and b.complete and a.clips and b.clips
        assert a.text != b.text
        if p.kind == "style":
            assert [s.text for s in a.sentences] == [s.text for s in b.sentences]
            assert a.styles != b.styles
    assert kinds == {"style", "content"}
    rng = random.Random(0)
    assert [s.style for s in parse_tagged(restyle("(sad) It is raining.", rng) or "")] != ["sad"]
    assert restyle("Hello there.", rng).startswith("(")


def test_dpo_task_matches_formula_and_masks_audio(setup) -> None:
    vocab, items = setup
    src = DPOSource(items, vocab, FormatConfig(), 2048)
    policy = build_model("tiny", vocab.size, seed=1)
    reference = build_model("tiny", vocab.size, seed=2)
    task = DPOTask(src, reference, beta=0.2, seed=0)
    pairs = task.batch(0, 3)
    loss, stats = task.loss(TargetLogprobs(policy), pairs, denom=3.0)
    ids, kinds = pad_batch([p.chosen for p in pairs] + [p.rejected for p in pairs])
    with torch.no_grad():
        want = dpo_loss_from_logits(
            policy(ids[:, :-1]).logits, reference(ids[:, :-1]).logits, ids, kinds, 0.2
        )
    torch.testing.assert_close(loss.detach(), want, rtol=1e-5, atol=1e-6)
    assert stats["pairs"] == 3 and 0 <= stats["acc_sum"] <= 3
    loss.backward()  # gradients flow to the policy only
    assert policy.get_input_embeddings().weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in reference.parameters())


def test_merge_is_the_exact_weighted_average(tmp_path: Path) -> None:
    vocab = train_vocab(["hello world", "(sad) it is raining"] * 5, 300)
    paths = []
    for seed in (1, 2, 3):
        m = build_model("tiny", vocab.size, seed=seed)
        save_checkpoint(m, vocab, tmp_path / f"m{seed}")
        paths.append(tmp_path / f"m{seed}")
    out = merge_checkpoints(paths, [5, 5, 1], tmp_path / "merged")
    from safetensors.torch import load_file

    sds = [load_file(str(p / "model.safetensors")) for p in paths]
    merged = load_file(str(out / "model.safetensors"))
    assert merged.keys() == sds[0].keys()
    for k in merged:
        want = (
            (5 * sds[0][k].double() + 5 * sds[1][k].double() + 1 * sds[2][k].double()) / 11
        ).float()
        assert torch.equal(merged[k], want), k
    _model, v2 = load_checkpoint(out)  # a loadable checkpoint with the same tokenizer
    assert v2 == vocab
    with pytest.raises(ValueError):
        merge_checkpoints(paths, [1, 1], tmp_path / "bad")
    other = train_vocab(["something else entirely"] * 5, 290)
    save_checkpoint(build_model("tiny", other.size, seed=0), other, tmp_path / "other")
    with pytest.raises(ValueError):
        merge_checkpoints([paths[0], tmp_path / "other"], [1, 1], tmp_path / "bad")


def test_ship_writes_bf16_lm_and_fp16_vocoder_that_load_back(tmp_path) -> None:
    from safetensors import safe_open

    from aqaa.lm.data import synthetic_records
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.model import build_model, load_checkpoint, save_checkpoint
    from aqaa.lm.vocab import train_vocab
    from aqaa.train.ship import ship_lm, ship_vocoder
    from aqaa.vocoder.model import Vocoder, VocoderConfig

    recs = synthetic_records(4, seed=1, split="valid")
    texts = FormatConfig().fixed_texts() + [t["answer_text"] for r in recs for t in r["turns"]]
    vocab = train_vocab(texts, 300)
    model = build_model("tiny", vocab.size, seed=0)
    save_checkpoint(model, vocab, tmp_path / "ck")
    Vocoder(VocoderConfig.tiny()).save(tmp_path / "voc")
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "lm").mkdir()  # an older default is replaced
    (weights / "lm" / "stale.txt").write_text("old")
    lm_dir = ship_lm(tmp_path / "ck", weights, note="test")
    ship_vocoder(tmp_path / "voc", weights)
    assert not (lm_dir / "stale.txt").exists() and (lm_dir / "shipped.json").exists()
    with safe_open(str(lm_dir / "model.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.bfloat16 for k in f.keys())  # noqa: SIM118
    back, v2 = load_checkpoint(lm_dir)
    assert v2 == vocab
    for (n, a), b in zip(back.state_dict().items(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b.to(torch.bfloat16).float(), msg=n)
    with safe_open(str(weights / "vocoder" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}  # noqa: SIM118
    Vocoder.load(weights / "vocoder")


def test_assemble_model_writes_a_candidate_beside_the_defaults(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from aqaa.engine.engine import Engine
    from aqaa.train.ship import assemble_model

    _, vocab = load_checkpoint(tiny_model_dir / "lm")
    save_checkpoint(build_model("tiny", vocab.size, seed=5), vocab, tmp_path / "ck")
    out = assemble_model(tmp_path / "cand", lm=tmp_path / "ck", defaults=tiny_model_dir, note="c")
    # the new LM is in bf16, the other parts are the defaults' files, byte for byte
    assert json.loads((out / "lm" / "shipped.json").read_text())["note"] == "c"
    for part in ("tokenizer", "vocoder"):
        names = sorted(p.name for p in (tiny_model_dir / part).iterdir())
        assert sorted(p.name for p in (out / part).iterdir()) == names
        for n in names:
            assert (out / part / n).read_bytes() == (tiny_model_dir / part / n).read_bytes()
    assert Engine.load(out).vocab == vocab
    with pytest.raises(ValueError, match="default model's directory"):
        assemble_model(tiny_model_dir, lm=tmp_path / "ck", defaults=tiny_model_dir)


def test_dpo_audio_anchor_adds_the_chosen_audio_nll(setup) -> None:
    """With `audio_sft_weight`, the loss is DPO + w × mean audio NLL of each chosen answer; the
    DPO part and its statistics are those of plain DPO."""
    vocab, items = setup
    src = DPOSource(items, vocab, FormatConfig(), 2048)
    policy = build_model("tiny", vocab.size, seed=1)
    reference = build_model("tiny", vocab.size, seed=2)
    plain = DPOTask(src, reference, beta=0.2, seed=0)
    anchored = DPOTask(src, reference, beta=0.2, seed=0, audio_sft_weight=0.5)
    pairs = plain.batch(0, 3)
    base, base_stats = plain.loss(TargetLogprobs(policy), pairs, denom=3.0)
    loss, stats = anchored.loss(TargetLogprobs(policy), pairs, denom=3.0)
    ids, kinds = pad_batch([p.chosen for p in pairs] + [p.rejected for p in pairs])
    with torch.no_grad():
        lp = torch.log_softmax(policy(ids[:, :-1]).logits.float(), -1)
        lp = lp.gather(-1, ids[:, 1:, None])[..., 0]
    audio = kinds[:3, 1:] == A
    assert audio.sum(-1).min() > 0  # every chosen answer speaks
    nll = -(lp[:3] * audio).sum(-1) / audio.sum(-1)
    torch.testing.assert_close(
        loss.detach(), base.detach() + 0.5 * nll.mean(), rtol=1e-5, atol=1e-6
    )
    assert stats["audio_nll_sum"] == pytest.approx(float(nll.sum()), rel=1e-5)
    for k in ("dpo_sum", "acc_sum", "margin_sum"):
        assert stats[k] == pytest.approx(base_stats[k], rel=1e-5, abs=1e-6)
    assert "audio_nll" in anchored.summarize(stats) and "audio_nll" not in plain.summarize(stats)


def test_dpo_config_refuses_negative_weights() -> None:
    from aqaa.train.dpo import DPOConfig

    with pytest.raises(ValueError, match="sft weights must be >= 0"):
        DPOConfig(data="d", out="o", audio_sft_weight=-0.1)
