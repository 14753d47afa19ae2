#!/usr/bin/env python3
"""Write fixtures/gguf/qwen3-moe-{q8_0,q4_0,bf16}/: a tiny random Qwen3-MoE (transformers) quantized
(or rounded to BF16) by llama.cpp's own converter, with transformers' float32 outputs of the
unquantized model and the tolerance the quantization itself costs.

- `model.gguf`: `convert_hf_to_gguf.py --outtype q8_0` (Q8_0: every 2-D weight whose rows are whole
  blocks; norms and router F32). For Q4_0 the converter has no outtype; the file is the Q8_0 one
  with those tensors re-quantized to Q4_0 by the official `gguf.quants` from the F32 weights. BF16
  is `--outtype bf16` (the tensors llama.cpp keeps in F32, norms and router, stay F32).
  fixtures/gguf/qwen3-moe-q4_k_m/ is a wider model (rows of 256) converted to F32 and quantized
  by llama.cpp's own `llama_model_quantize` to Q4_K_M (Q4_K and Q6_K tensors), run with
  llama-cpp-python 0.3.36 (`LLAMA_PYTHON=`, default /work/venv-llama/bin/python).
- `expected.safetensors`: `input_ids` and `logits` of the original float32 model (transformers), with
  `atol` = 1.5 x the largest |logit difference| transformers itself shows when it loads the GGUF
  (`from_pretrained(gguf_file=...)`, which dequantizes it) and runs the same ids: `moeckpt verify`
  passes when its forward pass on the quantized weights is as close to float32 as transformers'
  own forward pass on them, with a margin for summation order. `rtol` 0.
- `dequantized/expected.safetensors`: the logits transformers computes on the GGUF's dequantized
  weights, atol/rtol 1e-4: moeckpt on the quantized blocks must compute the same thing.

The converter is llama-cpp-python 0.3.36's vendored llama.cpp (see make_tokenizer_fixtures.py for
how to get it; `LLAMA_CPP=`); the model borrows the byte-level tokenizer of fixtures/tokenizers/
(the converter needs one).

    LLAMA_CPP=.../vendor/llama.cpp /work/venv-fix/bin/python scripts/make_quantized_gguf_fixtures.py
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

from fixture_util import fresh_dir, log
from make_tokenizer_fixtures import CONVERTER, LLAMA_CPP

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "fixtures" / "tokenizers" / "byte-level"
REFERENCE = "transformers 5.23.0 Qwen3MoeForCausalLM, eager attention, eager experts, float32, torch 2.13.0+cpu"


def build(directory: Path, hidden: int = 64, layers: int = 2, experts: int = 8) -> Qwen3MoeForCausalLM:
    config = Qwen3MoeConfig(
        vocab_size=384, hidden_size=hidden, intermediate_size=2 * hidden, moe_intermediate_size=hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4,
        num_experts=experts, num_experts_per_tok=2, max_position_embeddings=128, norm_topk_prob=True,
        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(1)
    model = Qwen3MoeForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.uniform_(0.8, 1.2)
    model.save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / name, directory)
    return model


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    model.config._attn_implementation = "eager"
    model.config._experts_implementation = "eager"
    with torch.no_grad():
        return model(ids).logits.float()


def requantized_q4_0(source: Path, out: Path) -> None:
    """The Q8_0 file with its Q8_0 tensors as Q4_0 (from the F32 values), everything else as is."""
    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(out, arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = field.contents()
        if key == "general.file_type":
            value = int(gguf.LlamaFileType.MOSTLY_Q4_0)
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, kind, sub_type=sub)
    for tensor in reader.tensors:
        shape = [int(n) for n in reversed(tensor.shape)]
        if tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
            writer.add_tensor(tensor.name, gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q4_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q4_0)
        else:
            writer.add_tensor(tensor.name, np.asarray(tensor.data).reshape(shape), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


QUANTIZE = """
import ctypes, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
params.nthread = 2
assert llama_cpp.llama_model_quantize({source!r}.encode(), {out!r}.encode(), ctypes.byref(params)) == 0
"""


def convert(model_dir: Path, out: Path, outtype: str) -> None:
    script = CONVERTER.format(root=str(LLAMA_CPP), pre="qwen2", model=str(model_dir), out=str(out)).replace("'f32'", repr(outtype))
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, NO_LOCAL_GGUF=""))


def write(name: str, file: Path, model, ids: torch.Tensor, tmp: str) -> None:
    """fixtures/gguf/NAME/: the file, the float32 reference with the quantization's tolerance, and
    transformers' logits on the dequantized file."""
    reference = logits(model, ids)
    alone = Path(tmp) / name
    alone.mkdir()
    shutil.copy(file, alone / "model.gguf")
    # transformers' GGUF config mapping misses expert_feed_forward_length: give it the model's config.
    dequantized = AutoModelForCausalLM.from_pretrained(
        alone, gguf_file="model.gguf", config=model.config, dtype=torch.float32)
    on_dequantized = logits(dequantized, ids)
    error = float((on_dequantized - reference).abs().max())
    out = fresh_dir(ROOT / "fixtures" / "gguf" / name)
    shutil.copy(file, out / "model.gguf")
    metadata = {"reference": REFERENCE, "format": "pt", "atol": f"{1.5 * error:.3g}", "rtol": "0",
                "quantization_error": f"transformers on the dequantized GGUF: max |logits - float32| {error:.3g}"}
    save_file({"input_ids": ids.contiguous(), "logits": reference.contiguous()}, out / "expected.safetensors",
              metadata=metadata)
    (out / "dequantized").mkdir()
    save_file({"input_ids": ids.contiguous(), "logits": on_dequantized.contiguous()},
              out / "dequantized" / "expected.safetensors",
              metadata={"reference": REFERENCE + ", on the GGUF's dequantized weights (from_pretrained(gguf_file=...))",
                        "format": "pt", "atol": "1e-4", "rtol": "1e-4"})
    log(f"{name}: transformers' own error on the dequantized weights {error:.3g}, atol {metadata['atol']}")


def main() -> None:
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 345, (2, 12), generator=generator)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model = build(model_dir)
        q8 = Path(tmp) / "q8_0.gguf"
        convert(model_dir, q8, "q8_0")
        q4 = Path(tmp) / "q4_0.gguf"
        requantized_q4_0(q8, q4)
        write("qwen3-moe-q8_0", q8, model, ids, tmp)
        write("qwen3-moe-q4_0", q4, model, ids, tmp)
        bf16 = Path(tmp) / "bf16.gguf"
        convert(model_dir, bf16, "bf16")
        write("qwen3-moe-bf16", bf16, model, ids, tmp)

        # k-quants need rows of 256: a wider model, quantized by llama.cpp's own llama_model_quantize
        # (Q4_K_M: Q4_K and Q6_K tensors), run from the llama-cpp-python venv (LLAMA_PYTHON=).
        wide_dir = Path(tmp) / "wide"
        wide = build(wide_dir, hidden=256, layers=1, experts=4)
        f32, q4_k_m = Path(tmp) / "wide-f32.gguf", Path(tmp) / "q4_k_m.gguf"
        convert(wide_dir, f32, "f32")
        python = os.environ.get("LLAMA_PYTHON", "/work/venv-llama/bin/python")
        subprocess.run([python, "-c", QUANTIZE.format(source=str(f32), out=str(q4_k_m))], check=True)
        write("qwen3-moe-q4_k_m", q4_k_m, wide, ids, tmp)


if __name__ == "__main__":
    main()
