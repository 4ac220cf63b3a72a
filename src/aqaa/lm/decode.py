"""A lean KV-cached decode loop for the Llama backbone, with the response grammar enforced.

Decode on a CPU is bound by per-step overhead, not FLOPs (design §7). `LeanDecoder` reads the
weights of a `LlamaForCausalLM` once (fusing q/k/v and gate/up into one matrix each), keeps a
preallocated KV cache, and runs one token per step with a handful of tensor ops per layer. It
computes the same function as the HF model (tested against its logits).

Batch-1 decode reads every weight once per token, so on a CPU without native bf16 it is bound by
memory traffic as much as by overhead: on the 2-core AVX2 EPYC, 33 fp32 matrix-vector products of
the `base` LM take ~6 of its ~12 ms per token. `weights="fp16"` stores the matrices as fp16
packed for fbgemm (`torch.ops.quantized.linear_dynamic_fp16`: fp16 storage, fp32 arithmetic; a
relative error ~2e-4) and `weights="int8"` as per-channel int8 (`linear_dynamic`, activations
quantized per call; ~1–5% error). Measured there on the same 33 products: fp32 5.9 ms, fp16
3.4–4.0 ms, int8 2.6–3.5 ms. Both need the fbgemm backend (x86); elsewhere they fall back to
dense fp32 with a warning.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from aqaa.lm.format import (
    ChatTurn,
    FormatConfig,
    Grammar,
    Mode,
    ParsedResponse,
    build_prompt,
    parse_response,
)
from aqaa.lm.vocab import EOT_ID, Vocab

log = logging.getLogger(__name__)

#: How the decoder stores its weight matrices: dense in the decoder's dtype, or packed for fbgemm.
WeightFormat = Literal["dense", "fp16", "int8"]
WEIGHT_FORMATS: tuple[str, ...] = ("dense", "fp16", "int8")


def packed_weights_supported() -> bool:
    """fbgemm (x86 with AVX2) runs the packed fp16/int8 linear kernels."""
    return "fbgemm" in torch.backends.quantized.supported_engines


class _Linear:
    """`x @ w.T` with `w` stored dense (fp32/bf16) or packed for fbgemm (fp16 or int8)."""

    def __init__(self, w: torch.Tensor, fmt: WeightFormat, dtype: torch.dtype) -> None:
        self.fmt, self.dtype = fmt, dtype
        w = w.detach().float().contiguous()
        if fmt == "dense":
            self.w = w.to(dtype).contiguous()
        elif fmt == "fp16":
            self.packed = torch.ops.quantized.linear_prepack_fp16(w, None)
        elif fmt == "int8":
            scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
            zero = torch.zeros(w.shape[0], dtype=torch.long)
            with warnings.catch_warnings():  # quantized tensors are deprecated; the kernel is not
                warnings.simplefilter("ignore", UserWarning)
                q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(q, None)
        else:
            raise ValueError(f"weight format must be one of {WEIGHT_FORMATS}, got {fmt!r}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 out, whatever the storage."""
        if self.fmt == "dense":
            return F.linear(x.to(self.dtype), self.w).float()
        if self.fmt == "fp16":
            return torch.ops.quantized.linear_dynamic_fp16(x.float(), self.packed)
        return torch.ops.quantized.linear_dynamic(x.float(), self.packed, reduce_range=True)


@dataclass
class _Layer:
    ln1: torch.Tensor
    qkv: _Linear
    o: _Linear
    ln2: torch.Tensor
    gate_up: _Linear
    down: _Linear


