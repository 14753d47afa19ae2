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
Missing / unexpected / shape-mismatched weights reported by from_pretrained
(which transformers only warns about, randomly initialising what is missing)
also make the check fail.

Both must be directories with a config.json whose model_type is "mixtral"
(checked first: without config.json from_pretrained would build the default,
Mixtral-8x7B-sized config and run out of memory).

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


def check_dir(path: str) -> str | None:
    """Refuse anything that is not a transformers Mixtral directory.  Without a
    config.json, from_pretrained silently falls back to the default
    MixtralConfig (Mixtral-8x7B sized, ~46B parameters) and tries to allocate
    it (the process gets OOM-killed)."""
    import json
    import os
    cfg = os.path.join(path, "config.json")
    if not os.path.isdir(path):
        return f"{path}: not a directory"
    if not os.path.isfile(cfg):
        return f"{path}: no config.json (not a transformers checkpoint directory)"
    try:
        mt = json.load(open(cfg)).get("model_type")
    except (OSError, ValueError) as e:
        return f"{cfg}: unreadable ({e})"
    if mt != "mixtral":
        return f"{cfg}: model_type {mt!r}, expected 'mixtral'"
    return None


def load(path: str):
    import transformers
    from transformers import MixtralForCausalLM
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model, info = MixtralForCausalLM.from_pretrained(path, attn_implementation="eager", torch_dtype=torch.float32,
                                                     output_loading_info=True)
    model.eval()
    # transformers only warns about these (missing weights are randomly
    # initialised), so report them here
    problems = [f"{k}: {sorted(info.get(k) or [])[:4]}{' ...' if len(info.get(k) or []) > 4 else ''}"
                for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)]
    return model, problems


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
    for p in (args.original, args.converted):
        err = check_dir(p)
        if err:
            print(f"usage error: {err}", file=sys.stderr)
            return 2
    try:
        a, pa = load(args.original)
        b, pb = load(args.converted)
    except Exception as e:  # noqa: BLE001
        print(f"load error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    bad = False
    for p, probs in ((args.original, pa), (args.converted, pb)):
        for msg in probs:
            print(f"LOAD PROBLEM in {p}: {msg}")
            bad = True
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
    return 0 if same and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
