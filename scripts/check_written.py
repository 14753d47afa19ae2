#!/usr/bin/env python3
"""Check a checkpoint written by moeckpt against its source, using the
official safetensors library.

    check_written.py SRC OUT [--cast f32|f16|bf16] [--nan-any] [--cast-from DTYPES]

SRC and OUT are each a .safetensors file, a sharded checkpoint's
*.index.json, or a directory (holding model.safetensors.index.json, or a
single .safetensors file).

Without --cast: OUT must hold the same tensor names, dtypes, shapes and
identical bytes as SRC, and every OUT file's __metadata__ must contain SRC's
metadata (the union over SRC's shards).

With --cast DTYPE: every float tensor of SRC (dtypes listed by --cast-from,
default every byte-wide float dtype: F4/F6 are kept as they are) must appear in OUT with dtype DTYPE and bytes equal
to torch's `.to(DTYPE)` of SRC's values, bit for bit (F4/F6, which torch
cannot convert, are decoded with ml_dtypes to f32 first - exact).  Other
tensors (integers, bool, complex, floats not in --cast-from) must be
unchanged.  --nan-any accepts any NaN where torch produced a NaN (torch
writes every f32->bf16 NaN as 0xFFFF, for instance).

For a sharded OUT the index is also checked the way transformers reads it:
`metadata.total_size` equals the sum of tensor bytes, every weight_map entry
names an existing shard (inside the checkpoint directory) holding that
tensor, and every shard tensor is listed in the weight_map exactly once.

Exit status 0 on success, 1 with messages on mismatch, 2 on usage errors.
Needs the packages of scripts/requirements-fixtures.txt.  CI never runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import torch
from safetensors import safe_open

FLOAT_DTYPES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4", "F6_E2M3", "F6_E3M2"]
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
        "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
        "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
        "U64": 64}
TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
         "BF16": torch.bfloat16, "F8_E4M3": torch.float8_e4m3fn,
         "F8_E5M2": torch.float8_e5m2, "F8_E8M0": torch.float8_e8m0fnu,
         "F8_E4M3FNUZ": torch.float8_e4m3fnuz, "F8_E5M2FNUZ": torch.float8_e5m2fnuz}
TARGET = {"f32": ("F32", torch.float32), "f16": ("F16", torch.float16),
          "bf16": ("BF16", torch.bfloat16)}
SUBBYTE_ML = {"F4": (ml_dtypes.float4_e2m1fn, 4), "F6_E2M3": (ml_dtypes.float6_e2m3fn, 6),
              "F6_E3M2": (ml_dtypes.float6_e3m2fn, 6)}
INDEX_NAME = "model.safetensors.index.json"


class Mismatch(Exception):
    pass


def read_header(path: Path) -> dict:
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(fh.read(n).decode("utf-8"))


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a torch tensor of any dtype."""
    t = t.contiguous().reshape(-1)
    size = t.element_size()
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]
    if t.dtype != as_int:
        t = t.view(as_int)
    a = t.numpy()
    if sys.byteorder == "big":
        a = a.byteswap()
    return a.tobytes()


