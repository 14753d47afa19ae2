#!/usr/bin/env python3
"""Writes fixtures/compare/ for `moeckpt compare` (issue 19): conversions made by the other tools'
own code, which compare must find equivalent to their originals, and deliberately broken
conversions, each holding one mistake compare must name. CASES.json lists both:

- `right`: original and converted checkpoint, and the tool that converted it:
  llama.cpp's `convert_hf_to_gguf.py` (the `converter.gguf` files of fixtures/tokenizers, written by
  scripts/make_tokenizer_fixtures.py), gguf-py's GGUFWriter (fixtures/gguf/tiny-mixtral), mlx-lm's
  `convert` (its models' `sanitize`) and transformers 5's v4 -> v5 conversion (`from_pretrained` of
  per-expert weights, `save_pretrained(save_original_format=False)`), the last two written here.
- `broken`: the original, and the `mistake` compare must report first (or the `description` key
  that differs, or the canonical tensor `missing` in the broken one).

The originals are models transformers saved: fixtures/models/layouts/hf (a tiny Mixtral),
fixtures/models/families/qwen3_moe, and the tokenizer fixtures' Mixtral and Qwen3-MoE.

    /work/venv-fix/bin/python scripts/make_compare_fixtures.py
    # requirements-fixtures.txt, mlx[cpu]==0.32.4, mlx-lm==0.32.2

Deterministic.
"""
import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
MIXTRAL = ROOT / "fixtures/models/layouts/hf"
QWEN3 = ROOT / "fixtures/models/families/qwen3_moe"
TOKENIZER_MIXTRAL = ROOT / "fixtures/tokenizers/sentencepiece"
TOKENIZER_QWEN3 = ROOT / "fixtures/tokenizers/byte-level"
DEEPSEEK = ROOT / "fixtures/models/families/deepseek_v3"
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP", "/tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp"))

# llama.cpp's converter, run as make_tokenizer_fixtures.py runs it; the family fixtures have no
# tokenizer, so DeepseekV2Model.set_vocab writes none (the tensors and model keys are untouched).
CONVERTER = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(1, {root!r} + '/gguf-py')
import conversion.deepseek
conversion.deepseek.DeepseekV2Model.set_vocab = lambda self: None
sys.argv = ['convert_hf_to_gguf.py', {model!r}, '--outfile', {out!r}, '--outtype', 'f32']
import convert_hf_to_gguf
convert_hf_to_gguf.main()
"""
OUT = ROOT / "fixtures/compare"


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute`: half-split rotary rows to interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(case: str, source: Path, tensors: dict, config: dict) -> None:
    target = OUT / case
    target.mkdir(parents=True)  # `source`: what the case was made from
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

    cases.update(more_broken_cases(mixtral, mixtral_config, qwen3, qwen3_config))
    right = right_conversions()
    fused_cases(OUT / "right/transformers-v5-qwen3_moe", cases)

    (OUT / "CASES.json").write_text(json.dumps({"broken": cases, "right": right}, indent=2, sort_keys=True) + "\n")
    (OUT / "README.md").write_text(
        "# Conversions for `moeckpt compare`\n\n"
        "Written by `scripts/make_compare_fixtures.py`. `CASES.json` lists the `right` conversions,\n"
        "made by the other tools' own code, which compare must find equivalent to their originals, and\n"
        "the `broken` ones, each a model transformers 5.23.0 saved with one deliberate mistake, with what\n"
        "compare must report (`mistake`, the `description` key that differs, or the canonical tensor\n"
        "`missing`).\n\n"
        "## Right conversions\n\n"
        + "".join(f"- `{case['converted']}`: {case['tool']}, of `{case['original']}`\n" for _, case in sorted(right.items()))
        + "\n## Broken conversions\n\n"
        + "".join(f"- `{name}`: {describe(case)}" + (f" ({case['made']})" if "made" in case else "") + "\n"
                  for name, case in sorted(cases.items())))
    print(f"wrote {len(cases)} broken and {len(right)} right conversions to {OUT}")


def describe(case: dict) -> str:
    if "mistake" in case:
        return case["mistake"]
    if "missing" in case:
        return f"`{case['missing']}` (canonical name) left out"
    return f"`{case['description']}` not as in the original's description"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT / "fixtures"))


def right_conversions() -> dict:
    """Conversions made by the tools themselves (README of fixtures/compare)."""
    right = {
        "llama.cpp-mixtral": {"original": rel(TOKENIZER_MIXTRAL), "converted": rel(TOKENIZER_MIXTRAL / "converter.gguf"),
                              "tool": "llama.cpp's convert_hf_to_gguf.py --outtype f32 (llama-cpp-python 0.3.36)"},
        "llama.cpp-qwen3_moe": {"original": rel(TOKENIZER_QWEN3), "converted": rel(TOKENIZER_QWEN3 / "converter.gguf"),
                                "tool": "llama.cpp's convert_hf_to_gguf.py --outtype f32 (llama-cpp-python 0.3.36)"},
        "gguf-writer-mixtral": {"original": "models/tiny-mixtral", "converted": "gguf/tiny-mixtral/model.gguf",
                                "tool": "gguf-py 0.19.0's GGUFWriter (scripts/make_gguf_fixtures.py)"},
    }
    target = llama_cpp_deepseek(OUT / "right/llama.cpp-deepseek_v3", scoring_func="sigmoid")
    right["llama.cpp-deepseek_v3"] = {
        "original": rel(DEEPSEEK), "converted": rel(target),
        "tool": "llama.cpp's convert_hf_to_gguf.py --outtype f32 (llama-cpp-python 0.3.36), of config.json with "
                "DeepSeek's \"scoring_func\": \"sigmoid\" (as the released checkpoints have it)"}
    for family, source in (("mixtral", TOKENIZER_MIXTRAL), ("qwen3_moe", TOKENIZER_QWEN3)):
        target = mlx_lm_convert(source, OUT / f"right/mlx-lm-{family}")
        right[f"mlx-lm-{family}"] = {"original": rel(source), "converted": rel(target),
                                     "tool": "mlx-lm 0.32.2's convert(dtype='float32') (its sanitize)"}
        target = transformers_v5(source, OUT / f"right/transformers-v5-{family}")
        right[f"transformers-v5-{family}"] = {
            "original": rel(source), "converted": rel(target),
            "tool": "transformers 5.23.0's v4 -> v5 conversion (from_pretrained, save_pretrained(save_original_format=False))"}
    return right


def llama_cpp_deepseek(target: Path, scoring_func: str | None) -> Path:
    """fixtures/models/families/deepseek_v3 converted by llama.cpp's converter, which writes
    `expert_gating_func` only when config.json names a `scoring_func`: transformers' config has
    none, and llama.cpp runs a file without it with softmax (its default, for DeepSeek-V2 files)."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(DEEPSEEK, model, ignore=shutil.ignore_patterns("expected.safetensors"))
        config = json.loads((model / "config.json").read_text())
        if scoring_func is not None:
            config["scoring_func"] = scoring_func
        (model / "config.json").write_text(json.dumps(config, indent=2))
        target.mkdir(parents=True)
        script = CONVERTER.format(root=str(LLAMA_CPP), model=str(model), out=str(target / "model.gguf"))
        subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, NO_LOCAL_GGUF=""))
    return target


