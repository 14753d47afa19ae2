#!/usr/bin/env python3
"""Writes fixtures/compare/: deliberately broken conversions of models transformers saved, for
`moeckpt compare` (issue 19). Each case is a directory with the broken checkpoint; CASES.json
names the mistake compare must report for it. The originals are fixtures/models/layouts/hf (a tiny
Mixtral saved by transformers 5.23.0) and fixtures/models/families/qwen3_moe.

    python scripts/make_compare_fixtures.py      # numpy, safetensors (scripts/requirements-fixtures.txt)

The right conversions are the layouts of fixtures/models/layouts (transformers' fused save,
gguf-py's names, mlx-lm's sanitize), which compare must find equivalent. Deterministic.
"""
import json, shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
MIXTRAL = ROOT / "fixtures/models/layouts/hf"
QWEN3 = ROOT / "fixtures/models/families/qwen3_moe"
OUT = ROOT / "fixtures/compare"


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute`: half-split rotary rows to interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(case: str, source: Path, tensors: dict, config: dict) -> None:
    target = OUT / case
    target.mkdir(parents=True)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    mixtral, mixtral_config = load_file(str(MIXTRAL / "model.safetensors")), json.loads((MIXTRAL / "config.json").read_text())
    layers, experts = mixtral_config["num_hidden_layers"], mixtral_config["num_local_experts"]
    cases = {}

    broken = dict(mixtral)  # w1 (gate) and w3 (up) exchanged in every expert
    for l in range(layers):
        for e in range(experts):
            p = f"model.layers.{l}.block_sparse_moe.experts.{e}."
            broken[p + "w1.weight"], broken[p + "w3.weight"] = mixtral[p + "w3.weight"], mixtral[p + "w1.weight"]
    write("gate-up-swapped", MIXTRAL, broken, mixtral_config)
    cases["gate-up-swapped"] = {"original": "models/layouts/hf", "mistake": "gate and up projections swapped"}

    broken = dict(mixtral)  # every expert stored [in, out], as a framework with [in, out] kernels keeps them
    for l in range(layers):
        for e in range(experts):
            for w in ("w1", "w2", "w3"):
                name = f"model.layers.{l}.block_sparse_moe.experts.{e}.{w}.weight"
                broken[name] = np.ascontiguousarray(mixtral[name].T)
    write("experts-transposed", MIXTRAL, broken, mixtral_config)
    cases["experts-transposed"] = {"original": "models/layouts/hf", "mistake": "transposed"}

    broken = dict(mixtral)  # the permutation applied once, left in HF names
    for l in range(layers):
        p = f"model.layers.{l}.self_attn."
        broken[p + "q_proj.weight"] = permute(mixtral[p + "q_proj.weight"], mixtral_config["num_attention_heads"])
        broken[p + "k_proj.weight"] = permute(mixtral[p + "k_proj.weight"], mixtral_config["num_key_value_heads"])
    write("qk-permuted-once", MIXTRAL, broken, mixtral_config)
    cases["qk-permuted-once"] = {"original": "models/layouts/hf", "mistake": "query/key rows in the other rotary order"}

    broken = dict(mixtral)  # one expert's gate rows shuffled
    rows = np.random.default_rng(0).permutation(mixtral["model.layers.0.block_sparse_moe.experts.1.w1.weight"].shape[0])
    broken["model.layers.0.block_sparse_moe.experts.1.w1.weight"] = mixtral["model.layers.0.block_sparse_moe.experts.1.w1.weight"][rows]
    write("expert-rows-shuffled", MIXTRAL, broken, mixtral_config)
    cases["expert-rows-shuffled"] = {"original": "models/layouts/hf", "mistake": "rows of an expert in another order"}

    broken = dict(mixtral)  # the router's rows (one per expert) exchanged, the experts left as they were
    router = "model.layers.0.block_sparse_moe.gate.weight"
    broken[router] = mixtral[router][[1, 0, 2, 3]]
    write("router-rows-reordered", MIXTRAL, broken, mixtral_config)
    cases["router-rows-reordered"] = {"original": "models/layouts/hf", "mistake": "router rows in another order"}

    broken = dict(mixtral)  # experts 0 and 2 of layer 1 exchanged, the router left as it was
    for w in ("w1", "w2", "w3"):
        a, b = (f"model.layers.1.block_sparse_moe.experts.{e}.{w}.weight" for e in (0, 2))
        broken[a], broken[b] = mixtral[b], mixtral[a]
    write("experts-reordered", MIXTRAL, broken, mixtral_config)
    cases["experts-reordered"] = {"original": "models/layouts/hf", "mistake": "experts in another order"}

    qwen3, qwen3_config = load_file(str(QWEN3 / "model.safetensors")), json.loads((QWEN3 / "config.json").read_text())
    # The GGUF converter's permutation applied twice, left in HF names. On Qwen3-MoE's head_dim 12:
    # on the Mixtral's head_dim 4 the permutation is its own inverse, and twice changes nothing.
    broken = dict(qwen3)
    for l in range(qwen3_config["num_hidden_layers"]):
        p = f"model.layers.{l}.self_attn."
        for name, heads in (("q_proj", qwen3_config["num_attention_heads"]), ("k_proj", qwen3_config["num_key_value_heads"])):
            broken[p + name + ".weight"] = permute(permute(qwen3[p + name + ".weight"], heads), heads)
    write("qk-permuted-twice", QWEN3, broken, qwen3_config)
    cases["qk-permuted-twice"] = {"original": "models/families/qwen3_moe", "mistake": "query/key rows permuted for rotary twice"}

    assert qwen3_config["norm_topk_prob"] is True
    dropped = {k: v for k, v in qwen3_config.items() if k != "norm_topk_prob"}  # Qwen3MoeConfig's default: false
    write("norm-topk-prob-dropped", QWEN3, qwen3, dropped)
    cases["norm-topk-prob-dropped"] = {"original": "models/families/qwen3_moe", "description": "norm_topk_prob"}

    (OUT / "CASES.json").write_text(json.dumps(cases, indent=2, sort_keys=True) + "\n")
    (OUT / "README.md").write_text(
        "# Broken conversions for `moeckpt compare`\n\n"
        "Written by `scripts/make_compare_fixtures.py` from models transformers 5.23.0 saved\n"
        "(`../models/layouts/hf`, a tiny Mixtral; `../models/families/qwen3_moe`), with numpy: each\n"
        "directory holds one deliberate mistake, and `CASES.json` names the original and what compare\n"
        "must report (`mistake`, or the `description` key that differs).\n\n"
        + "".join(f"- `{name}`: {case.get('mistake') or case.get('description') + ' removed from config.json'}\n"
                  for name, case in sorted(cases.items())))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