class Checkpoint:
    """A single file or a sharded checkpoint, read lazily tensor by tensor."""

    def __init__(self, path: str):
        p = Path(path)
        self.index: dict | None = None
        self.index_path: Path | None = None
        if p.is_dir():
            idx = p / INDEX_NAME
            if not idx.exists():
                cands = sorted(p.glob("*.safetensors.index.json"))
                idx = cands[0] if len(cands) == 1 else idx
            if idx.exists():
                p = idx
            else:
                files = sorted(p.glob("*.safetensors"))
                if len(files) != 1:
                    raise SystemExit(f"{path}: directory without index must hold exactly one .safetensors file, found {len(files)}")
                p = files[0]
        self.root = p.parent
        if p.name.endswith(".json"):
            self.index_path = p
            self.index = json.loads(p.read_text(encoding="utf-8"))
            wm = self.index.get("weight_map")
            if not isinstance(wm, dict):
                raise Mismatch(f"{p}: weight_map is not an object")
            self.files = [self.root / f for f in sorted(set(wm.values()))]
        else:
            self.files = [p]
        self.handles = {}
        self.where: dict[str, Path] = {}
        self.info: dict[str, tuple[str, list[int], int, int]] = {}
        self.file_meta: dict[Path, dict[str, str]] = {}
        self.dupes: list[str] = []
        root = self.root.resolve()
        for f in self.files:
            if os.path.commonpath([root, f.resolve()]) != str(root):
                raise Mismatch(f"{f}: shard listed in {p} lies outside the checkpoint directory")
            if not f.exists():
                raise Mismatch(f"{f}: shard listed in {p} does not exist")
            h = safe_open(str(f), framework="pt")
            self.handles[f] = h
            self.file_meta[f] = dict(h.metadata() or {})
            header = read_header(f)
            hlen = struct.unpack("<Q", f.open("rb").read(8))[0]
            for k in h.keys():
                if k in self.where:
                    self.dupes.append(k)
                    continue
                e = header[k]
                sl = h.get_slice(k)
                dtype, shape = sl.get_dtype(), list(sl.get_shape())
                if dtype != e["dtype"] or shape != e["shape"]:
                    raise Mismatch(f"{f}:{k}: library reports {dtype}{shape}, header says {e['dtype']}{e['shape']}")
                b, en = e["data_offsets"]
                self.where[k] = f
                self.info[k] = (dtype, shape, 8 + hlen + b, en - b)

    @property
    def metadata(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for f in self.files:
            for k, v in self.file_meta[f].items():
                merged.setdefault(k, v)
        return merged

    def raw(self, name: str) -> bytes:
        """Bytes via the library where torch has the dtype, else via the header."""
        dtype, shape, start, length = self.info[name]
        f = self.where[name]
        try:
            t = self.handles[f].get_tensor(name)
            data = tensor_bytes(t)
            if len(data) == length:
                return data
        except Exception:  # noqa: BLE001 - dtype torch cannot represent (F6...)
            pass
        with open(f, "rb") as fh:
            fh.seek(start)
            data = fh.read(length)
        if len(data) != length:
            raise Mismatch(f"{f}:{name}: short read")
        return data

    def as_torch(self, name: str) -> torch.Tensor:
        """Values as a torch tensor (sub-byte floats decoded to f32)."""
        dtype, shape, _, _ = self.info[name]
        if dtype in SUBBYTE_ML:
            mlt, bits = SUBBYTE_ML[dtype]
            data = self.raw(name)
            n = int(np.prod(shape, dtype=np.int64)) if shape else 1
            acc = int.from_bytes(data, "little")
            codes = np.array([(acc >> (j * bits)) & ((1 << bits) - 1) for j in range(n)], dtype=np.uint8)
            vals = codes.view(mlt).astype(np.float32).reshape(shape)
            return torch.from_numpy(vals)
        return self.handles[self.where[name]].get_tensor(name)


def check_index(ck: Checkpoint, errors: list[str]) -> None:
    idx, root = ck.index, ck.root.resolve()
    meta = idx.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("total_size"), int):
        errors.append(f"{ck.index_path}: metadata.total_size missing or not an integer")
    else:
        total = sum(info[3] for info in ck.info.values())
        if meta["total_size"] != total:
            errors.append(f"{ck.index_path}: metadata.total_size {meta['total_size']} != sum of tensor bytes {total}")
    for name, fname in idx["weight_map"].items():
        f = (ck.root / fname).resolve()
        if os.path.commonpath([root, f]) != str(root):
            errors.append(f"weight_map[{name!r}] = {fname!r} escapes the checkpoint directory")
        elif name not in ck.where:
            errors.append(f"weight_map[{name!r}] = {fname!r}: tensor not found in any shard")
        elif ck.where[name].resolve() != f:
            errors.append(f"weight_map[{name!r}] = {fname!r} but the tensor is in {ck.where[name].name}")
    for name in ck.where:
        if name not in idx["weight_map"]:
            errors.append(f"tensor {name!r} in {ck.where[name].name} is not listed in weight_map")
    for name in ck.dupes:
        errors.append(f"tensor {name!r} is stored in more than one shard")


