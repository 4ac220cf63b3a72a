"""The audio tokenizer's fingerprint follows its codes: shards, LM checkpoints, merge, ship, engine.

An LM that learnt one tokenizer's codes reads another's as noise, and nothing in the ids shows
it; these tests pin the errors that stop such a pair from training or shipping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from aqaa.data.shards import TOKENIZER_RECORD, shard_tokenizer
from aqaa.lm.data import write_synthetic_corpus
from aqaa.lm.model import audio_tokenizer_of, check_audio_tokenizer, load_checkpoint
from aqaa.tokenizer.dual import DEFAULT_DIR, DualCodebookTokenizer
from aqaa.train.loop import LoopConfig
from aqaa.train.pretrain import PretrainConfig, run_pretrain


@pytest.fixture(scope="module")
def shipped() -> DualCodebookTokenizer:
    return DualCodebookTokenizer.load()


def _record(corpus: Path, fingerprint: str) -> None:
    (corpus / "tokens" / TOKENIZER_RECORD).write_text(json.dumps({"fingerprint": fingerprint}))


def test_fingerprint_survives_save_and_load_and_changes_with_the_weights(
    shipped: DualCodebookTokenizer, tmp_path: Path
) -> None:
    fp = shipped.fingerprint()
    assert len(fp) == 12 and int(fp, 16) >= 0
    assert shipped.directory == DEFAULT_DIR
    copy = DualCodebookTokenizer.load(shipped.save(tmp_path / "copy"))
    assert copy.fingerprint() == fp and copy.directory == tmp_path / "copy"
    with torch.no_grad():
        copy.linguistic.centroids[3, 0] += 0.5
    assert copy.fingerprint() != fp


def test_shards_of_several_corpora_must_share_one_tokenizer(tmp_path: Path) -> None:
    a = write_synthetic_corpus(tmp_path / "a", n_train=2, n_valid=1)
    b = write_synthetic_corpus(tmp_path / "b", n_train=2, n_valid=1)
    assert shard_tokenizer(f"{a},{b}") is None  # shards from before the record
    _record(a, "aaaaaaaaaaaa")
    assert shard_tokenizer(f"{a},{b}") == "aaaaaaaaaaaa"
    _record(b, "bbbbbbbbbbbb")
    with pytest.raises(ValueError, match="different tokenizers"):
        shard_tokenizer(f"{a},{b}")


def test_checkpoints_carry_the_stamp_and_refuse_another_tokenizer(tmp_path: Path) -> None:
    from aqaa.lm.model import build_model, save_checkpoint
    from aqaa.lm.vocab import train_vocab
    from aqaa.train.merge import merge_checkpoints

    vocab = train_vocab(["hello world"] * 5, 300)
    model = build_model("tiny", vocab.size, seed=0)
    assert audio_tokenizer_of(model) is None
    check_audio_tokenizer(model, None, "nothing")  # unknown data: no stamp, no error
    check_audio_tokenizer(model, "aaaaaaaaaaaa", "corpus a")
    save_checkpoint(model, vocab, tmp_path / "a")
    back, _ = load_checkpoint(tmp_path / "a")
    assert audio_tokenizer_of(back) == "aaaaaaaaaaaa"
    check_audio_tokenizer(back, "aaaaaaaaaaaa", "corpus a")
    with pytest.raises(
        ValueError, match="tokenizer aaaaaaaaaaaa, but corpus b uses tokenizer bbbb"
    ):
        check_audio_tokenizer(back, "bbbbbbbbbbbb", "corpus b")
    other = build_model("tiny", vocab.size, seed=1)
    check_audio_tokenizer(other, "bbbbbbbbbbbb", "corpus b")
    save_checkpoint(other, vocab, tmp_path / "b")
    with pytest.raises(ValueError, match="different audio tokenizers"):
        merge_checkpoints([tmp_path / "a", tmp_path / "b"], [1, 1], tmp_path / "m")
    merged = merge_checkpoints([tmp_path / "a", tmp_path / "a"], [1, 1], tmp_path / "m")
    assert audio_tokenizer_of(load_checkpoint(merged)[0]) == "aaaaaaaaaaaa"


def _cfg(corpus: Path, out: Path, **kw: object) -> PretrainConfig:
    loop = LoopConfig(max_steps=1, batch_size=2, micro_batch=2, warmup_steps=1, log_every=1,
                      eval_every=0, ckpt_every=1, threads=1, seed=1, bf16=False)  # fmt: skip
    return PretrainConfig(data=str(corpus), out=str(out), preset="tiny", text_vocab_size=300,
                          max_len=512, eval_examples=2, loop=loop, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_pretrain_stamps_the_lm_and_moves_it_to_a_new_tokenizer_only_with_audio_init(
    shipped: DualCodebookTokenizer, tmp_path: Path
) -> None:
    corpus = write_synthetic_corpus(tmp_path / "c", n_train=4, n_valid=2)
    _record(corpus, "aaaaaaaaaaaa")
    first = run_pretrain(_cfg(corpus, tmp_path / "r1"), progress=False).final
    assert audio_tokenizer_of(load_checkpoint(first)[0]) == "aaaaaaaaaaaa"
    # the same data tokenized anew by the shipped tokenizer: continuing the LM is refused ...
    _record(corpus, shipped.fingerprint())
    with pytest.raises(ValueError, match="pretrain anew with"):
        run_pretrain(_cfg(corpus, tmp_path / "r2", init=str(first)), progress=False)
    # ... unless its audio embeddings start over from the new tokenizer's codes
    cfg = _cfg(corpus, tmp_path / "r3", init=str(first), audio_init=True)
    moved = run_pretrain(cfg, progress=False).final
    assert audio_tokenizer_of(load_checkpoint(moved)[0]) == shipped.fingerprint()
    # --audio-tokenizer must be the tokenizer that wrote the shards
    _record(corpus, "aaaaaaaaaaaa")
    with pytest.raises(ValueError, match="was tokenized with aaaaaaaaaaaa"):
        run_pretrain(_cfg(corpus, tmp_path / "r4", audio_init=True), progress=False)


def test_ship_and_engine_refuse_a_mismatched_pair(tiny_model_dir: Path, tmp_path: Path) -> None:
    from aqaa.engine.engine import Engine, EngineError
    from aqaa.train.ship import check_parts

    root = tmp_path / "model"
    shutil.copytree(tiny_model_dir, root)
    cfg_path = root / "lm" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["audio_tokenizer"] = "aaaaaaaaaaaa"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="the LM reads the audio codes of tokenizer aaaaaaaaaaaa"):
        check_parts(root / "lm", root / "tokenizer", root / "vocoder")
    with pytest.raises(EngineError, match="aaaaaaaaaaaa"):
        Engine.load(root)
    cfg["audio_tokenizer"] = DualCodebookTokenizer.load(root / "tokenizer").fingerprint()
    cfg_path.write_text(json.dumps(cfg))
    check_parts(root / "lm", root / "tokenizer", root / "vocoder")
    assert Engine.load(root).vocab.size > 5120
    # the vocoder's flow is stamped the same way (by `aqaa train vocoder` from the shards)
    from aqaa.vocoder.model import Vocoder

    voc = Vocoder.load(root / "vocoder")
    voc.audio_tokenizer = "bbbbbbbbbbbb"
    voc.save(root / "vocoder")
    assert Vocoder.load(root / "vocoder").audio_tokenizer == "bbbbbbbbbbbb"
    with pytest.raises(ValueError, match="vocoder reads the audio codes of tokenizer bbbb"):
        check_parts(root / "lm", root / "tokenizer", root / "vocoder")
    with pytest.raises(EngineError, match="retrain the vocoder's flow"):
        Engine.load(root)


def test_adopt_moves_parts_only_to_a_tokenizer_that_kept_their_codes(
    shipped: DualCodebookTokenizer, tmp_path: Path
) -> None:
    from aqaa.lm.model import build_model, save_checkpoint
    from aqaa.lm.vocab import train_vocab
    from aqaa.train.ship import adopt_tokenizer

    parent = shipped.fingerprint()
    assert "keeps_codes_of" not in shipped.cfg.to_json()  # old configs keep their fingerprint
    child = DualCodebookTokenizer.load(DEFAULT_DIR)
    with torch.no_grad():
        child.linguistic.encoder.proj.weight.mul_(1.01)  # a fine-tuned encoder
    child.cfg.keeps_codes_of = parent
    child.save(tmp_path / "child")
    loaded = DualCodebookTokenizer.load(tmp_path / "child")
    assert loaded.cfg.keeps_codes_of == parent and loaded.fingerprint() != parent
    vocab = train_vocab(["hello world"] * 5, 300)
    model = build_model("tiny", vocab.size, seed=0)
    check_audio_tokenizer(model, parent, "the parent")
    save_checkpoint(model, vocab, tmp_path / "lm")
    from aqaa.vocoder.model import Vocoder, VocoderConfig

    voc = Vocoder(VocoderConfig.tiny())
    voc.audio_tokenizer = "cccccccccccc"  # learnt another tokenizer's codes
    voc.save(tmp_path / "other_voc")
    with pytest.raises(ValueError, match="the vocoder reads the codes of tokenizer cccc"):
        adopt_tokenizer(
            tmp_path / "child", tmp_path / "no", tmp_path / "lm", tmp_path / "other_voc"
        )
    assert not (tmp_path / "no").exists()  # nothing written when a part does not fit
    voc.audio_tokenizer = parent
    voc.save(tmp_path / "voc")
    out = adopt_tokenizer(
        tmp_path / "child", tmp_path / "adopted", tmp_path / "lm", tmp_path / "voc"
    )
    assert Vocoder.load(out / "vocoder").audio_tokenizer == loaded.fingerprint()
    moved, _ = load_checkpoint(out / "lm")
    assert audio_tokenizer_of(moved) == loaded.fingerprint()
    sd_a, sd_b = model.state_dict(), moved.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)  # a re-stamped copy, nothing else
    # the parent itself keeps no other tokenizer's codes: an LM of the child cannot go back
    with pytest.raises(ValueError, match="keeps the codes of no other tokenizer"):
        adopt_tokenizer(DEFAULT_DIR, tmp_path / "back", lm=out / "lm")
    with pytest.raises(ValueError, match="give an LM and/or a vocoder"):
        adopt_tokenizer(tmp_path / "child", tmp_path / "x")
