#!/usr/bin/env python3
"""Writes fixtures/mlx/: tiny MoE models of several families built with transformers (float32,
random, seeded; Mixtral's and Qwen3-MoE's kept in `sources/<family>/`), and each quantized by mlx-lm's own `convert` (affine at
several bit widths and group sizes, mxfp4, mxfp8, nvfp4, with each model's default
`quant_predicate`) into `<case>/`: model.safetensors, model.safetensors.index.json and
config.json exactly as mlx-lm writes them, and `expected.safetensors` with `input_ids` and the
logits mlx-lm's own forward pass computes on the quantized model (`load_model`; float32, so
moeckpt, computing on the same dequantized values, agrees within 1e-5); BITS.json holds mlx-lm's
`compute_bits_per_weight` of each.

    /work/venv-fix/bin/python scripts/make_mlx_quantized_fixtures.py
    # requirements-fixtures.txt, mlx[cpu]==0.32.4, mlx-lm==0.32.2

mlx-lm 0.32.2 reads configs as transformers 4 wrote them: the sources' config.json have
`rope_theta` at the top level (and Qwen3-MoE's `num_experts`) beside transformers 5's keys.
Deterministic.
"""
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from fixture_util import canonicalize_metadata_order

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures/mlx"
TOKENIZER = ROOT / "fixtures/tokenizers/byte-level"  # vocab 384, read by mlx-lm's convert
IDS = [[1, 17, 250, 3, 99, 42, 383, 7, 120, 64, 5, 300]]

COMMON = dict(vocab_size=384, hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=256, tie_word_embeddings=False)


def build(family: str):
    from transformers import (DeepseekV3Config, DeepseekV3ForCausalLM, MixtralConfig, MixtralForCausalLM,
                              OlmoeConfig, OlmoeForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM)
    torch.manual_seed({"mixtral": 1, "qwen3_moe": 2, "olmoe": 3, "deepseek_v3": 4}[family])
    if family == "mixtral":
        return MixtralForCausalLM(MixtralConfig(**COMMON, intermediate_size=128, num_local_experts=4, num_experts_per_tok=2))
    if family == "qwen3_moe":
        return Qwen3MoeForCausalLM(Qwen3MoeConfig(
            **COMMON, intermediate_size=256, moe_intermediate_size=128, num_experts=4, num_experts_per_tok=2, head_dim=32,
            norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[]))
    if family == "olmoe":
        return OlmoeForCausalLM(OlmoeConfig(**COMMON, intermediate_size=128, num_experts=4, num_experts_per_tok=2))
    if family == "deepseek_v3":
        # MLA: as many key/value heads as heads (transformers' eager attention needs it).
        return DeepseekV3ForCausalLM(DeepseekV3Config(
            **dict(COMMON, num_key_value_heads=4), intermediate_size=256, moe_intermediate_size=128, n_routed_experts=4, num_experts_per_tok=2,
            n_shared_experts=1, n_group=2, topk_group=1, first_k_dense_replace=1, q_lora_rank=64, kv_lora_rank=64,
            qk_nope_head_dim=32, qk_rope_head_dim=32, v_head_dim=32, routed_scaling_factor=2.0, rope_interleave=True))
    raise ValueError(family)


def write_source(family: str, directory: Path) -> Path:
    target = directory / family
    model = build(family).eval()
    model.save_pretrained(target)
    (target / "generation_config.json").unlink(missing_ok=True)
    config = json.loads((target / "config.json").read_text())
    config["rope_theta"] = config["rope_parameters"]["rope_theta"]
    if family == "qwen3_moe":
        config["num_experts"] = config["num_local_experts"] if "num_local_experts" in config else 4
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return target


