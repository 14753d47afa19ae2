#!/usr/bin/env python3
"""llama.cpp's own logits on the GGUF fixtures fixtures/gguf/qwen3-moe-{q8_0,q4_0,q4_k_m,bf16},
the reference of `--arithmetic ggml` (docs/PERFORMANCE.md, "llama.cpp's arithmetic").

Each fixture's model.gguf is evaluated by llama.cpp (llama-cpp-python 0.3.36 built from source, 2
threads, f32 KV cache, every position's logits) on the token ids of its expected.safetensors, one
sequence at a time, into fixtures/gguf/NAME/llamacpp/expected.safetensors (`input_ids`, `logits`).
It also runs `moeckpt run` in both arithmetics and prints the largest |logit| difference of each
from llama.cpp; `atol` is 10 times ggml's (at least 1e-5), `rtol` 0. Not run by CI.

    python3 -m venv /work/venv-llama && /work/venv-llama/bin/pip install llama-cpp-python==0.3.36 safetensors==0.8.0 numpy==2.4.6
    /work/venv-llama/bin/python scripts/make_llamacpp_logits.py [.build/release/moeckpt]
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import llama_cpp
import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
MOECKPT = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/moeckpt")
NAMES = ("qwen3-moe-q8_0", "qwen3-moe-q4_0", "qwen3-moe-q4_k_m", "qwen3-moe-bf16")


def llama_logits(gguf: Path, ids: np.ndarray) -> np.ndarray:
    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=64, logits_all=True, verbose=False, type_k=0, type_v=0, n_threads=2)
    rows = []
    for row in ids:
        model.reset()
        model.eval([int(t) for t in row])
        rows.append(np.array(model.scores[: len(row)], dtype=np.float32))
    return np.stack(rows)


def moeckpt_logits(gguf: Path, ids: np.ndarray, arithmetic: str, tmp: Path) -> np.ndarray:
    inputs, outputs = tmp / "inputs.safetensors", tmp / f"out-{arithmetic}.safetensors"
    save_file({"input_ids": ids}, str(inputs))
    subprocess.run([MOECKPT, "run", str(gguf), "--input", str(inputs), "--output", str(outputs), "--arithmetic", arithmetic],
                   check=True, capture_output=True)
    return load_file(str(outputs))["logits"]


def main() -> None:
    for name in NAMES:
        directory = ROOT / "fixtures" / "gguf" / name
        gguf = directory / "model.gguf"
        ids = np.ascontiguousarray(load_file(str(directory / "expected.safetensors"))["input_ids"].astype(np.int64))
        theirs = llama_logits(gguf, ids)
        with tempfile.TemporaryDirectory() as tmp:
            errors = {a: float(np.abs(moeckpt_logits(gguf, ids, a, Path(tmp)) - theirs).max()) for a in ("ggml", "exact")}
        measured = f"max |moeckpt - llama.cpp|: --arithmetic ggml {errors['ggml']:.3g}, exact {errors['exact']:.3g}"
        out = directory / "llamacpp"
        out.mkdir(exist_ok=True)
        save_file({"input_ids": ids, "logits": theirs}, str(out / "expected.safetensors"),
                  metadata={"reference": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), 2 threads, f32 KV cache",
                            "format": "np", "atol": f"{max(1e-5, 10 * errors['ggml']):.2g}", "rtol": "0", "measured": measured})
        print(f"{name}: max |logit| {np.abs(theirs).max():.3g}; {measured}")


if __name__ == "__main__":
    main()
