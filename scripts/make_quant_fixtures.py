#!/usr/bin/env python3
"""Write fixtures/gguf/quants.safetensors: float32 rows and their Q8_0 and Q4_0 blocks as the
official `gguf` package quantizes them (gguf.quants, "bit-exact with ggml-quants.c"), and the
values its dequantization gives. The rows include an all-zero block, ties at .5 after scaling,
equal largest magnitudes of both signs, a scale below F16's range and large values (a subnormal block
would overflow 1 / d: undefined in the reference).

    /work/venv-fix/bin/python scripts/make_quant_fixtures.py     # gguf==0.19.0 (requirements-fixtures.txt)
"""
from pathlib import Path

import numpy as np
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(16)
rows = [
    rng.standard_normal(256).astype(np.float32),
    (rng.standard_normal(256) * 1e-3).astype(np.float32),
    (rng.standard_normal(256) * 3e4).astype(np.float32),
    np.concatenate([np.zeros(32), np.arange(-16, 16) * 0.5, np.full(32, -2.0), np.full(32, 2.0),
                    np.linspace(-127, 127, 32), [7.0, -7.0] * 16, np.full(32, 1e-30), rng.integers(-8, 8, 32) * 0.25]).astype(np.float32),
]
data = np.stack(rows)
tensors = {"x": data}
for name, qtype in [("q8_0", T.Q8_0), ("q4_0", T.Q4_0)]:
    blocks = quantize(data, qtype)
    tensors[name] = np.ascontiguousarray(blocks)
    tensors[name + ".dequantized"] = np.ascontiguousarray(dequantize(blocks, qtype).astype(np.float32))
out = ROOT / "fixtures" / "gguf" / "quants.safetensors"
save_file(tensors, out, metadata={"gguf": "0.19.0"})
print("wrote", out, {k: (v.dtype, v.shape) for k, v in tensors.items()})
