#!/usr/bin/env python3
"""moeckpt against llama.cpp on the same weights (issue 21), every dtype, one run, rounds
interleaved, medians with their spread (docs/PERFORMANCE.md, "Against llama.cpp").

    python scripts/bench_llamacpp.py /data/llamacpp-bench --llama-python /work/venv-llama/bin/python [--rounds 3]

- The model: a transformers Mixtral with hidden 1024, intermediate 3584, 8 experts top-2, 4
  layers, vocab 32000 (random, seeded), saved as float32.
- The weights: one GGUF per dtype (f32, f16, bf16, q8_0, q4_0), written by `moeckpt convert
  --dtype` (byte for byte the file llama.cpp's converter writes: docs/GGUF.md), and q4_k_m, made
  from the f32 file by llama.cpp's own quantizer. Both engines read that same file.
- Each round, each dtype: `moeckpt bench FILE --what forward` on 1 and 512 tokens (for bf16,
  q8_0, q4_0 and q4_k_m, also with `--arithmetic ggml`, llama.cpp's own arithmetic), and llama.cpp
  (llama-cpp-python 0.3.36, 2 threads, f32 KV cache, every position's logits, as moeckpt computes
  them) on the same token counts; and the machine's read bandwidth and kernel peak
  (`bench --what bandwidth`, `--what linear`) in the same round.

Then the floors each engine is held to on this machine, from the same rounds (`floors`):
- prefill in exact arithmetic: every product an fp32 fused multiply-add, so the 512-token pass
  takes at least its multiply-adds at the kernel peak; llama.cpp's time over that floor is the
  highest speedup exact arithmetic can reach here;
- one token, any arithmetic: at least the bytes one token reads (every matrix, the two chosen
  experts', one embedding row) at the read bandwidth.

Run with the fixtures venv (torch, transformers: scripts/requirements-fixtures.txt); llama.cpp
through `--llama-python`. Never run by CI.
"""
import argparse, json, statistics, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real_shape import ONE_TOKEN_REPEAT, bench, log, run, spread  # noqa: E402

DTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m")
# Also timed with `--arithmetic ggml` (llama.cpp's integer products on these blocks, its BF16 pairs).
GGML_ARITHMETIC = ("bf16", "q8_0", "q4_0", "q4_k_m")
# Q4_K_M (Q4_K with Q5_K, Q6_K and Q8_0 where llama.cpp's recipe puts them) is made from the f32
# file by llama.cpp's own quantizer, through llama-cpp-python.
QUANTIZE = """
import ctypes, sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype, params.nthread = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
"""
SHAPE = dict(vocab_size=32000, hidden_size=1024, intermediate_size=3584, num_hidden_layers=4, num_attention_heads=8,
             num_key_value_heads=8, num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=4096)


def build(work: Path) -> Path:
    source = work / "source"
    if (source / "config.json").exists():
        return source
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM
    torch.manual_seed(0)
    MixtralForCausalLM(MixtralConfig(**SHAPE)).save_pretrained(source)
    return source


def bytes_per_token(gguf: Path) -> float:
    """The bytes one token's pass reads: every tensor but the embedding (one row of it),
    top_k / experts of each expert tensor."""
    from gguf import GGUFReader
    reader = GGUFReader(gguf)
    field = lambda suffix: next(int(f.parts[-1][0]) for name, f in reader.fields.items() if name.endswith(suffix))
    share = field(".expert_used_count") / field(".expert_count")
    read = 0.0
    for tensor in reader.tensors:
        if tensor.name == "token_embd.weight":
            read += tensor.n_bytes / tensor.shape[-1]
        else:
            read += tensor.n_bytes * (share if "_exps." in tensor.name else 1.0)
    return read


