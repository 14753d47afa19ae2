#!/usr/bin/env python3
"""The files moeckpt writes beside the weights, read by the tools that consume them (issue 17).
Converts fixtures with `moeckpt convert` and checks, with each tool's own reader:

- transformers `from_pretrained`: a `--dtype bf16` output loads as bfloat16 (config.json's
  `dtype`); an hf -> hf conversion gives the source's config, every attribute equal; a sharded
  output's index.json `metadata.total_parameters` is the model's `num_parameters()`.
- transformers `AutoTokenizer`: the tokenizer travels to a directory output and encodes as the
  source's does.
- h5py: a `--dtype bf16` HDF5 output's datasets carry `dtype = "BF16"` (h5py itself reads the
  custom float as float32).
- mlx-lm `load`: a `--names mlx` output of a transformers 5 config (`rope_parameters` only) gives
  transformers' logits (it reads `rope_theta` at the top level).
- the safetensors library: a tied model's Mistral layout holds `output.weight` equal to
  `tok_embeddings.weight` (mistral-inference loads it strictly; it is not installed here).

Not run by CI. Prints one line per check and exits 1 if any fails.

    /work/venv-fix/bin/python scripts/check_ecosystem.py [.build/release/moeckpt]   # requirements-fixtures.txt, mlx[cpu]==0.32.4, mlx-lm==0.32.2
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
MOECKPT = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/moeckpt")
FAILED = []


def check(what: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'}  {what}{': ' + detail if detail else ''}")
    if not ok:
        FAILED.append(what)


def convert(source: Path, out: Path, *options: str) -> None:
    subprocess.run([MOECKPT, "convert", str(source), str(out), "-q", *options], check=True, capture_output=True)


def logits(model, ids) -> np.ndarray:
    model.config._attn_implementation = "eager"
    model.config._experts_implementation = "eager"
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float().numpy()


def main() -> None:
    mixtral = ROOT / "fixtures/models/tiny-mixtral"
    expected = load_file(mixtral / "expected.safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        convert(mixtral, out / "bf16", "--dtype", "bf16")
        model = AutoModelForCausalLM.from_pretrained(out / "bf16")
        check("--dtype bf16 loads as bfloat16 in from_pretrained", model.dtype == torch.bfloat16, str(model.dtype))

        convert(mixtral, out / "hf", "--names", "hf")
        source, written = AutoConfig.from_pretrained(mixtral).to_dict(), AutoConfig.from_pretrained(out / "hf").to_dict()
        differ = sorted(k for k in set(source) | set(written) if source.get(k) != written.get(k) and k != "_name_or_path")
        check("hf -> hf keeps every config attribute", not differ, ", ".join(differ))

        convert(mixtral, out / "sharded", "--max-shard-size", "25KB")
        index = json.loads((out / "sharded/model.safetensors.index.json").read_text())
        parameters = AutoModelForCausalLM.from_pretrained(out / "sharded").num_parameters()
        check("index.json total_parameters is num_parameters()", index["metadata"].get("total_parameters") == parameters,
              f"{index['metadata'].get('total_parameters')} vs {parameters}")

        tokenizer_source = ROOT / "fixtures/tokenizers/byte-level"
        convert(tokenizer_source, out / "tok", "--dtype", "bf16")
        samples = json.loads((tokenizer_source / "encodings.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(out / "tok")
        check("the tokenizer travels and encodes as the source's",
              [tokenizer.encode(s) for s in samples["samples"]] == samples["original"])

        convert(mixtral, out / "model.h5", "--dtype", "bf16")
        with h5py.File(out / "model.h5") as f:
            datasets = []
            f.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
            marked = [d.attrs.get("dtype") in ("BF16", b"BF16") for d in datasets]
            check("bf16 HDF5 datasets say BF16 to h5py", all(marked) and len(marked) == 41, f"{sum(marked)} of {len(marked)}")

        import mlx.core as mx
        from mlx_lm.utils import load_model
        convert(mixtral, out / "mlx", "--names", "mlx")
        mlx_model, _ = load_model(out / "mlx")  # the weights and config.json (the fixture has no tokenizer)
        got = np.array(mlx_model(mx.array(expected["input_ids"].astype(np.int32))).astype(mx.float32))
        error = float(np.abs(got - expected["logits"]).max())
        check("mlx-lm loads --names mlx with transformers' logits", error < 1e-4, f"max |error| {error:.2g}")

        variant = ROOT / "fixtures/models/tiny-mixtral-variant"
        refused = subprocess.run([MOECKPT, "convert", str(variant), str(out / "mlx-variant"), "--names", "mlx"], capture_output=True, text=True)
        check("a Mixtral mlx-lm cannot run (head_dim, window) is refused", refused.returncode == 2, refused.stderr.strip())
        convert(variant, out / "mistral", "--names", "mistral")
        weights = load_file(out / "mistral/consolidated.safetensors")
        params = json.loads((out / "mistral/params.json").read_text())
        check("a tied model's Mistral layout holds output.weight",
              np.array_equal(weights.get("output.weight"), weights["tok_embeddings.weight"]) and "tied_embeddings" not in params)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
