#!/usr/bin/env python3
"""Generate fixtures/hostile/: HDF5 files from the hostile-input review (issue 12), written by h5py.

Each file breaks one rule of docs/SECURITY.md (or is its allowed counterpart); the Swift tests
(HostileInputTests) check moeckpt's answer. Deterministic; re-runnable (the directory is
rewritten). Needs h5py and numpy at the versions of scripts/requirements-fixtures.txt:

    /work/venv/bin/python scripts/make_hostile_fixtures.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import json
import struct

import h5py
import numpy as np

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
from fixture_util import fresh_dir, log  # noqa: E402

OUT = SCRIPTS.parent / "fixtures" / "hostile"
VALUES = np.arange(8, dtype="<f4") * 0.5


def new_file(name: str) -> h5py.File:
    # Fixed library-version bounds and no timestamps: the same bytes on every run.
    return h5py.File(OUT / name, "w", libver=("v110", "v110"), track_order=False)


def virtual(name: str, source_file: str, source_dataset: str) -> None:
    with new_file(name) as f:
        if source_file == ".":
            f.create_dataset("source", data=VALUES)
        layout = h5py.VirtualLayout(shape=VALUES.shape, dtype="<f4")
        layout[:] = h5py.VirtualSource(source_file, source_dataset, shape=VALUES.shape)
        # create_virtual_dataset's steps, with object times off (the file is then reproducible).
        dcpl = layout._get_dcpl(f.filename)
        dcpl.set_fill_value(np.array([-1.0], dtype="<f4"))
        dcpl.set_obj_track_times(False)
        space = h5py.h5s.create_simple(VALUES.shape)
        h5py.h5d.create(f.id, name=b"weight", tid=h5py.h5t.py_create(np.dtype("<f4"), logical=1), space=space, dcpl=dcpl)


def main() -> None:
    fresh_dir(OUT)
    # A source file for the virtual datasets that name another file.
    with new_file("vds-source.h5") as f:
        f.create_dataset("secret", data=VALUES)
    virtual("vds-relative.h5", "vds-source.h5", "secret")  # another file beside it: refused
    virtual("vds-absolute.h5", "/nonexistent/moeckpt/missing.h5", "secret")  # missing: refused, not fill values
    virtual("vds-same-file.h5", ".", "source")  # this same file: allowed, reads VALUES

    # 2^27 f32 fill values (512 MiB) in a file of a few KB: gzip-chunked, no chunk ever written.
    with new_file("gzip-fill-512MiB.h5") as f:
        f.create_dataset("weight", shape=(1 << 27,), dtype="<f4", chunks=(1 << 18,), compression="gzip",
                         fillvalue=0.25)
    # Two datasets whose paths both become the tensor name "a.b".
    with new_file("name-collision.h5") as f:
        f.create_dataset("a.b", data=VALUES)
        f.create_dataset("a/b", data=VALUES)

    write_native_cases()
    (OUT / "README.md").write_text(README)
    for path in sorted(OUT.iterdir()):
        log(f"{path.name}: {path.stat().st_size} bytes")


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli, reflected 0x82F63B78), bit by bit: independent of moeckpt's."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


TINY_CONFIG = {"model_type": "mixtral", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4,
               "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 2,
               "num_local_experts": 2, "num_experts_per_tok": 1, "tie_word_embeddings": False}


def tiny_tensors() -> list[tuple[str, list[int]]]:
    h, e, i, v, q, kv = 4, 2, 4, 8, 4, 2
    layer = [("attn_norm", [h]), ("attn.q", [q, h]), ("attn.k", [kv, h]), ("attn.v", [kv, h]), ("attn.o", [h, q]),
             ("ffn_norm", [h]), ("moe.router", [e, h]), ("moe.gate", [e, i, h]), ("moe.up", [e, i, h]),
             ("moe.down", [e, h, i])]
    return [("embed", [v, h])] + [("layers.0." + n, s) for n, s in layer] + [("final_norm", [h]), ("lm_head", [v, h])]


def native(name: str, *, model=TINY_CONFIG, fields=None, crc_case=str.lower, pad_byte=0, flip_data=False) -> None:
    """A .moeckpt file written from FORMAT.md (not by moeckpt), with one rule broken by the options."""
    rng_values = np.random.default_rng(20261202)
    tensors, data, offset = [], b"", 0
    for tensor_name, shape in tiny_tensors():
        payload = rng_values.standard_normal(int(np.prod(shape))).astype("<f4").tobytes()
        pad = (-offset) % 64
        data += bytes([pad_byte if tensors else 0]) * pad
        offset += pad
        tensors.append({"name": tensor_name, "dtype": "F32", "shape": shape, "offset": offset, "length": len(payload),
                        "crc32c": crc_case(f"{crc32c(payload):08x}")})
        data += payload
        offset += len(payload)
    if flip_data:
        data = data[:100] + bytes([data[100] ^ 0x10]) + data[101:]
    header = {"format": "moeckpt", "version": [1, 0], "checksum": "crc32c"}
    if model is not None:
        header["model"] = model
    header.update({"layout": "canonical", "source_layout": "hf", "metadata": {}})
    header.update(fields or {})
    width = 20  # data_offset written padded, as FORMAT.md allows
    placeholder = json.dumps({**header, "data_offset": 0, "data_length": len(data), "tensors": tensors},
                             separators=(",", ":")).replace('"data_offset":0', '"data_offset":' + " " * (width - 1) + "0")
    data_offset = -(-(32 + len(placeholder)) // 4096) * 4096
    text = placeholder.replace('"data_offset":' + " " * (width - 1) + "0",
                               '"data_offset":' + str(data_offset).rjust(width)).encode()
    preamble = b"MOECKPT\0" + struct.pack("<HHIQ", 1, 0, 0, len(text))
    checksum = crc32c(text, crc32c(preamble))
    (OUT / name).write_bytes(preamble + struct.pack("<II", checksum, 0) + text
                             + b"\0" * (data_offset - 32 - len(text)) + data)


def write_native_cases() -> None:
    native("native-sound.moeckpt")
    native("native-format-gguf.moeckpt", fields={"format": "gguf"})
    native("native-checksum-md5.moeckpt", fields={"checksum": "md5"})
    native("native-layout-evil.moeckpt", fields={"layout": "evil"})
    native("native-version-mismatch.moeckpt", fields={"version": [1, 1]})
    native("native-uppercase-crc.moeckpt", crc_case=str.upper)
    native("native-nonzero-padding.moeckpt", pad_byte=7)
    native("native-flipped-bit.moeckpt", flip_data=True)
    native("native-huge-layers.moeckpt", model={**TINY_CONFIG, "num_hidden_layers": 16777216})
    native("native-huge-experts.moeckpt", model={**TINY_CONFIG, "num_local_experts": 16777216})


README = """# Hostile inputs (issue 12)

