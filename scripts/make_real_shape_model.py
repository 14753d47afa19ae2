#!/usr/bin/env python3
"""Builds a causal-LM MoE checkpoint at a real model's shapes one decoder layer at a time, with its
expected outputs, so that a 10-30 GB model can be made and checked on a machine that could not
hold it in fp32 (docs/PERFORMANCE.md, "Real-shape models").

transformers builds the model on the `meta` device and runs its own forward pass (its masks, rotary
embedding, routing); a hook gives each decoder layer real weights just before it runs, saves them
as that layer's shard, and frees them afterwards, so memory holds one layer (in fp32) at a time.
Weights are random (seeded per tensor name, so any layer can be re-made alone), rounded to the
stored dtype before the layer computes, so the reference is fp32 compute on the stored values.

    python scripts/make_real_shape_model.py OUT --family mixtral --layers 4 --tokens 32
    python scripts/make_real_shape_model.py OUT --config path/to/config.json --layers 2
    python scripts/make_real_shape_model.py --self-check   # layer by layer == whole model
    python scripts/make_real_shape_model.py --transformers-verify OUT   # what verify does, in transformers

OUT gets `config.json`, `model-0000K-of-0000N.safetensors` (one shard per decoder layer, plus one
for the embedding, final norm and head), `model.safetensors.index.json`, and
`expected.safetensors` (`input_ids`, `logits`, `hidden_states.N`) for `moeckpt verify OUT`.
Pinned versions: scripts/requirements-fixtures.txt (torch 2.13.0+cpu, transformers 5.23.0,
safetensors 0.8.0). Never run by CI.
"""
import argparse, hashlib, json, os, resource, sys, tempfile, time
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

