#!/usr/bin/env python3
"""Write fixtures/gguf/names.json: for each llama.cpp architecture moeckpt names tensors for, the
tensor names gguf-py allows (constants.MODEL_TENSORS + TENSOR_NAMES, with `{bid}`) and the
metadata keys (constants.Keys.LLM / Keys.Attention / Keys.Rope formatted for the architecture).
The Swift tests check every name and key moeckpt writes in its `gguf` layout against it.

    /work/venv-fix/bin/python scripts/make_gguf_name_table.py     # gguf==0.19.0 (requirements-fixtures.txt)
"""
import importlib.metadata
import json
from pathlib import Path

import gguf
from gguf.constants import MODEL_ARCH, MODEL_ARCH_NAMES, MODEL_TENSORS, TENSOR_NAMES, Keys

ROOT = Path(__file__).resolve().parent.parent
ARCHES = [
    MODEL_ARCH.LLAMA, MODEL_ARCH.QWEN2MOE, MODEL_ARCH.QWEN3MOE, MODEL_ARCH.OLMOE, MODEL_ARCH.GRANITE_MOE, MODEL_ARCH.DEEPSEEK2,
    MODEL_ARCH.GPT_OSS,
]


def keys(arch: str) -> list[str]:
    out = []
    for group in (Keys.LLM, Keys.Attention, Keys.Rope):
        for name in dir(group):
            value = getattr(group, name)
            if isinstance(value, str) and value.startswith("{arch}.") and value.count("{") == 1:
                out.append(value.format(arch=arch))
    return sorted(set(out))


table = {
    "gguf_version": importlib.metadata.version("gguf"),
    "general": [Keys.General.ARCHITECTURE],
    "architectures": {},
}
for arch in ARCHES:
    name = MODEL_ARCH_NAMES[arch]
    table["architectures"][name] = {
        "tensors": sorted(TENSOR_NAMES[t] for t in MODEL_TENSORS[arch]),
        "keys": keys(name),
    }
out = ROOT / "fixtures" / "gguf" / "names.json"
out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
print(f"wrote {out}")
