#!/usr/bin/env python3
"""mlx-lm itself on moeckpt's quantized MLX output (issue 20): for each source model of
fixtures/mlx/sources and several bit widths and group sizes, `moeckpt convert SRC OUT --names mlx
--quantize affine:BITS:GROUP` or `mxfp4`/`mxfp8`/`nvfp4` (and `--dtype bf16`/`f16`, cast before
quantizing as mlx-lm casts),
then mlx-lm's own `convert` of the same source; every tensor must
be equal, bit for bit, and mlx-lm's `load_model` of moeckpt's output must give exactly the logits
of its own. Not run by CI.

    /work/venv-fix/bin/python scripts/check_mlx_quantized.py [.build/release/moeckpt]
    # requirements-fixtures.txt, mlx[cpu]==0.32.4, mlx-lm==0.32.2
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx_lm import convert
from mlx_lm.utils import load_model

ROOT = Path(__file__).resolve().parent.parent
MOECKPT = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/debug/moeckpt")
TOKENIZER = ROOT / "fixtures/tokenizers/byte-level"
IDS = mx.array([[1, 17, 250, 3, 99, 42, 383, 7, 120, 64, 5, 300]])


def tensors(directory: Path) -> dict:
    """name -> (dtype, shape, bytes), read by mlx itself (numpy has no bfloat16)."""
    out = {}
    for f in directory.glob("model*.safetensors"):
        for name, array in mx.load(str(f)).items():
            out[name] = (str(array.dtype), array.shape, np.array(array.view(mx.uint8)).tobytes())
    return out


def main() -> int:
    failures = 0
    for family in ("mixtral", "qwen3_moe"):
        source = ROOT / "fixtures/mlx/sources" / family
        for bits, group, dtype in ((1, 32, None), (2, 32, None), (3, 64, None), (4, 32, None), (4, 128, None), (5, 64, None),
                                   (6, 128, None), (8, 32, None), (4, 64, "bfloat16"), (3, 32, "float16"),
                                   ("mxfp4", 0, None), ("mxfp8", 0, None), ("nvfp4", 0, None), ("mxfp4", 0, "bfloat16"),
                                   ("nvfp4", 0, "float16")):
            mode = bits if isinstance(bits, str) else "affine"
            spec = mode if mode != "affine" else f"affine:{bits}:{group}"
            with tempfile.TemporaryDirectory() as tmp:
                ours, theirs, hub = Path(tmp) / "ours", Path(tmp) / "theirs", Path(tmp) / "hub"
                cast = ["--dtype", {"bfloat16": "bf16", "float16": "f16"}[dtype]] if dtype else []
                subprocess.run([MOECKPT, "convert", str(source), str(ours), "--names", "mlx",
                                "--quantize", spec, "--quiet"] + cast, check=True)
                shutil.copytree(source, hub)
                for name in ("tokenizer.json", "tokenizer_config.json"):
                    shutil.copy(TOKENIZER / name, hub / name)
                if mode == "affine":
                    convert(hf_path=str(hub), mlx_path=str(theirs), quantize=True, q_bits=bits, q_group_size=group, dtype=dtype)
                else:
                    convert(hf_path=str(hub), mlx_path=str(theirs), quantize=True, q_mode=mode, dtype=dtype)
                a, b = tensors(ours), tensors(theirs)
                differing = sorted(k for k in b if a.get(k) != b[k])
                extra = sorted(set(a) - set(b))
                logits = [np.array(load_model(d)[0](IDS).astype(mx.float32)) for d in (ours, theirs)]
                same_logits = np.array_equal(logits[0], logits[1])
                ok = not differing and not extra and same_logits
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {family} {spec}{' ' + dtype if dtype else ''}: {len(b)} tensors, "
                      f"{len(differing)} differ, {len(extra)} extra, logits {'identical' if same_logits else 'differ'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
