#!/usr/bin/env python3
"""llama.cpp itself on moeckpt's GGUF output: converts fixture models with `moeckpt convert X
out.gguf` (optionally `--dtype bf16|q8_0|q4_0`), reads each file with the official gguf
package's GGUFReader (tensor count, names and types against `moeckpt inspect --json`), loads it in
llama.cpp (llama-cpp-python, built from source, f32 KV cache), evaluates the fixture's token ids
sequence by sequence and prints the largest |logit - transformers' logit| per sequence. Then the
tokenizer fixtures (fixtures/tokenizers/): moeckpt's GGUF of each, tokenized by llama.cpp, against
the ids of the original Hugging Face tokenizer and of llama.cpp's own converter's GGUF. Not run by CI.

    python3 -m venv /work/venv-llama && /work/venv-llama/bin/pip install llama-cpp-python==0.3.36 safetensors numpy gguf==0.19.0
    /work/venv-llama/bin/python scripts/check_gguf_llama.py [.build/release/moeckpt]
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import json

import llama_cpp
import numpy as np
from gguf import GGUFReader
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
MOECKPT = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/moeckpt")
CASES = [
    ("models/tiny-mixtral", None), ("models/tiny-mixtral", "bf16"), ("models/tiny-mixtral-bf16", None),
    ("models/families/qwen3_moe", None), ("models/families/qwen3_moe", "bf16"), ("models/families/qwen3_moe-bf16", None),
    ("models/families/qwen3_moe", "q8_0"), ("models/families/qwen3_moe", "q4_0"), ("models/tiny-mixtral", "q8_0"),
    ("models/families/qwen2_moe", None), ("models/families/granitemoe", None), ("models/families/deepseek_v3", None),
]
# deepseek_v3-yarn (mscale 1.0, mscale_all_dim 0.8) is refused for GGUF: llama.cpp takes them equal.


def logits_diffs(gguf: Path, expected: dict) -> list[float]:
    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=64, logits_all=True, verbose=False, type_k=0, type_v=0, n_threads=2)
    out = []
    for i, row in enumerate(expected["input_ids"]):
        model.reset()
        model.eval([int(t) for t in row])
        got = np.array(model.scores[: len(row)], dtype=np.float32)
        out.append(float(np.abs(got - expected["logits"][i]).max()))
    return out


def tokenize(gguf: Path, samples: list[str]) -> list[list[int]]:
    # add_bos=True asks for the special tokens the vocabulary itself adds (none, or BOS).
    model = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return [model.tokenize(s.encode(), add_bos=True, special=True) for s in samples]


def check_tokenizers(tmp: str) -> None:
    for name in ("llama-bpe", "byte-level", "sentencepiece"):
        source = ROOT / "fixtures" / "tokenizers" / name
        out = Path(tmp) / f"tokenizer-{name}.gguf"
        subprocess.run([MOECKPT, "convert", str(source), str(out), "-q"], check=True)
        encodings = json.loads((source / "encodings.json").read_text())
        ours, converter = tokenize(out, encodings["samples"]), tokenize(source / "converter.gguf", encodings["samples"])
        same_hf = sum(a == b for a, b in zip(ours, encodings["original"]))
        print(f"tokenizers/{name}: llama.cpp's ids from moeckpt's GGUF == from the converter's GGUF: {ours == converter}; "
              f"== the Hugging Face tokenizer's: {same_hf}/{len(ours)} samples")


def main() -> None:
    print(f"llama-cpp-python {llama_cpp.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        check_tokenizers(tmp)
        for fixture, dtype in CASES:
            out = Path(tmp) / (fixture.replace("/", "_") + (f"-{dtype}" if dtype else "") + ".gguf")
            command = [MOECKPT, "convert", str(ROOT / "fixtures" / fixture), str(out), "-q"] + (["--dtype", dtype] if dtype else [])
            subprocess.run(command, check=True)
            inspected = json.loads(subprocess.run([MOECKPT, "inspect", str(out), "--json"], check=True, capture_output=True).stdout)
            reader = GGUFReader(out)
            names = sorted(t.name for t in reader.tensors)
            assert names == sorted(t["name"] for t in inspected["tensors"]), f"{out}: tensor names differ"
            expected = load_file(ROOT / "fixtures" / fixture / "expected.safetensors")
            diffs = logits_diffs(out, expected)
            print(f"{fixture}{' --dtype ' + dtype if dtype else ''}: max |logits - transformers| per sequence "
                  + ", ".join(f"{d:.3g}" for d in diffs))


if __name__ == "__main__":
    main()
