"""Is the vocoder's content gap a matter of data, of capacity, or of what the codes carry?

`aqaa eval vocoder --decompose` puts the resynthesis's lost words in the spectral envelope of the
flow's mel, which the token encoder's ``mu`` predicts. This trains a fresh
:class:`~aqaa.vocoder.tokens.TokenEncoder` of a given size on the prior loss alone (MSE between
``mu`` and the normalised mel, the shipped vocoder's statistics) on a tokenized corpus and prints
its train and validation loss, beside the shipped encoder's validation loss on the same batches:

* train ≪ valid: the encoder memorises its clips, so more assistant-voice audio would help;
* a bigger encoder lower on valid at equal steps: capacity helps;
* neither: the codes are the limit.

``--fraction 0.5`` trains on the first half of the clips: a point of the learning curve.
``--save DIR`` writes the shipped vocoder with the new encoder in its place (its flow was trained
on the shipped encoder's ``mu``, so this asks whether a better prior alone carries more words).

    python scripts/prior_capacity.py --data corpus/c4 --layers 3 --dim 192 --window 8

fp32 on purpose: on CPUs without native bf16 (AVX2 only) autocast is ~10× slower here.
Measured in session 25 (TRAINING.md).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from aqaa.train.vocoder import ClipSet, build_cache
from aqaa.vocoder.model import Vocoder
from aqaa.vocoder.tokens import FRAMES_PER_PAIR, TokenEncoder, TokenEncoderConfig


def prior_loss(enc: TokenEncoder, voc: Vocoder, b: dict) -> torch.Tensor:
    mu = enc(b["ling"], b["sem"], b["valid"]).float()
    x1 = voc.normalize(b["mel"])
    m = b["valid"].repeat_interleave(FRAMES_PER_PAIR, dim=1)[..., None].float()
    return ((mu - x1).square() * m).sum() / (m.sum() * x1.shape[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a corpus tokenized by the shipped tokenizer")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fraction", type=float, default=1.0, help="train on this share of the clips")
    ap.add_argument("--save", help="write a vocoder with this encoder in place of the shipped one")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    voc = Vocoder.load()
    cache = build_cache(args.data, voc.config.mel, progress=False)
    train, valid = ClipSet(cache, "train"), ClipSet(cache, "valid")
    if args.fraction < 1.0:  # a learning-curve point: the first clips only
        keep = max(1, round(args.fraction * len(train)))
        train.weights[keep:] = 0.0
        train.weights /= train.weights.sum()
    torch.manual_seed(0)
    cfg = TokenEncoderConfig(dim=args.dim, layers=args.layers, window=args.window)
    enc = TokenEncoder(cfg)
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(0)
    fixed = [valid.flow_batch(np.random.default_rng(100 + i), 16, 25) for i in range(4)]

    @torch.no_grad()
    def valid_loss(e: TokenEncoder) -> float:
        was = e.training
        e.eval()
        v = float(np.mean([float(prior_loss(e, voc, b)) for b in fixed]))
        e.train(was)
        return v

    params = sum(p.numel() for p in enc.parameters())
    print(f"encoder {args.layers}×{args.dim}, window {args.window}: {params:,} parameters; "
          f"shipped encoder valid prior {valid_loss(voc.encoder):.4f}", flush=True)  # fmt: skip
    t0, recent = time.time(), []
    for step in range(1, args.steps + 1):
        frac = step / args.steps
        lr = 1e-3 * min(1.0, step / 200) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = prior_loss(enc, voc, train.flow_batch(rng, 16, 25))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        recent.append(float(loss.detach()))
        if step % args.every == 0:
            print(f"step {step}: train {np.mean(recent):.4f}  valid {valid_loss(enc):.4f}  "
                  f"({(time.time() - t0) / step:.2f} s/step)", flush=True)  # fmt: skip
            recent = []
    if args.save:  # the shipped flow and mel vocoder reading this encoder's mu
        import copy

        config = copy.deepcopy(voc.config)
        config.tokens = cfg
        swapped = Vocoder(config)
        state = {k: v for k, v in voc.state_dict().items() if not k.startswith("encoder.")}
        state |= {f"encoder.{k}": v for k, v in enc.state_dict().items()}
        swapped.load_state_dict(state)
        swapped.audio_tokenizer = voc.audio_tokenizer
        print(f"wrote {swapped.save(args.save)}")


if __name__ == "__main__":
    main()