def bits_equal_nan_any(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    an, bn = torch.isnan(a.float()), torch.isnan(b.float())
    if not torch.equal(an, bn):
        return False
    ab, bb = tensor_bytes(a[~an]), tensor_bytes(b[~bn])
    return ab == bb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--cast", choices=sorted(TARGET))
    ap.add_argument("--cast-from", default=",".join(d for d in FLOAT_DTYPES if d not in SUBBYTE_ML),
                    help="comma-separated SRC dtypes that --cast converts (default: every byte-wide float "
                         "dtype; moeckpt keeps the packed F4/F6 tensors as they are)")
    ap.add_argument("--nan-any", action="store_true", help="with --cast: any NaN matches a NaN")
    args = ap.parse_args()
    cast_from = {d.strip().upper() for d in args.cast_from.split(",") if d.strip()}
    bad = cast_from - set(FLOAT_DTYPES)
    if bad:
        ap.error(f"--cast-from: not float dtypes: {sorted(bad)}")

    errors: list[str] = []
    try:
        src, out = Checkpoint(args.src), Checkpoint(args.out)
    except Mismatch as e:
        print(f"FAIL: {e}")
        return 1

    if src.dupes:
        errors.append(f"SRC has tensors in several shards: {src.dupes}")
    if out.index is not None:
        check_index(out, errors)

    sn, on = set(src.info), set(out.info)
    if sn - on:
        errors.append(f"missing in OUT: {sorted(sn - on)}")
    if on - sn:
        errors.append(f"extra in OUT: {sorted(on - sn)}")

    smeta = src.metadata
    for f in out.files:
        om = out.file_meta[f]
        for k, v in smeta.items():
            if om.get(k) != v:
                errors.append(f"{f.name}: __metadata__[{k!r}] = {om.get(k)!r}, SRC has {v!r}")

    compared = 0
    for name in sorted(sn & on):
        sd, ss, _, _ = src.info[name]
        od, os_, _, _ = out.info[name]
        if ss != os_:
            errors.append(f"{name}: shape {os_} != SRC {ss}")
            continue
        if args.cast and sd in cast_from:
            tdt, ttorch = TARGET[args.cast]
            if od != tdt:
                errors.append(f"{name}: dtype {od}, expected {tdt} (cast from {sd})")
                continue
            st = src.as_torch(name)
            if sd in SUBBYTE_ML:
                st = st.to(torch.float32)
            expected = st.to(ttorch)
            got = out.as_torch(name)
            if args.nan_any:
                ok = bits_equal_nan_any(expected, got)
            else:
                ok = tensor_bytes(expected) == out.raw(name)
            if not ok:
                eb, gb = tensor_bytes(expected), out.raw(name)
                w = BITS[tdt] // 8
                first = next((i // w for i in range(0, min(len(eb), len(gb)), w) if eb[i:i + w] != gb[i:i + w]), None)
                errors.append(f"{name}: {sd}->{tdt} differs from torch's cast (first differing element {first}: "
                              f"expected 0x{eb[first * w:(first + 1) * w][::-1].hex() if first is not None else ''}, "
                              f"got 0x{gb[first * w:(first + 1) * w][::-1].hex() if first is not None else ''})")
        else:
            if od != sd:
                errors.append(f"{name}: dtype {od} != SRC {sd}")
                continue
            if src.raw(name) != out.raw(name):
                errors.append(f"{name}: bytes differ")
        compared += 1

    if errors:
        for e in errors[:50]:
            print(f"FAIL: {e}")
        if len(errors) > 50:
            print(f"FAIL: ... and {len(errors) - 50} more")
        return 1
    mode = f"cast to {args.cast}" if args.cast else "identical"
    print(f"OK: {compared} tensors {mode}; metadata {'and index ' if out.index else ''}checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