def round_(args, files: dict) -> dict:
    m = args.moeckpt
    result = {"bandwidth": bench(m, "--what", "bandwidth", "--repeat", 5)["gflops"],
              "peak": bench(m, "--what", "linear", "--tokens", 512, "--hidden", SHAPE["hidden_size"], "--intermediate",
                            SHAPE["intermediate_size"], "--repeat", 3)["gflops"]}
    for dtype, gguf in files.items():
        for tokens in (1, 512):
            repeat = ONE_TOKEN_REPEAT if tokens == 1 else 3
            timing = bench(m, gguf, "--what", "forward", "--tokens", tokens, "--repeat", repeat)
            result[f"moeckpt {dtype} {tokens}"] = timing["median"]
            if tokens == 512:  # the exact prefill floor's work
                result[f"flop {dtype} 512"] = timing["gflops"] * 1e9 * timing["median"]
            if dtype in GGML_ARITHMETIC:
                result[f"moeckpt-ggml {dtype} {tokens}"] = bench(
                    m, gguf, "--what", "forward", "--tokens", tokens, "--repeat", repeat, "--arithmetic", "ggml")["median"]
        if args.llama_python:
            theirs = json.loads(run([args.llama_python, str(Path(__file__).parent / "bench_real_shape.py"), "--worker", "llama",
                                     str(gguf)]))
            for tokens in (1, 512):
                result[f"llama {dtype} {tokens}"] = theirs[f"forward_{tokens}"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--moeckpt", default=".build/release/moeckpt")
    parser.add_argument("--llama-python", help="a Python with llama-cpp-python (left out without it)")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source = build(args.work)
    files = {}
    for dtype in args.dtypes.split(","):
        files[dtype] = args.work / f"model-{dtype}.gguf"
        if files[dtype].exists():
            continue
        log(f"writing {files[dtype].name}")
        if dtype == "q4_k_m":
            f32 = args.work / "model-f32.gguf"
            if not f32.exists():
                run([args.moeckpt, "convert", str(source), str(f32), "--dtype", "f32", "-q"])
            run([args.llama_python, "-c", QUANTIZE, str(f32), str(files[dtype])])
        else:
            run([args.moeckpt, "convert", str(source), str(files[dtype]), "--dtype", dtype, "-q"])
    one_token = {dtype: bytes_per_token(gguf) for dtype, gguf in files.items()}
    rounds = []
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        rounds.append(round_(args, files))
    values = lambda key: [rd[key] for rd in rounds if key in rd]
    print(f"read bandwidth {spread(values('bandwidth'))} GB/s, kernel peak (512 tokens, f32) {spread(values('peak'))} GFLOP/s")
    print("| dtype | arithmetic | 512-token prefill, llama.cpp / moeckpt (ms) | speedup | 1 token, llama.cpp / moeckpt (ms) | speedup |")
    print("|---|---|---|---|---|---|")
    for dtype in files:
        for engine, arithmetic in (("moeckpt", "exact"), ("moeckpt-ggml", "ggml")):
            if not values(f"{engine} {dtype} 1"):
                continue
            cells = []
            for tokens in (512, 1):
                ours, theirs = values(f"{engine} {dtype} {tokens}"), values(f"llama {dtype} {tokens}")
                ratio = "-" if not theirs else spread([t / o for t, o in zip(theirs, ours)]) + "x"
                cells += [f"{spread(theirs, 1e3, 1) if theirs else '-'} / {spread(ours, 1e3, 1)}", ratio]
            print(f"| {dtype} | {arithmetic} | " + " | ".join(cells) + " |")
    floors(files, one_token, rounds)
    print(json.dumps(rounds), file=sys.stderr)


def floors(files: dict, one_token: dict, rounds: list) -> None:
    """Each round's floors (module docstring), and each engine's time over them: how far above
    the floor it runs (llama.cpp's is the highest speedup an engine held to the floor could reach)."""
    print()
    print("| dtype | prefill: exact floor (ms) | llama.cpp / floor | moeckpt exact / floor | 1 token: bytes (MB) | read floor (ms) "
          "| llama.cpp / floor | moeckpt exact / floor | moeckpt ggml / floor |")
    print("|---|---|---|---|---|---|---|---|---|")

    def over(floor, key):
        times = [rd[key] for rd in rounds if key in rd]
        return spread([t / f for t, f in zip(times, floor)]) + "x" if times else "-"

    for dtype in files:
        prefill = [rd[f"flop {dtype} 512"] / (rd["peak"] * 1e9) for rd in rounds]
        reading = [one_token[dtype] / (rd["bandwidth"] * 1e9) for rd in rounds]
        print(f"| {dtype} | {spread(prefill, 1e3, 1)} | {over(prefill, f'llama {dtype} 512')} | "
              f"{over(prefill, f'moeckpt {dtype} 512')} | {one_token[dtype] / 1e6:.1f} | {spread(reading, 1e3, 1)} | "
              f"{over(reading, f'llama {dtype} 1')} | {over(reading, f'moeckpt {dtype} 1')} | "
              f"{over(reading, f'moeckpt-ggml {dtype} 1')} |")


if __name__ == "__main__":
    main()
