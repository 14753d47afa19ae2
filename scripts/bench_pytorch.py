#!/usr/bin/env python3
"""Times transformers' Mixtral sparse MoE block and full causal LM (eager, fp32, 2 threads) on the
shapes `moeckpt bench` uses, and runs `moeckpt bench` on the same shapes, printing both side by side.

    /work/venv/bin/python scripts/bench_pytorch.py [--moeckpt .build/release/moeckpt] [--repeat 5]

Weights are random in both (the kernels' speed does not depend on their values). Pinned versions:
scripts/requirements-fixtures.txt. CI never runs this.
"""
import argparse, json, statistics, subprocess, time

import torch
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import MixtralForCausalLM, MixtralSparseMoeBlock


def timed(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moeckpt", default=".build/release/moeckpt")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    hidden, inter, experts, k, layers, heads, kv, vocab = 1024, 3584, 8, 2, 4, 8, 2, 32000
    cfg = MixtralConfig(hidden_size=hidden, intermediate_size=inter, num_local_experts=experts, num_experts_per_tok=k,
                        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                        max_position_embeddings=4096, attn_implementation="eager")
    block = MixtralSparseMoeBlock(cfg).eval()
    rows = []
    with torch.no_grad():
        for tokens in (512, 32, 1):
            x = torch.randn(1, tokens, hidden)
            t = timed(lambda: block(x), args.repeat)
            flops = 2 * tokens * hidden * experts + 2 * tokens * k * 3 * hidden * inter
            ours = json.loads(subprocess.run([args.moeckpt, "bench", "--what", "moe", "--tokens", str(tokens), "--threads", "2",
                                              "--repeat", str(args.repeat), "--json"], capture_output=True, text=True, check=True).stdout)[0]
            rows.append((f"MoE block, {tokens} tokens", t, ours["median"], flops))
        model = MixtralForCausalLM(cfg).eval()
        ids = torch.randint(0, vocab, (1, 512))
        t = timed(lambda: model(input_ids=ids), max(2, args.repeat // 2))
        ours = json.loads(subprocess.run([args.moeckpt, "bench", "--what", "forward", "--tokens", "512", "--threads", "2",
                                          "--repeat", str(max(2, args.repeat // 2)), "--json"],
                                         capture_output=True, text=True, check=True).stdout)[0]
        rows.append(("full forward, 512 tokens, 4 layers", t, ours["median"], ours["gflops"] * 1e9 * ours["median"]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; hidden {hidden}, intermediate {inter}, "
          f"{experts} experts, top-{k}")
    print(f"{'case':38} {'PyTorch ms':>11} {'moeckpt ms':>11} {'speed-up':>9} {'moeckpt GFLOP/s':>16}")
    for name, theirs, mine, flops in rows:
        print(f"{name:38} {theirs * 1e3:11.2f} {mine * 1e3:11.2f} {theirs / mine:8.2f}x {flops / mine / 1e9:16.1f}")


if __name__ == "__main__":
    main()
