#!/usr/bin/env python3
"""Write fixtures/gguf/tiny-mixtral/model.gguf: the tiny Mixtral fixture as llama.cpp's converter
(`convert_hf_to_gguf.py`, LlamaModel) writes it, built with the official `gguf` package's
GGUFWriter: tensor names from gguf-py's tensor map for `llama`, q/k rows permuted into llama.cpp's
rotary order (the converter's `LlamaModel.permute`), experts stacked per projection
(w1 -> ffn_gate_exps, w2 -> ffn_down_exps, w3 -> ffn_up_exps), F32, and the converter's `llama.*`
keys. The model's reference outputs (transformers') are copied beside it, so `moeckpt verify`
checks the whole chain from the GGUF file. The same model split into parts of at most 25,000
bytes of tensors goes to fixtures/gguf/tiny-mixtral-split/ (model-0000i-of-0000N.gguf).

    /work/venv-fix/bin/python scripts/make_gguf_fixtures.py     # gguf==0.19.0 (requirements-fixtures.txt)
"""
import json
import shutil
from pathlib import Path

import gguf
import numpy as np
from gguf.constants import MODEL_ARCH
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "fixtures" / "models" / "tiny-mixtral"


def permute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute (rotate-half rows -> interleaved pairs)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(out_dir: Path, config: dict, tensors: list, split_max_size: int = 0) -> None:
    """The converter's keys and the tensors, in one file or split as gguf-split names the parts."""
    n_layer, n_head, n_kv = config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_dir / "model.gguf"), "llama", split_max_size=split_max_size)
    writer.add_name("tiny-mixtral")
    writer.add_block_count(n_layer)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_expert_count(config["num_local_experts"])
    writer.add_expert_used_count(config["num_experts_per_tok"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(config["hidden_size"] // n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for name, data in sorted(tensors):
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shutil.copy(SOURCE / "expected.safetensors", out_dir / "expected.safetensors")
    print("wrote", sorted(p.name for p in out_dir.iterdir()))


def main() -> None:
    config = json.loads((SOURCE / "config.json").read_text())
    weights = load_file(SOURCE / "model.safetensors")
    n_layer, n_head, n_kv = config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]
    n_expert = config["num_local_experts"]
    names = gguf.get_tensor_name_map(MODEL_ARCH.LLAMA, n_layer)

    tensors: list[tuple[str, np.ndarray]] = []
    for name, data in weights.items():
        if ".experts." in name:
            continue
        if name.endswith("q_proj.weight"):
            data = permute(data, n_head, n_head)
        elif name.endswith("k_proj.weight"):
            data = permute(data, n_head, n_kv)
        tensors.append((names.get_name(name, try_suffixes=(".weight", ".bias")), data))
    for layer in range(n_layer):
        for w in ("w1", "w2", "w3"):
            stacked = np.stack([weights[f"model.layers.{layer}.block_sparse_moe.experts.{e}.{w}.weight"] for e in range(n_expert)])
            merged = f"model.layers.{layer}.block_sparse_moe.experts.{w}.weight"
            tensors.append((names.get_name(merged, try_suffixes=(".weight",)), stacked))

    write(ROOT / "fixtures" / "gguf" / "tiny-mixtral", config, tensors)
    # Split as `gguf-split` and the converter's --split-max-size name the parts.
    write(ROOT / "fixtures" / "gguf" / "tiny-mixtral-split", config, tensors, split_max_size=25_000)


if __name__ == "__main__":
    main()