def mlx_lm_convert(source: Path, target: Path) -> Path:
    """mlx-lm's own conversion, unquantized; the weights and config.json kept."""
    from mlx_lm import convert
    with tempfile.TemporaryDirectory() as tmp:
        # mlx-lm 0.32.2 reads configs as transformers 4 wrote them (and the Hub has them):
        # rope_theta at the top, Qwen3-MoE's expert count as num_experts.
        hub, out = Path(tmp) / "hub", Path(tmp) / "mlx"
        shutil.copytree(source, hub, ignore=shutil.ignore_patterns("*.gguf", "from-gguf", "encodings.json"))
        config = json.loads((hub / "config.json").read_text())
        config["rope_theta"] = config["rope_parameters"]["rope_theta"]
        if config["model_type"] == "qwen3_moe":
            config["num_experts"] = config["num_local_experts"]
        (hub / "config.json").write_text(json.dumps(config, indent=2))
        convert(hf_path=str(hub), mlx_path=str(out), dtype="float32")
        target.mkdir(parents=True)
        for f in sorted(out.iterdir()):
            if f.suffix == ".safetensors" or f.name in ("config.json", "model.safetensors.index.json"):
                shutil.copy(f, target / f.name)
    assert any("switch_mlp" in k for k in load_file(str(target / "model.safetensors"))), "mlx-lm did not stack the experts"
    return target


def transformers_v5(source: Path, target: Path) -> Path:
    """Per-expert (v4) weights loaded by transformers 5, which fuses them, and saved as loaded."""
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32)
    model.save_pretrained(str(target), save_original_format=False)
    (target / "generation_config.json").unlink(missing_ok=True)
    assert any(k.endswith("mlp.experts.gate_up_proj") for k in load_file(str(target / "model.safetensors"))), "not fused"
    return target