def transformers_logits(source: Path) -> np.ndarray:
    """transformers' float32 logits of the source model (eager attention and experts)."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.config._experts_implementation = "eager"
    with torch.no_grad():
        return model(torch.tensor(IDS)).logits.float().numpy()


def quantize(source: Path, case: str, mode: str, bits: int, group: int) -> None:
    """mlx-lm's convert, then its forward on the result; and transformers' float32 logits of the
    source (`float32/expected.safetensors`) with atol 1.5 x mlx-lm's own error against them."""
    import mlx.core as mx
    from mlx_lm import convert
    from mlx_lm.utils import compute_bits_per_weight, load_model
    target = OUT / case
    with tempfile.TemporaryDirectory() as tmp:
        hub, out = Path(tmp) / "hub", Path(tmp) / "mlx"
        shutil.copytree(source, hub)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKENIZER / name, hub / name)
        convert(hf_path=str(hub), mlx_path=str(out), quantize=True, q_bits=bits, q_group_size=group, q_mode=mode)
        target.mkdir(parents=True)
        for f in sorted(out.iterdir()):
            if f.suffix == ".safetensors" or f.name in ("config.json", "model.safetensors.index.json"):
                shutil.copy(f, target / f.name)
    model, _ = load_model(target)
    BITS[case] = round(compute_bits_per_weight(model), 6)
    logits = model(mx.array(IDS))
    mx.eval(logits)
    save_file({"input_ids": np.array(IDS, dtype=np.int64), "logits": np.array(logits.astype(mx.float32))},
              str(target / "expected.safetensors"),
              metadata={"format": "pt", "reference": f"mlx-lm 0.32.2 load_model + forward (mlx 0.32.4, CPU), {mode} {bits} bits, "
                        f"groups of {group}", "atol": "1e-5", "rtol": "0"})
    canonicalize_metadata_order(target / "expected.safetensors")
    reference = transformers_logits(source)
    error = float(np.abs(np.array(logits.astype(mx.float32)) - reference).max())
    (target / "float32").mkdir()
    save_file({"input_ids": np.array(IDS, dtype=np.int64), "logits": reference}, str(target / "float32/expected.safetensors"),
              metadata={"format": "pt", "reference": "transformers 5.23.0 on the float32 source, eager attention and experts",
                        "quantization_error": f"mlx-lm on the quantized model: max |logits - float32| {error:.3g}",
                        "atol": f"{1.5 * error:.3g}", "rtol": "0"})
    canonicalize_metadata_order(target / "float32/expected.safetensors")
    print("wrote", case)


CASES = [
    ("mixtral", "affine", 4, 64), ("mixtral", "affine", 3, 32), ("mixtral", "affine", 8, 128), ("mixtral", "nvfp4", 4, 16),
    ("qwen3_moe", "affine", 4, 64), ("qwen3_moe", "affine", 6, 32), ("qwen3_moe", "mxfp4", 4, 32),
    ("qwen3_moe", "mxfp8", 8, 32), ("olmoe", "affine", 2, 64), ("olmoe", "affine", 5, 128),
    ("deepseek_v3", "affine", 4, 64),
]


KEPT = ("mixtral", "qwen3_moe")
BITS: dict[str, float] = {}  # mlx-lm's compute_bits_per_weight of each case


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        # Kept: the sources the writer's tests quantize (the others only feed mlx-lm).
        sources = {family: write_source(family, OUT / "sources" if family in KEPT else Path(tmp))
                   for family in sorted({c[0] for c in CASES})}
        for family, mode, bits, group in CASES:
            case = f"{family}-{mode}-{bits}-{group}" if mode == "affine" else f"{family}-{mode}"
            quantize(sources[family], case, mode, bits, group)
            names.append(case)
    (OUT / "BITS.json").write_text(json.dumps(BITS, indent=1, sort_keys=True) + "\n")
    (OUT / "README.md").write_text(
        "# MLX-quantized checkpoints\n\n"
        "Written by `scripts/make_mlx_quantized_fixtures.py`: tiny float32 models transformers 5.23.0\n"
        "built (random, seeded; the Mixtral and the Qwen3-MoE kept in `sources/`), each quantized by\n"
        "mlx-lm 0.32.2's own `convert`\n"
        "(mlx 0.32.4, CPU) with the model's default `quant_predicate` (Qwen3-MoE's router at 8 bits).\n"
        "`expected.safetensors` holds `input_ids` and the logits of mlx-lm's own forward pass on the\n"
        "quantized model (`atol` 1e-5); `float32/expected.safetensors` transformers' logits of the float32\n"
        "source, `atol` 1.5 x mlx-lm's own error against them; `BITS.json` mlx-lm's\n"
        "`compute_bits_per_weight` of each.\n\n"
        + "".join(f"- `{n}`\n" for n in names))


if __name__ == "__main__":
    main()