Written by `scripts/make_hostile_fixtures.py` with h5py; each file breaks one rule of
[docs/SECURITY.md](../../docs/SECURITY.md), checked by `Tests/MoECkptCLITests/HostileInputTests.swift`.

| file | what it is | moeckpt's answer |
|---|---|---|
| `vds-relative.h5` | dataset `weight` is virtual, its source `secret` in `vds-source.h5` beside it | refused (exit 2): reads only data inside the file |
| `vds-absolute.h5` | the same with an absolute source path that does not exist (libhdf5 would give fill values) | refused (exit 2) |
| `vds-same-file.h5` | virtual dataset drawing on `/source` of the same file (`.`) | read: `weight` = 0, 0.5, ..., 3.5 |
| `vds-source.h5` | the source file of `vds-relative.h5` | an ordinary file |
| `gzip-fill-512MiB.h5` | a gzip-chunked f32 dataset of 2^27 fill values (0.25), no chunk written: 512 MiB from a few KB | converted chunk by chunk, memory bounded |
| `name-collision.h5` | datasets `/a.b` and `/a/b`, which both map to the tensor `a.b` | refused, naming both |

The `.moeckpt` files are written by this script from docs/FORMAT.md (its own CRC-32C), not by
moeckpt: a tiny Mixtral (one layer, hidden 4, two experts), every header checksum valid.

| file | what it breaks | moeckpt's answer (`inspect --check`, `convert`) |
|---|---|---|
| `native-sound.moeckpt` | nothing | reads, checks and verifies its checksums |
| `native-format-gguf.moeckpt` | `"format": "gguf"` | refused: header is malformed |
| `native-checksum-md5.moeckpt` | `"checksum": "md5"` | refused: header is malformed |
| `native-layout-evil.moeckpt` | `"layout": "evil"` | refused: header is malformed |
| `native-version-mismatch.moeckpt` | header `version` [1, 1], preamble 1.0 | refused: header is malformed |
| `native-uppercase-crc.moeckpt` | tensor checksums in upper-case hex | refused: header is malformed |
| `native-nonzero-padding.moeckpt` | padding between tensors is 7, not 0 | refused by `inspect --check` and `convert` |
| `native-flipped-bit.moeckpt` | one data bit flipped (the tensor's checksum no longer matches) | refused by `inspect --check` and `convert` |
| `native-huge-layers.moeckpt` | its model description plans 2^24 layers | the file is sound; the model is refused from counts alone |
| `native-huge-experts.moeckpt` | its model description plans 2^24 experts | the same |
"""

if __name__ == "__main__":
    main()