class LeanDecoder:
    """Batch-1 incremental decoding with a static KV cache.

    `dtype` is that of the KV cache and of dense weights (fp32, or bf16 where it is native);
    `weights` packs the matrices as fp16 or int8 for fbgemm instead (fp32 cache and arithmetic).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        max_len: int = 2048,
        dtype: torch.dtype = torch.float32,
        weights: WeightFormat = "dense",
    ) -> None:
        cfg = model.config
        if weights not in WEIGHT_FORMATS:
            raise ValueError(f"weight format must be one of {WEIGHT_FORMATS}, got {weights!r}")
        if weights != "dense" and not packed_weights_supported():
            log.warning("%s weights need fbgemm (x86); decoding with dense fp32", weights)
            weights, dtype = "dense", torch.float32
        if weights != "dense":
            dtype = torch.float32
        self.dtype = dtype
        self.weights = weights
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.max_len = max_len
        inner = model.model

        def w(t: torch.Tensor) -> _Linear:
            return _Linear(t, weights, dtype)

        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    ln1=layer.input_layernorm.weight.detach().float(),
                    qkv=w(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])),
                    o=w(a.o_proj.weight),
                    ln2=layer.post_attention_layernorm.weight.detach().float(),
                    gate_up=w(torch.cat([m.gate_proj.weight, m.up_proj.weight])),
                    down=w(m.down_proj.weight),
                )
            )
        self.norm = inner.norm.weight.detach().float()
        self.embed = inner.embed_tokens.weight.detach().float()
        self.head = w(model.lm_head.weight)
        theta = cfg.rope_parameters["rope_theta"]
        inv = 1.0 / (
            theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        )
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        shape = (len(self.layers), self.n_kv, max_len, self.head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x

    @staticmethod
    def _rot(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x.shape[-1] // 2
        rotated = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return x * cos + rotated * sin

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p0: int) -> torch.Tensor:
        """Causal grouped-query attention of `q` (hq, t, hd) over the cache (hk, p0 + t, hd).

        The g = hq / hk query heads of one KV head are stacked into one matrix, so a decode step
        is two small matmuls per layer; `F.scaled_dot_product_attention(enable_gqa=True)` takes
        the math path here and cost ~0.3 ms per layer (a quarter of the step)."""
        hq, t, hd = q.shape
        hk, n = k.shape[0], k.shape[1]
        g = hq // hk
        scores = torch.matmul(q.reshape(hk, g * t, hd), k.transpose(1, 2)) * hd**-0.5
        if t > 1:
            future = torch.ones(t, n, dtype=torch.bool).triu(diagonal=p0 + 1)
            scores = scores.view(hk, g, t, n).masked_fill(future, float("-inf")).view(hk, g * t, n)
        return torch.matmul(scores.softmax(-1), v).view(hq, t, hd)

    @torch.no_grad()
    def forward(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        """Feed `ids` after the cached ones; return the logits (fp32) of the last position."""
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        t = ids.numel()
        p0 = self.pos
        if p0 + t > self.max_len:
            raise ValueError(f"sequence longer than the decoder's max_len {self.max_len}")
        x = self.embed[ids]  # (t, d) fp32 residual stream
        cos, sin = self.cos[p0 : p0 + t], self.sin[p0 : p0 + t]
        hq, hk, hd = self.n_heads, self.n_kv, self.head_dim
        for i, L in enumerate(self.layers):
            qkv = L.qkv(self._norm(x, L.ln1))
            qk = self._rot(qkv[:, : (hq + hk) * hd].view(t, hq + hk, hd).transpose(0, 1), cos, sin)
            self.k[i, :, p0 : p0 + t] = qk[hq:].to(self.dtype)
            self.v[i, :, p0 : p0 + t] = qkv[:, (hq + hk) * hd :].view(t, hk, hd).transpose(0, 1)
            att = self._attend(
                qk[:hq], self.k[i, :, : p0 + t].float(), self.v[i, :, : p0 + t].float(), p0
            )
            x = x + L.o(att.transpose(0, 1).reshape(t, hq * hd))
            g, u = L.gate_up(self._norm(x, L.ln2)).chunk(2, dim=-1)
            x = x + L.down(F.silu(g) * u)
        self.pos = p0 + t
        return self.head(self._norm(x[-1:], self.norm))[0]


@dataclass
class DecodeResult:
    ids: list[int]
    seconds: float
    first_token_seconds: float
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        n = len(self.ids) - 1
        return n / max(self.seconds - self.first_token_seconds, 1e-9) if n > 0 else 0.0


def sample(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator) -> int:
    """Greedy for `temperature <= 0`, else top-k sampling."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k > 0:
        v, ix = logits.topk(min(top_k, int(torch.isfinite(logits).sum())))
        return int(ix[torch.multinomial(F.softmax(v, -1), 1, generator=gen)])
    return int(torch.multinomial(F.softmax(logits, -1), 1, generator=gen))


def generate(
    decoder: LeanDecoder,
    prompt: list[int],
    grammar: Grammar | None,
    mode: Mode = "speech",
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_k: int = 50,
    seed: int = 0,
    audio_temperature: float | None = None,
) -> DecodeResult:
    """Decode a response after `prompt` (which ends with `<|BOT|>assistant\\n`), stopping at
    `<|EOT|>`. With a `grammar`, every step is masked to the tokens the grammar allows, and
    `audio_temperature` (default: `temperature`) applies in its audio slots, so that speech can be
    sampled while the text stays greedy (the engine's default, `aqaa.engine.sampling`)."""
    gen = torch.Generator().manual_seed(seed)
    decoder.reset()
    state = grammar.start(mode) if grammar is not None else None
    t0 = time.perf_counter()
    logits = decoder.forward(prompt)
    out: list[int] = []
    first = 0.0
    for step in range(max_new_tokens):
        if state is not None:
            logits = logits.masked_fill(~state.allowed(), float("-inf"))
        audio = state is not None and audio_temperature is not None and not state.in_text
        tok = sample(logits, audio_temperature if audio else temperature, top_k, gen)
        if step == 0:
            first = time.perf_counter() - t0
        out.append(tok)
        if state is not None:
            state.advance(tok)
        if tok == EOT_ID or decoder.pos >= decoder.max_len:
            break
        logits = decoder.forward([tok])
    return DecodeResult(out, time.perf_counter() - t0, first)


def respond(
    decoder: LeanDecoder,
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    mode: Mode = "speech",
    cfg: FormatConfig | None = None,
    system: str | None = None,
    max_new_tokens: int = 1024,
    temperature: float = 0.0,
    top_k: int = 50,
    seed: int = 0,
    audio_temperature: float | None = None,
) -> tuple[ParsedResponse, DecodeResult]:
    """Answer `turns[-1]` (earlier turns are history) under the grammar; parse the response."""
    cfg = cfg or FormatConfig()
    prompt = build_prompt(vocab, turns, mode, cfg, system)
    room = decoder.max_len - len(prompt)
    if room < 2:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in {decoder.max_len}")
    res = generate(
        decoder,
        prompt,
        Grammar(vocab, cfg),
        mode,
        min(max_new_tokens, room),
        temperature,
        top_k,
        seed,
        audio_temperature,
    )
    return parse_response(vocab, res.ids), res
