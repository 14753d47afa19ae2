#!/usr/bin/env python3
"""moeckpt against PyTorch on the same machine, the same weights and the same inputs, side by side.

Builds transformers' MixtralForCausalLM (hidden 1024, intermediate 3584, 8 experts, top-2, 4
layers; eager attention, fp32, torch.set_num_threads(2)), saves it with save_pretrained (and a
bf16 copy), then for each case times PyTorch and runs `moeckpt bench` on the saved checkpoint
with the same hidden states (written to a safetensors file) or the same token ids, and prints the
ratios next to issue #7's targets.

    /work/venv/bin/python scripts/bench_pytorch.py [--moeckpt .build/release/moeckpt] [--repeat 7]

Pinned versions: scripts/requirements-fixtures.txt. CI never runs this. Figures: docs/PERFORMANCE.md.
"""
import argparse, json, os, statistics, subprocess, tempfile, time

import torch
from safetensors.torch import save_file
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import MixtralForCausalLM

HIDDEN, INTER, EXPERTS, TOP_K, LAYERS, HEADS, KV_HEADS, VOCAB = 1024, 3584, 8, 2, 4, 8, 2, 32000


def timed(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def moeckpt_bench(binary, checkpoint, what, tokens, repeat, inputs=None):
    command = [binary, "bench", checkpoint, "--what", what, "--tokens", str(tokens), "--threads", "2",
               "--repeat", str(repeat), "--json"]
    if inputs:
        command += ["--inputs", inputs]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)[0]
    return result["median"]


def read_bandwidth(repeat):
    """Bytes per second of a 2-thread sum over 1 GiB (the machine's read bandwidth, measured here)."""
    big = torch.ones(256 << 20)
    return big.numel() * 4 / timed(lambda: big.sum(), repeat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moeckpt", default=".build/release/moeckpt")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = MixtralConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_local_experts=EXPERTS, num_experts_per_tok=TOP_K,
                        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, vocab_size=VOCAB,
                        max_position_embeddings=4096, attn_implementation="eager")
    model = MixtralForCausalLM(cfg).eval()
    layer = model.model.layers[0]
    block = getattr(layer, "mlp", None) or getattr(layer, "block_sparse_moe")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        f32_dir, bf16_dir = os.path.join(work, "f32"), os.path.join(work, "bf16")
        model.save_pretrained(f32_dir)
        with torch.no_grad():
            for tokens in (512, 32, 1):
                x = torch.randn(1, tokens, HIDDEN)
                inputs = os.path.join(work, f"x{tokens}.safetensors")
                save_file({"hidden_states": x[0].contiguous()}, inputs)
                theirs = timed(lambda: block(x), args.repeat)
                ours = moeckpt_bench(args.moeckpt, f32_dir, "moe", tokens, args.repeat, inputs)
                flops = 2 * tokens * HIDDEN * EXPERTS + 2 * tokens * TOP_K * 3 * HIDDEN * INTER
                target = {512: ">= 1.6x, >= 50% of peak", 32: ">= 2.5x", 1: ">= 1.2x, >= 80% read BW"}[tokens]
                rows.append((f"MoE block, {tokens} tokens, f32", theirs, ours, flops, target))
            bf16_model = MixtralForCausalLM(cfg).eval()
            bf16_model.load_state_dict(model.state_dict())
            bf16_model.to(torch.bfloat16).save_pretrained(bf16_dir)
            ours = moeckpt_bench(args.moeckpt, bf16_dir, "moe", 1, args.repeat, os.path.join(work, "x1.safetensors"))
            rows.append(("MoE block, 1 token, bf16 in place", rows[2][1], ours, rows[2][3], ">= 2x PyTorch f32"))
            ids = torch.tensor([[(i * 7919) % VOCAB for i in range(512)]])
            repeat = max(2, args.repeat // 2)
            theirs = timed(lambda: model(input_ids=ids), repeat)
            command = [args.moeckpt, "bench", f32_dir, "--what", "forward", "--tokens", "512", "--threads", "2",
                       "--repeat", str(repeat), "--json"]
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)[0]
            rows.append(("full forward, 512 tokens, 4 layers", theirs, result["median"],
                         result["gflops"] * 1e9 * result["median"], ">= 1.5x"))
        bandwidth = read_bandwidth(args.repeat)
    active_bytes = TOP_K * 3 * HIDDEN * INTER * 4
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; hidden {HIDDEN}, intermediate {INTER}, "
          f"{EXPERTS} experts, top-{TOP_K}; same weights (save_pretrained) and inputs on both sides")
    print(f"{'case':36} {'PyTorch ms':>10} {'moeckpt ms':>10} {'speed-up':>8} {'GFLOP/s':>8}  target")
    for name, theirs, mine, flops, target in rows:
        print(f"{name:36} {theirs * 1e3:10.2f} {mine * 1e3:10.2f} {theirs / mine:7.2f}x {flops / mine / 1e9:8.1f}  {target}")
    for name, width, mine in (("f32", 4, rows[2][2]), ("bf16", 2, rows[3][2])):
        rate = active_bytes * width / 4 / mine
        print(f"1 token, {name}: active expert weights {active_bytes * width / 4 / 1e6:.0f} MB at {rate / 1e9:.1f} GB/s "
              f"= {100 * rate / bandwidth:.0f}% of the 2-thread read bandwidth measured here ({bandwidth / 1e9:.1f} GB/s)")


if __name__ == "__main__":
    main()