def fused_cases(fused: Path, cases: dict) -> None:
    """transformers 5's fused Qwen3-MoE (a) with each expert's gate and up rows alternating (as
    gpt-oss stores gate_up_proj) where they are meant to be the two halves, (b) with its fused
    experts stored [in, out] (as a framework with [in, out] kernels keeps them)."""
    tensors, config = load_file(str(fused / "model.safetensors")), json.loads((fused / "config.json").read_text())
    mixed = dict(tensors)
    for name, value in tensors.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            half = value.shape[1] // 2
            mixed[name] = np.empty_like(value)
            mixed[name][:, 0::2], mixed[name][:, 1::2] = value[:, :half], value[:, half:]
    write("gate-up-interleaved", fused, mixed, config)
    cases["gate-up-interleaved"] = {"original": rel(fused), "mistake": "gate and up rows mixed"}
    transposed = {k: (np.ascontiguousarray(v.swapaxes(1, 2)) if ".mlp.experts." in k else v) for k, v in tensors.items()}
    write("fused-experts-transposed", fused, transposed, config)
    cases["fused-experts-transposed"] = {"original": rel(fused), "mistake": "transposed"}


def more_broken_cases(mixtral: dict, mixtral_config: dict, qwen3: dict, qwen3_config: dict) -> dict:
    import ml_dtypes
    cases = {}
    broken = dict(qwen3)  # k permuted with the query's head count (n_head, not n_head_kv)
    for l in range(qwen3_config["num_hidden_layers"]):
        k = f"model.layers.{l}.self_attn.k_proj.weight"
        broken[k] = permute(qwen3[k], qwen3_config["num_attention_heads"])
    write("k-permuted-with-query-heads", QWEN3, broken, qwen3_config)
    cases["k-permuted-with-query-heads"] = {"original": "models/families/qwen3_moe",
                                            "mistake": "query/key rows permuted for rotary as 4 heads where this matrix has 2"}

    broken = dict(mixtral)  # layers 0 and 1's attention exchanged (an off-by-one layer map)
    for w in ("q_proj", "k_proj", "v_proj", "o_proj"):
        a, b = (f"model.layers.{l}.self_attn.{w}.weight" for l in (0, 1))
        broken[a], broken[b] = mixtral[b], mixtral[a]
    write("layers-exchanged", MIXTRAL, broken, mixtral_config)
    cases["layers-exchanged"] = {"original": "models/layouts/hf", "mistake": "another tensor's values"}

    broken = dict(mixtral)  # query and key of layer 0 exchanged (their shapes differ: 4 heads, 2 key/value heads)
    q, k = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"
    broken[q], broken[k] = mixtral[k], mixtral[q]
    write("query-key-exchanged", MIXTRAL, broken, mixtral_config)
    cases["query-key-exchanged"] = {"original": "models/layouts/hf", "mistake": "another tensor's values"}

    broken = {k: v for k, v in mixtral.items() if k != "lm_head.weight"}  # the head left out (untied)
    write("head-dropped", MIXTRAL, broken, mixtral_config)
    cases["head-dropped"] = {"original": "models/layouts/hf", "missing": "lm_head"}

    broken = {k: (v - 1 if k.endswith("norm.weight") else v) for k, v in mixtral.items()}  # the 1 + w convention
    write("norms-minus-one", MIXTRAL, broken, mixtral_config)
    cases["norms-minus-one"] = {"original": "models/layouts/hf", "mistake": "shifted by -1"}

    broken = {k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in mixtral.items()}  # a cast round trip
    write("rounded-to-bf16", MIXTRAL, broken, mixtral_config)
    cases["rounded-to-bf16"] = {"original": "models/layouts/hf", "mistake": "values rounded to BF16"}

    write("top-k-changed", MIXTRAL, mixtral, dict(mixtral_config, num_experts_per_tok=1))
    cases["top-k-changed"] = {"original": "models/layouts/hf", "description": "num_experts_per_tok"}

    llama_cpp_deepseek(OUT / "scoring-func-lost", scoring_func=None)
    cases["scoring-func-lost"] = {
        "original": rel(DEEPSEEK), "description": "scoring_func",
        "made": "by llama.cpp's converter itself, from transformers' config.json (no scoring_func): the file has no "
                "expert_gating_func, and llama.cpp runs it with softmax"}

    router_quantized(TOKENIZER_QWEN3 / "converter.gguf", OUT / "router-quantized/model.gguf")
    cases["router-quantized"] = {"original": rel(TOKENIZER_QWEN3), "mistake": "router quantized (q4_0)"}
    return cases


def router_quantized(source: Path, out: Path) -> None:
    """llama.cpp's converter output rewritten by gguf-py with the routers (ffn_gate_inp, which
    llama.cpp keeps in F32) quantized to Q4_0."""
    import gguf
    out.parent.mkdir(parents=True)
    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(out, arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        kind = field.types[0]
        writer.add_key_value(key, field.contents(), kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    for tensor in reader.tensors:
        shape = [int(n) for n in reversed(tensor.shape)]
        values = np.asarray(tensor.data).reshape(shape)
        if tensor.name.endswith("ffn_gate_inp.weight"):
            writer.add_tensor(tensor.name, gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q4_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q4_0)
        else:
            writer.add_tensor(tensor.name, values, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