# The published configurations' shapes (their config.json on the Hugging Face Hub).
FAMILIES = {
    "mixtral": dict(  # mistralai/Mixtral-8x7B-v0.1
        model_type="mixtral", hidden_size=4096, intermediate_size=14336, num_local_experts=8,
        num_experts_per_tok=2, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
        max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1e6, tie_word_embeddings=False),
    "qwen3_moe": dict(  # Qwen/Qwen3-30B-A3B
        model_type="qwen3_moe", hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768,
        num_experts=128, num_experts_per_tok=8, norm_topk_prob=True, num_attention_heads=32,
        num_key_value_heads=4, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
        rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False),
    "olmoe": dict(  # allenai/OLMoE-1B-7B-0924
        model_type="olmoe", hidden_size=2048, intermediate_size=1024, num_experts=64,
        num_experts_per_tok=8, num_attention_heads=16, num_key_value_heads=16, vocab_size=50304,
        max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=1e4, tie_word_embeddings=False),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seeded_like(name: str, tensor: torch.Tensor, seed: int) -> torch.Tensor:
    """Values for one parameter, a function of (seed, name) alone: norms near 1, everything else
    N(0, 0.02) (transformers' initializer_range)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    values = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
    if tensor.dim() == 1 and "norm" in name:
        return 1 + 0.1 * values
    return 0.02 * values


def materialize(module: torch.nn.Module, prefix: str, seed: int, dtype: torch.dtype) -> dict:
    """Gives `module` (on meta) real seeded weights rounded to `dtype`; returns them as stored."""
    if any(True for _ in module.buffers()):
        raise SystemExit(f"{prefix}: has buffers, which this script cannot re-create")
    module.to_empty(device="cpu")
    stored = {}
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            full = prefix + name
            values = seeded_like(full, parameter, seed).to(dtype)
            parameter.copy_(values)
            stored[full] = values.contiguous()
    return stored


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def build(out: Path, config, tokens: int, seed: int, dtype: torch.dtype) -> dict:
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    decoder = model.model
    layers = len(decoder.layers)
    shards = layers + 1
    shard_name = lambda k: f"model-{k:05d}-of-{shards:05d}.safetensors"
    out.mkdir(parents=True, exist_ok=True)
    weight_map, total = {}, 0

    def save(stored: dict, shard: int) -> None:
        nonlocal total
        save_file(stored, str(out / shard_name(shard)), metadata={"format": "pt"})
        for name, tensor in stored.items():
            weight_map[name] = shard_name(shard)
            total += tensor.numel() * tensor.element_size()

    # The shell: embedding, final norm, head (tied or not), and the rotary embedding's buffers,
    # which `to_empty` would leave uninitialised, made again from the config.
    shell = {}
    shell.update(materialize(decoder.embed_tokens, "model.embed_tokens.", seed, dtype))
    shell.update(materialize(decoder.norm, "model.norm.", seed, dtype))
    if config.tie_word_embeddings:
        model.lm_head.weight = decoder.embed_tokens.weight
    else:
        shell.update(materialize(model.lm_head, "lm_head.", seed, dtype))
    decoder.rotary_emb = type(decoder.rotary_emb)(config=config)

    def before(index):
        def hook(layer, _args, _kwargs):
            started = time.time()
            layer._stored = materialize(layer, f"model.layers.{index}.", seed, dtype)
            log(f"layer {index}: weights made in {time.time() - started:.1f} s")
        return hook

    def after(index):
        def hook(layer, _args, _kwargs, _output):
            save(layer.__dict__.pop("_stored"), index + 1)
            layer.to_empty(device="meta")  # frees the layer's memory
            log(f"layer {index}: saved, peak RSS so far {peak_rss_gb():.1f} GB")
        return hook

    for index, layer in enumerate(decoder.layers):
        layer.register_forward_pre_hook(before(index), with_kwargs=True)
        layer.register_forward_hook(after(index), with_kwargs=True)

    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (1, tokens), generator=generator)
    started = time.time()
    with torch.no_grad():
        output = model(input_ids=input_ids, output_hidden_states=True, use_cache=False)
    log(f"forward pass, layer by layer: {time.time() - started:.1f} s")
    save(shell, shards)

    json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
              open(out / "model.safetensors.index.json", "w"), indent=2)
    config.dtype = dtype  # recorded in config.json
    config.save_pretrained(out)
    expected = {"input_ids": input_ids.contiguous(), "logits": output.logits.float().contiguous()}
    for index, state in enumerate(output.hidden_states):
        expected[f"hidden_states.{index}"] = state.float().contiguous()
    save_file(expected, str(out / "expected.safetensors"), metadata={
        "atol": "1e-3", "rtol": "1e-3",
        "reference": f"transformers {__import__('transformers').__version__} {type(model).__name__}, "
                     f"fp32 compute on {str(dtype).split('.')[-1]} weights, made layer by layer by "
                     "scripts/make_real_shape_model.py"})
    log(f"wrote {out}: {total / 1e9:.2f} GB of weights in {shards} shards, peak RSS {peak_rss_gb():.1f} GB")
    return expected


def config_for(args) -> object:
    if args.config:
        config = AutoConfig.from_pretrained(args.config)
    else:
        values = dict(FAMILIES[args.family])
        config = AutoConfig.for_model(values.pop("model_type"), **values)
    config.num_hidden_layers = args.layers
    if hasattr(config, "layer_types") and config.layer_types is not None:
        config.layer_types = config.layer_types[: args.layers]
    return config


def self_check() -> None:
    """The layer-by-layer reference equals transformers' own forward pass on the written files."""
    small = dict(hidden_size=64, intermediate_size=96, moe_intermediate_size=48, vocab_size=300,
                 num_attention_heads=4, num_key_value_heads=2)
    for family in FAMILIES:
        values = {**FAMILIES[family], **small}
        if "head_dim" in values:
            values["head_dim"] = 16
        config = AutoConfig.for_model(values.pop("model_type"), **values)
        config.num_hidden_layers = 3
        with tempfile.TemporaryDirectory() as directory:
            expected = build(Path(directory), config, 12, 7, torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
            model.config._attn_implementation = "eager"
            model.config._experts_implementation = "eager"
            with torch.no_grad():
                whole = model(input_ids=expected["input_ids"], output_hidden_states=True)
            difference = (whole.logits - expected["logits"]).abs().max().item()
            print(f"{family}: whole model vs layer by layer, max |logits diff| {difference:.3g}")
            if difference > 1e-5:
                raise SystemExit(f"{family}: the layer-by-layer reference differs from the whole model")
    print("self-check passed")


def transformers_verify(out: Path) -> None:
    """The check `moeckpt verify OUT` makes, done by transformers (fp32): load, run the expected
    input ids, compare every output; for time and memory side by side (it holds the fp32 model)."""
    from safetensors.torch import load_file
    started = time.time()
    expected = load_file(str(out / "expected.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.config._experts_implementation = "eager"
    with torch.no_grad():
        output = model(input_ids=expected["input_ids"], output_hidden_states=True, use_cache=False)
    worst = max([(output.logits - expected["logits"]).abs().max().item()] +
                [(state - expected[f"hidden_states.{i}"]).abs().max().item() for i, state in enumerate(output.hidden_states)])
    print(f"transformers: max |diff| {worst:.3g} over logits and hidden states, {time.time() - started:.1f} s, "
          f"peak RSS {peak_rss_gb():.1f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="mixtral")
    parser.add_argument("--config", help="a config.json (or its directory) instead of --family")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--self-check", action="store_true")
    parser.add_argument("--transformers-verify", action="store_true", help="check OUT with transformers instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.self_check:
        return self_check()
    if args.out is None:
        parser.error("OUT is required")
    if args.transformers_verify:
        return transformers_verify(args.out)
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    build(args.out, config_for(args), args.tokens, args.seed, dtype)


if __name__ == "__main__":
    main()
