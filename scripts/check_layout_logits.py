#!/usr/bin/env python3
"""Check that two Mixtral checkpoints produce identical logits.

    /work/venv/bin/python scripts/check_layout_logits.py ORIGINAL CONVERTED [--shape 2,12]

Both directories are loaded with
`MixtralForCausalLM.from_pretrained(dir, attn_implementation="eager",
torch_dtype=torch.float32)` (so anything transformers can read: classic
per-expert or fused names, single file or sharded, any stored float dtype
upcast to float32) and run on the same seeded `input_ids`
(`make_input_ids`, the ids stored in fixtures/models/tiny-mixtral/
reference.safetensors for the default shape).  The logits must be
bit-identical (`torch.equal`); the max abs difference is printed either way.

Exit status: 0 identical, 1 different (or different vocab sizes), 2 usage /
load error.
"""

from __future__ import annotations

import argparse
import sys

import torch

# input_ids generator: torch.randint on a dedicated CPU generator, so the ids
# do not depend on the global RNG state.  scripts/make_model_fixtures.py uses
# this same function for the reference.safetensors files.
INPUT_IDS_SEED = 1234


def make_input_ids(vocab_size: int, shape: tuple[int, ...], seed: int = INPUT_IDS_SEED) -> torch.Tensor:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randint(0, vocab_size, shape, generator=gen, dtype=torch.int64)


def load(path: str):
    import transformers
    from transformers import MixtralForCausalLM
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = MixtralForCausalLM.from_pretrained(path, attn_implementation="eager", torch_dtype=torch.float32)
    model.eval()
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("converted")
    ap.add_argument("--shape", default="2,12", help="input_ids shape BATCH,SEQ (default 2,12)")
    ap.add_argument("--seed", type=int, default=INPUT_IDS_SEED)
    args = ap.parse_args(argv)
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
        assert len(shape) == 2 and min(shape) > 0
    except (ValueError, AssertionError):
        print(f"bad --shape {args.shape!r}", file=sys.stderr)
        return 2
    try:
        a = load(args.original)
        b = load(args.converted)
    except Exception as e:  # noqa: BLE001
        print(f"load error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    va, vb = a.config.vocab_size, b.config.vocab_size
    if va != vb:
        print(f"DIFFERENT: vocab_size {va} != {vb}")
        return 1
    ids = make_input_ids(va, shape, args.seed)
    with torch.no_grad():
        la = a(input_ids=ids).logits
        lb = b(input_ids=ids).logits
    if la.shape != lb.shape:
        print(f"DIFFERENT: logits shapes {list(la.shape)} != {list(lb.shape)}")
        return 1
    diff = (la - lb).abs().max().item()
    same = torch.equal(la, lb)
    print(f"input_ids {list(ids.shape)} seed {args.seed}; logits {list(la.shape)} {la.dtype}; "
          f"max abs diff {diff:.9g}; {'IDENTICAL' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
