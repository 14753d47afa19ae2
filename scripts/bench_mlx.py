#!/usr/bin/env python3
"""moeckpt against mlx-lm on the same MLX-quantized checkpoints (issue 21, docs/MLX.md "Speed"),
rounds interleaved, medians with their spread.

    python scripts/bench_mlx.py /data/llamacpp-bench [--rounds 3] [--quantizations affine:4,mxfp4]

- The model: bench_llamacpp.py's transformers Mixtral (hidden 1024, intermediate 3584, 8 experts
  top-2, 4 layers, vocab 32000), made there or here.
- The checkpoints: one per quantization, written by `moeckpt convert --names mlx --quantize Q`,
  which is byte for byte what mlx-lm's convert writes (scripts/check_mlx_quantized.py).
- Each round, each quantization: `moeckpt bench DIR --what forward` on 1 and 128 tokens (2
  threads), and mlx-lm's model on the same token ids on MLX's CPU device (every position's
  logits, as moeckpt computes them; MLX picks its own CPU threads). 128, not 512: MLX's CPU
  device is slow enough that a 512-token prefill takes a minute.

Run with a Python that has mlx[cpu] 0.32.4 and mlx-lm 0.32.2 (and, to make the model, torch and
transformers: scripts/requirements-fixtures.txt). Never run by CI.
"""
import argparse, json, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_llamacpp import build  # noqa: E402
from bench_real_shape import ONE_TOKEN_REPEAT, bench, log, run, spread, timed  # noqa: E402

QUANTIZATIONS = ("affine:4", "affine:8", "mxfp4")
# mlx 0.32.4's CPU device takes about 0.5 s per token of a prefill here (a 512-token one took 67 s):
# prefills of 128 tokens, 2 repetitions.
PREFILL = 128


def mlx_worker(checkpoint: str) -> None:
    import mlx.core as mx
    from mlx_lm.utils import load_model
    mx.set_default_device(mx.cpu)
    model, _ = load_model(Path(checkpoint))
    result = {}
    for tokens in (1, PREFILL):
        ids = mx.array([[(i * 7919) % 32000 for i in range(tokens)]])
        result[f"forward_{tokens}"] = timed(lambda: mx.eval(model(ids)), ONE_TOKEN_REPEAT if tokens == 1 else 2)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--moeckpt", default=".build/release/moeckpt")
    parser.add_argument("--quantizations", default=",".join(QUANTIZATIONS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return mlx_worker(args.worker)
    args.work.mkdir(parents=True, exist_ok=True)
    source = build(args.work)
    dirs = {}
    for q in args.quantizations.split(","):
        dirs[q] = args.work / ("mlx-" + q.replace(":", "-"))
        if not (dirs[q] / "config.json").exists():
            log(f"writing {dirs[q].name}")
            run([args.moeckpt, "convert", str(source), str(dirs[q]), "--names", "mlx", "--quantize", q, "-q"])
    rounds = []
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        result = {}
        for q, directory in dirs.items():
            for tokens in (1, PREFILL):
                repeat = ONE_TOKEN_REPEAT if tokens == 1 else 3
                result[f"moeckpt {q} {tokens}"] = bench(args.moeckpt, directory, "--what", "forward", "--tokens", tokens,
                                                        "--repeat", repeat)["median"]
            theirs = json.loads(run([sys.executable, __file__, str(args.work), "--worker", str(directory)]))
            for tokens in (1, PREFILL):
                result[f"mlx {q} {tokens}"] = theirs[f"forward_{tokens}"]
        rounds.append(result)
    values = lambda key: [rd[key] for rd in rounds]
    print(f"| quantization | {PREFILL}-token prefill, mlx-lm / moeckpt (ms) | speedup | 1 token, mlx-lm / moeckpt (ms) | speedup |")
    print("|---|---|---|---|---|")
    for q in dirs:
        cells = []
        for tokens in (PREFILL, 1):
            ours, theirs = values(f"moeckpt {q} {tokens}"), values(f"mlx {q} {tokens}")
            cells += [f"{spread(theirs, 1e3, 1)} / {spread(ours, 1e3, 1)}", spread([t / o for t, o in zip(theirs, ours)]) + "x"]
        print(f"| {q} | " + " | ".join(cells) + " |")
    print(json.dumps(rounds), file=sys.stderr)


if __name__ == "__main__":
    main()
