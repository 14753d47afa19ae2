#!/usr/bin/env python3
"""Write fixtures/gguf/quants.safetensors: float32 rows and their Q8_0 and Q4_0 blocks as the
official `gguf` package quantizes them (gguf.quants, "bit-exact with ggml-quants.c"), and the
values its dequantization gives; and random Q4_K, Q6_K and Q5_K blocks (F16 scales normal
numbers) with the values gguf.quants dequantizes them to (the types llama.cpp's Q4_K_M files hold). The rows include an all-zero block, ties at .5 after scaling,
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
for name, qtype, size, scale_offsets in [("q4_k", T.Q4_K, 144, (0, 2)), ("q6_k", T.Q6_K, 210, (208,)),
                                        ("q5_k", T.Q5_K, 176, (0, 2))]:
    blocks = rng.integers(0, 256, size=(8, size), dtype=np.uint8)
    for offset in scale_offsets:  # normal F16 scales, both signs
        halves = (rng.standard_normal(8) * 0.01).astype(np.float16).view(np.uint8).reshape(8, 2)
        blocks[:, offset:offset + 2] = halves
    tensors[name] = blocks
    tensors[name + ".dequantized"] = np.ascontiguousarray(dequantize(blocks, qtype).astype(np.float32))
out = ROOT / "fixtures" / "gguf" / "quants.safetensors"
save_file(tensors, out, metadata={"gguf": "0.19.0"})
print("wrote", out, {k: (v.dtype, v.shape) for k, v in tensors.items()})
