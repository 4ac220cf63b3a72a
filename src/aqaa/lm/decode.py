"""A lean KV-cached decode loop for the Llama backbone, with the response grammar enforced.

Decode on a CPU is bound by per-step overhead, not FLOPs (design §7). `LeanDecoder` reads the
weights of a `LlamaForCausalLM` once (fusing q/k/v and gate/up into one matrix each), keeps a
preallocated KV cache, and runs one token per step with a handful of tensor ops per layer. It
computes the same function as the HF model (tested against its logits).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class _Layer:
    ln1: torch.Tensor
    qkv: torch.Tensor
    o: torch.Tensor
    ln2: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


class LeanDecoder:
    """Batch-1 incremental decoding with a static KV cache (fp32 or bf16 weights)."""

    def __init__(
        self, model: torch.nn.Module, max_len: int = 2048, dtype: torch.dtype = torch.float32
    ) -> None:
        cfg = model.config
        self.dtype = dtype
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.max_len = max_len
        inner = model.model

        def w(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dtype).contiguous()

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
            h = self._norm(x, L.ln1).to(self.dtype)
            qkv = F.linear(h, L.qkv).float()
            q = qkv[:, : hq * hd].view(t, hq, hd).transpose(0, 1)
            k = qkv[:, hq * hd : (hq + hk) * hd].view(t, hk, hd).transpose(0, 1)
            v = qkv[:, (hq + hk) * hd :].view(t, hk, hd).transpose(0, 1)
            q, k = self._rot(q, cos, sin), self._rot(k, cos, sin)
            self.k[i, :, p0 : p0 + t] = k.to(self.dtype)
            self.v[i, :, p0 : p0 + t] = v.to(self.dtype)
            kk = self.k[i, :, : p0 + t].to(q.dtype)
            vv = self.v[i, :, : p0 + t].to(q.dtype)
            if t == 1:
                att = F.scaled_dot_product_attention(q, kk, vv, enable_gqa=True)
            else:
                mask = torch.ones(t, p0 + t, dtype=torch.bool).tril(diagonal=p0)
                att = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, enable_gqa=True)
            att = att.transpose(0, 1).reshape(t, hq * hd).to(self.dtype)
            x = x + F.linear(att, L.o).float()
            h = self._norm(x, L.ln2).to(self.dtype)
            gu = F.linear(h, L.gate_up)
            g, u = gu.chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, L.down).float()
        self.pos = p0 + t
        h = self._norm(x[-1:], self.norm).to(self.dtype)
        return F.linear(h, self.head).float()[0]


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
