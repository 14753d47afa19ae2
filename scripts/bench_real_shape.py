#!/usr/bin/env python3
"""Speed at the limit on a real-shape checkpoint (issue 18, items 5-7), every side in one run,
rounds interleaved, medians with their spread (docs/PERFORMANCE.md, "Real-shape models").

    python scripts/make_real_shape_model.py /data/mixtral-1 --layers 1      # 3.4 GB of bf16
    python scripts/bench_real_shape.py /data/mixtral-1 --work /data/bench [--rounds 3]

- convert: `cp` of the checkpoint's bytes (and `cp` then `sync` of the copies: convert syncs what
  it writes) against `moeckpt convert` to safetensors, `.moeckpt`, GGUF and `--dtype f32`.
- forward: the read bandwidth (`bench --what bandwidth`); the MoE block on one token with the bf16
  weights in place against the time to read the two chosen experts' weights at that bandwidth; the
  512-token MoE block on f32 weights against the kernel's own peak (`bench --what linear`, the
  same shapes) and transformers (the same hidden states, the same weights); the full forward pass
  on 1 / 32 / 512 tokens against transformers (fp32 compute on the bf16 values) and llama.cpp (the
  GGUF moeckpt writes, bf16, f32 KV cache, the logits of every position).

Run with the fixtures venv (torch 2.13.0+cpu, transformers 5.23.0: scripts/requirements-fixtures.txt);
llama.cpp through `--llama-python` (a venv with llama-cpp-python 0.3.36). Never run by CI.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time
from pathlib import Path

TOKENS = (1, 32, 512)
ONE_TOKEN_REPEAT = 15


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout


def wall(command):
    started = time.perf_counter()
    run(command)
    return time.perf_counter() - started


def weight_files(checkpoint: Path):
    return sorted(p for p in checkpoint.iterdir() if p.name.endswith((".safetensors", ".json")) and p.name != "expected.safetensors")


def bench(binary, *arguments):
    return json.loads(run([binary, "bench", *map(str, arguments), "--threads", "2", "--json"]))[0]


def timed(function, repeat, warmup=1):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# Workers: each engine in its own process (its own venv, and memory returned between rounds).

def transformers_worker(checkpoint, inputs, repeat):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.config._experts_implementation = "eager"
    model.eval()
    layer = model.model.layers[0]
    block = getattr(layer, "mlp", None) or getattr(layer, "block_sparse_moe")
    x = load_file(inputs)["hidden_states"].unsqueeze(0)
    result = {}
    with torch.no_grad():
        result["moe_512"] = timed(lambda: block(x), repeat)
        for tokens in TOKENS:
            ids = torch.tensor([[(i * 7919) % model.config.vocab_size for i in range(tokens)]])
            result[f"forward_{tokens}"] = timed(lambda: model(input_ids=ids, use_cache=False), repeat)
    print(json.dumps(result))


def llama_worker(gguf, repeat):
    import llama_cpp
    # logits_all: every position's logits, as moeckpt and transformers compute them. Without it
    # llama.cpp runs the last layer's feed-forward on the last position alone, which on a
    # one-layer model skips the MoE block for all the other tokens.
    model = llama_cpp.Llama(model_path=gguf, n_ctx=1024, n_batch=512, n_ubatch=512, type_k=0, type_v=0,
                            n_threads=2, n_threads_batch=2, logits_all=True, verbose=False)
    result = {}
    for tokens in TOKENS:
        ids = [(i * 7919) % model.n_vocab() for i in range(tokens)]

        def evaluate():
            model.reset()  # the next eval drops the cache from position 0
            model.eval(ids)
        # One token takes milliseconds: more repetitions for a steadier median (as bench_llamacpp.py
        # gives moeckpt's).
        result[f"forward_{tokens}"] = timed(evaluate, ONE_TOKEN_REPEAT if tokens == 1 else repeat)
    print(json.dumps(result))


# The measurements.

def convert_round(args, work: Path, f32_copy: Path):
    source = weight_files(args.checkpoint)
    result = {}
    target = work / "out"

    def fresh():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)

    fresh()
    result["cp"] = wall(["cp", *map(str, source), str(target)])
    fresh()
    result["cp+sync"] = wall(["sh", "-c", 'cp "$@" "$0" && sync "$0"/*', str(target), *map(str, source)])
    for name, output, extra in (("safetensors", target / "st", []), ("moeckpt", target / "m.moeckpt", []),
                                ("gguf", target / "m.gguf", []), ("--dtype f32", target / "f32", ["--dtype", "f32"])):
        fresh()
        result[name] = wall([args.moeckpt, "convert", str(args.checkpoint), str(output), "-q", *extra])
    if f32_copy.exists():  # cp of the bytes the cast writes
        fresh()
        result["cp f32"] = wall(["sh", "-c", 'cp "$@" "$0" && sync "$0"/*', str(target), *map(str, weight_files(f32_copy))])
    shutil.rmtree(target, ignore_errors=True)
    return result


def forward_round(args, work: Path, f32_copy: Path, gguf: Path, inputs: Path):
    m, checkpoint = args.moeckpt, args.checkpoint
    config = json.load(open(checkpoint / "config.json"))
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    result = {"bandwidth": bench(m, "--what", "bandwidth", "--repeat", 5)["gflops"] * 1e9}
    moe_1 = bench(m, checkpoint, "--what", "moe", "--tokens", 1, "--repeat", 9)
    result["moe_1_bf16"] = moe_1["median"]
    result["linear_512"] = bench(m, "--what", "linear", "--tokens", 512, "--hidden", hidden, "--intermediate",
                                 intermediate, "--repeat", 5)["gflops"]
    moe_512 = bench(m, f32_copy, "--what", "moe", "--tokens", 512, "--inputs", inputs, "--repeat", 3)
    result["moe_512_f32"], result["moe_512_gflops"] = moe_512["median"], moe_512["gflops"]
    for tokens in TOKENS:
        forward = bench(m, checkpoint, "--what", "forward", "--tokens", tokens, "--repeat", 3)
        result[f"forward_{tokens}"], result[f"peak_anon_{tokens}"] = forward["median"], forward["peak_anon"]
    theirs = json.loads(run([args.python, __file__, "--worker", "transformers", str(checkpoint), str(inputs)]))
    result.update({f"transformers_{key}": value for key, value in theirs.items()})
    if args.llama_python:
        theirs = json.loads(run([args.llama_python, __file__, "--worker", "llama", str(gguf)]))
        result.update({f"llama_{key}": value for key, value in theirs.items()})
    return result


def spread(values, scale=1.0, digits=2):
    values = [v * scale for v in values]
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--work", type=Path, default=Path("/tmp/moeckpt-bench"))
    parser.add_argument("--moeckpt", default=".build/release/moeckpt")
    parser.add_argument("--python", default=sys.executable, help="the Python with torch and transformers")
    parser.add_argument("--llama-python", help="a Python with llama-cpp-python (left out without it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="convert,forward")
    parser.add_argument("--worker", choices=["transformers", "llama"])
    args = parser.parse_args()
    if args.worker == "transformers":
        return transformers_worker(str(args.checkpoint), args.rest[0], 3)
    if args.worker == "llama":
        return llama_worker(str(args.checkpoint), 3)

    args.checkpoint = args.checkpoint.resolve()
    args.moeckpt = str(Path(args.moeckpt).resolve())
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    f32_copy, gguf, inputs = work / "f32", work / "model.gguf", work / "x512.safetensors"
    if not f32_copy.exists():
        run([args.moeckpt, "convert", str(args.checkpoint), str(f32_copy), "--dtype", "f32", "-q"])
    if not gguf.exists():
        run([args.moeckpt, "convert", str(args.checkpoint), str(gguf), "-q"])
    if not inputs.exists():
        hidden = json.load(open(args.checkpoint / "config.json"))["hidden_size"]
        run([args.python, "-c", f"import torch; from safetensors.torch import save_file; torch.manual_seed(0); "
             f"save_file({{'hidden_states': torch.randn(512, {hidden})}}, '{inputs}')"])
    parts = args.parts.split(",")
    rounds = {"convert": [], "forward": []}
    for index in range(args.rounds):
        if "convert" in parts:
            rounds["convert"].append(convert_round(args, work, f32_copy))
            log(f"round {index + 1} convert: {rounds['convert'][-1]}")
        if "forward" in parts:
            rounds["forward"].append(forward_round(args, work, f32_copy, gguf, inputs))
            log(f"round {index + 1} forward: {rounds['forward'][-1]}")
    json.dump(rounds, open(work / "results.json", "w"), indent=1)
    report(args, rounds)


def report(args, rounds):
    config = json.load(open(args.checkpoint / "config.json"))
    size = sum(p.stat().st_size for p in weight_files(args.checkpoint))
    print(f"{args.checkpoint.name}: {size / 1e9:.2f} GB; medians of {args.rounds} interleaved rounds (min-max)")
    if rounds["convert"]:
        column = lambda key: [r[key] for r in rounds["convert"]]
        print("\n| operation | time, s | / cp+sync |\n|---|---|---|")
        for key in rounds["convert"][0]:
            base = "cp f32" if key == "--dtype f32" and "cp f32" in rounds["convert"][0] else "cp+sync"
            ratio = [a / b for a, b in zip(column(key), column(base))]
            print(f"| {key} | {spread(column(key))} | {spread(ratio)} (against {base}) |")
    if rounds["forward"]:
        column = lambda key: [r[key] for r in rounds["forward"]]
        hidden, intermediate, top_k = config["hidden_size"], config["intermediate_size"], config["num_experts_per_tok"]
        active = top_k * 3 * hidden * intermediate * 2  # the chosen experts' bf16 bytes
        reading = [active / b for b in column("bandwidth")]
        print(f"\nread bandwidth (bench --what bandwidth, 2 threads): {spread(column('bandwidth'), 1e-9)} GB/s")
        print(f"MoE block, 1 token, bf16 in place: {spread(column('moe_1_bf16'), 1e3)} ms; reading its "
              f"{active / 1e6:.0f} MB of experts at that bandwidth: {spread(reading, 1e3)} ms; ratio "
              f"{spread([a / b for a, b in zip(column('moe_1_bf16'), reading)])}")
        print(f"MoE block, 512 tokens, f32: {spread(column('moe_512_f32'), 1e3, 0)} ms, "
              f"{spread(column('moe_512_gflops'), 1, 1)} GFLOP/s = "
              f"{spread([a / b for a, b in zip(column('moe_512_gflops'), column('linear_512'))], 100, 0)}% of the "
              f"kernel's {spread(column('linear_512'), 1, 1)}; transformers {spread(column('transformers_moe_512'), 1e3, 0)} ms, "
              f"speed-up {spread([a / b for a, b in zip(column('transformers_moe_512'), column('moe_512_f32'))])}x")
        print("\n| full forward | moeckpt, ms | transformers, ms | llama.cpp, ms | moeckpt peak anon, MB |\n|---|---|---|---|---|")
        for tokens in TOKENS:
            llama = spread(column(f"llama_forward_{tokens}"), 1e3, 1) if f"llama_forward_{tokens}" in rounds["forward"][0] else "-"
            print(f"| {tokens} tokens | {spread(column(f'forward_{tokens}'), 1e3, 1)} | "
                  f"{spread(column(f'transformers_forward_{tokens}'), 1e3, 1)} | {llama} | "
                  f"{spread(column(f'peak_anon_{tokens}'), 1e-6, 0)} |")


if __name__ == "__main__":
    main()
