#!/usr/bin/env python3
"""Generate the reference fixtures under fixtures/ for moeckpt's Swift tests.

Deterministic (fixed seeds, no timestamps) and re-runnable: every output is
overwritten.  Run from anywhere:

    /work/venv/bin/python scripts/make_fixtures.py

Needs the pinned packages in scripts/requirements-fixtures.txt.  CI never
runs this script; the generated files are committed.

Sections:
  a) fixtures/dtypes/      conversion tables (raw little-endian, no header)
  b) fixtures/safetensors/ files written by the official safetensors library
                           and by transformers (tiny Mixtral)
  c) fixtures/malformed/   hand-crafted invalid files + EXPECTED.json
  d) fixtures/casts/       float tensors cast by torch's Tensor.to (what
                           `moeckpt convert --dtype` must reproduce)
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import safetensors
import safetensors.torch
import torch
from fixture_util import fresh_dir, log

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
SEED = 20240607

# Observations collected while generating; rendered into the READMEs.
OBS: dict[str, object] = {}




def write_u32(path: Path, arr: np.ndarray) -> None:
    a = np.ascontiguousarray(arr).view(np.uint32).astype("<u4")
    path.write_bytes(a.tobytes())


def write_u16(path: Path, arr: np.ndarray) -> None:
    a = np.ascontiguousarray(arr).view(np.uint16).astype("<u2")
    path.write_bytes(a.tobytes())


def hexs(vals, width=8) -> str:
    return ", ".join(f"0x{int(v):0{width}X}" for v in vals)


# ---------------------------------------------------------------------------
# Hand-built safetensors serializer (mirrors the Rust reference's layout)
# ---------------------------------------------------------------------------

# Rust `Dtype` enum order; the reference sorts tensors by dtype descending
# (i.e. by alignment, largest first), then by name ascending.
DTYPE_RANK = [
    "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3",
    "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16",
    "I32", "U32", "F32", "C64", "F64", "I64", "U64",
]
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
    "U64": 64,
}


def json_compact(obj) -> bytes:
    """serde_json::to_string equivalent (compact, raw UTF-8, same escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def st_serialize(tensors: list[tuple[str, str, list[int], bytes]],
                 metadata: dict[str, str] | None = None) -> bytes:
    """Build a safetensors file the way safetensors (Rust) does.

    tensors: (name, DTYPE, shape, raw little-endian bytes)
    """
    order = sorted(tensors, key=lambda t: (-DTYPE_RANK.index(t[1]), t[0]))
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    for name, dtype, shape, data in order:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(data)]}
        off += len(data)
    return raw_file(json_compact(header), b"".join(t[3] for t in order))


def raw_file(header: bytes, data: bytes, pad: bool = True) -> bytes:
    if pad:
        header = header + b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def pack_lsb_first(codes: list[int], bits: int) -> bytes:
    """Pack sub-byte codes as a little-endian bit stream: element j occupies
    bits [j*bits, (j+1)*bits) counting from bit 0 of byte 0.  For F4 this is
    'element 2k in the low nibble of byte k' (torch float4_e2m1fn_x2 / NVFP4
    convention)."""
    acc = 0
    for j, c in enumerate(codes):
        assert 0 <= c < (1 << bits)
        acc |= c << (j * bits)
    nbits = len(codes) * bits
    assert nbits % 8 == 0
    return acc.to_bytes(nbits // 8, "little")


# ---------------------------------------------------------------------------
# a) dtype conversion tables
# ---------------------------------------------------------------------------

def f32_bits(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def torch_cast_bits(inp_u32: np.ndarray, dtype) -> np.ndarray:
    t = torch.from_numpy(inp_u32.view(np.float32).copy()).to(dtype)
    return t.view(torch.int16).numpy().view(np.uint16).copy()


def halfway_triplets(bits16: np.ndarray, decode, next_inf_value: float,
                     sign: bool) -> list[np.ndarray]:
    """For each 16-bit positive finite pattern b, the f32 halfway point between
    value(b) and value(b+1) (value of the pattern after the largest finite is
    treated as 2*2^emax, i.e. the overflow threshold midpoint), and the
    halfway point -1 and +1 f32 ulp.  With sign=True the negated versions."""
    lo = decode(bits16).astype(np.float64)
    nxt_bits = bits16 + 1
    hi = decode(nxt_bits).astype(np.float64)
    hi = np.where(np.isinf(hi), next_inf_value, hi)
    mid = ((lo + hi) / 2).astype(np.float32)
    assert np.all((mid.astype(np.float64) * 2) == lo + hi), "midpoint not exact"
    mb = mid.view(np.uint32)
    out = [mb, mb - 1, mb + 1]
    if sign:
        out = [o | np.uint32(0x80000000) for o in out]
    # interleave per value: mid, mid-1ulp, mid+1ulp
    return [np.stack(out, axis=1).reshape(-1)]


def make_dtypes() -> None:
    out = fresh_dir(FIX / "dtypes")
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)

    # --- f16 -> f32 -------------------------------------------------------
    np_f16 = all16.view(np.float16).astype(np.float32)
    t_f16 = torch.from_numpy(all16.view(np.float16).copy()).to(torch.float32).numpy()
    np_b = np_f16.view(np.uint32)
    t_b = t_f16.view(np.uint32)
    diff = np.nonzero(np_b != t_b)[0]
    OBS["f16_to_f32_numpy_vs_torch_diffs"] = int(diff.size)
    OBS["f16_to_f32_diff_examples"] = [(int(i), int(np_b[i]), int(t_b[i])) for i in diff[:6]]
    nan_mask = np.isnan(np_f16)
    assert np.array_equal(np.isnan(np_f16), np.isnan(t_f16))
    assert np.array_equal(np_b[~nan_mask], t_b[~nan_mask])
    # how numpy treats f16 sNaN 0x7C01 and qNaN 0x7E00, 0xFE01
    OBS["f16_nan_examples"] = {f"0x{b:04X}": (f"0x{int(np_b[b]):08X}", f"0x{int(t_b[b]):08X}")
                               for b in (0x7C01, 0x7D00, 0x7E00, 0x7E01, 0x7FFF, 0xFC01, 0xFE00, 0xFFFF)}
    # scalar numpy path (element at a time) for comparison
    OBS["f16_nan_numpy_scalar"] = {f"0x{b:04X}": f"0x{int(np.float32(np.uint16(b).view(np.float16)).view(np.uint32)):08X}"
                                   for b in (0x7C01, 0x7E00, 0xFC01)}
    write_u32(out / "f16_to_f32.bin", np_f16)

    # --- bf16 -> f32 ------------------------------------------------------
    md_bf = all16.view(ml_dtypes.bfloat16).astype(np.float32)
    t_bf = torch.from_numpy(all16.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32).numpy()
    d = np.nonzero(md_bf.view(np.uint32) != t_bf.view(np.uint32))[0]
    OBS["bf16_to_f32_torch_vs_mldtypes_diffs"] = int(d.size)
    OBS["bf16_to_f32_diff_examples"] = [(int(i), int(t_bf.view(np.uint32)[i]), int(md_bf.view(np.uint32)[i])) for i in d[:6]]
    shift = (all16.astype(np.uint32) << 16)
    OBS["bf16_to_f32_torch_is_shift"] = bool(np.array_equal(t_bf.view(np.uint32), shift))
    OBS["bf16_to_f32_mldtypes_is_shift"] = bool(np.array_equal(md_bf.view(np.uint32), shift))
    write_u32(out / "bf16_to_f32.bin", t_bf)

    # --- f32 inputs ---------------------------------------------------------
    parts: list[np.ndarray] = []
    parts.append(np_b.copy())                       # all f16 widened (numpy)
    parts.append(shift.copy())                      # all bf16 widened
    f16dec = lambda b: b.astype(np.uint16).view(np.float16).astype(np.float32)
    bf16dec = lambda b: (b.astype(np.uint32) << 16).view(np.float32)
    pos_f16 = np.arange(0, 0x7C00, dtype=np.uint32)       # +0 .. 65504
    pos_bf16 = np.arange(0, 0x7F80, dtype=np.uint32)      # +0 .. bf16 max
    parts += halfway_triplets(pos_f16, f16dec, 65536.0, sign=False)
    parts += halfway_triplets(pos_bf16, bf16dec, 2.0 ** 128, sign=False)
    # negatives: subnormal range, the top 16 finite values, every 32nd value
    neg_f16 = pos_f16[(pos_f16 < 0x0400) | (pos_f16 >= 0x7C00 - 16) | (pos_f16 % 32 == 0)]
    neg_bf16 = pos_bf16[(pos_bf16 < 0x0080) | (pos_bf16 >= 0x7F80 - 16) | (pos_bf16 % 32 == 0)]
    parts += halfway_triplets(neg_f16, f16dec, 65536.0, sign=True)
    parts += halfway_triplets(neg_bf16, bf16dec, 2.0 ** 128, sign=True)
    # explicit boundary values
    specials = [
        0.0, -0.0, np.inf, -np.inf,
        # f16 overflow region
        65504.0, 65519.0, 65519.99, np.nextafter(np.float32(65520), np.float32(0)), 65520.0,
        np.nextafter(np.float32(65520), np.float32(np.inf)), 65535.0, 65536.0, 65537.0,
        1e5, 1e10, 3e38,
        # f16 subnormal / underflow boundaries
        2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -26, 2.0 ** -27, 1.5 * 2.0 ** -24,
        2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 2.0 ** -14 - 2.0 ** -24, 1023 * 2.0 ** -24,
        1023.5 * 2.0 ** -24, 1e-8, 1e-9, 6e-8, 5.9604645e-08, 2.9802322e-08,
        # bf16 / f32 boundaries
        2.0 ** -126, 2.0 ** -133, 2.0 ** -134, 2.0 ** -135, 2.0 ** -149,
        1.0, 1.0 + 2.0 ** -8, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -23,
    ]
    sp = f32_bits(np.array(specials, dtype=np.float64).astype(np.float32))
    parts.append(sp)
    parts.append(sp | np.uint32(0x80000000))
    raw_specials = np.array([
        0x7F7FFFFF, 0xFF7FFFFF,             # largest finite f32
        0x00000001, 0x80000001,             # smallest subnormal f32
        0x007FFFFF, 0x807FFFFF,             # largest subnormal f32
        0x00800000, 0x80800000,             # smallest normal f32
        0x7F7F8000, 0x7F7F7FFF, 0x7F7F8001, # bf16 overflow tie / below / above
        0x00008000, 0x00018000, 0x00007FFF, 0x00008001,  # bf16 ties at f32 subnormal
        0x7F800000, 0xFF800000,
        # NaNs: quiet and signalling, both signs, various payloads
        0x7FC00000, 0xFFC00000, 0x7FC00001, 0xFFC00001, 0x7FFFFFFF, 0xFFFFFFFF,
        0x7FE00000, 0x7FD55555, 0x7FC02000, 0x7FC10000,
        0x7F800001, 0xFF800001, 0x7FA00000, 0xFFA00000, 0x7FBFFFFF, 0xFFBFFFFF,
        0x7F802000, 0xFF802000,             # sNaN whose payload survives f16 truncation
        0x7F810000, 0xFF810000,             # sNaN whose payload survives bf16 truncation
        0x7F800100, 0x7F801FFF,             # sNaN whose payload is lost by truncation
    ], dtype=np.uint32)
    parts.append(raw_specials)
    rng = np.random.default_rng(SEED)
    parts.append(rng.integers(0, 2 ** 32, size=50_000, dtype=np.uint64).astype(np.uint32))
    allin = np.concatenate(parts).astype(np.uint32)
    _, first = np.unique(allin, return_index=True)
    inputs = allin[np.sort(first)]
    OBS["f32_inputs_count"] = int(inputs.size)
    OBS["f32_inputs_before_dedup"] = int(allin.size)
    write_u32(out / "f32_inputs.bin", inputs)

    # --- f32 -> f16 / bf16 (torch, vectorised path over the whole array) ---
    to16 = torch_cast_bits(inputs, torch.float16)
    tobf = torch_cast_bits(inputs, torch.bfloat16)
    write_u16(out / "f32_to_f16.bin", to16)
    write_u16(out / "f32_to_bf16.bin", tobf)

    fin = inputs.view(np.float32)
    isn = np.isnan(fin)
    # cross-checks: numpy f16 / ml_dtypes bf16 on non-NaN inputs
    np16 = fin.astype(np.float16).view(np.uint16)
    mdbf = fin.astype(ml_dtypes.bfloat16).view(np.uint16)
    OBS["f32_to_f16_numpy_disagree_nonnan"] = int(np.count_nonzero(np16[~isn] != to16[~isn]))
    OBS["f32_to_bf16_mldtypes_disagree_nonnan"] = int(np.count_nonzero(mdbf[~isn] != tobf[~isn]))
    nan_in = inputs[isn]
    OBS["nan_inputs"] = int(nan_in.size)
    # NaN outputs of torch (vectorised path) for the explicit NaN specials
    ex = [0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F800001,
          0xFF800001, 0x7FA00000, 0x7F802000, 0xFF802000, 0x7F810000, 0xFF810000, 0x7F800100]
    idx = {int(v): i for i, v in enumerate(inputs)}
    OBS["nan_f16_vec"] = {f"0x{v:08X}": f"0x{int(to16[idx[v]]):04X}" for v in ex}
    OBS["nan_bf16_vec"] = {f"0x{v:08X}": f"0x{int(tobf[idx[v]]):04X}" for v in ex}
    OBS["nan_f16_numpy"] = {f"0x{v:08X}": f"0x{int(np16[idx[v]]):04X}" for v in ex}
    OBS["nan_bf16_mldtypes"] = {f"0x{v:08X}": f"0x{int(mdbf[idx[v]]):04X}" for v in ex}
    # torch scalar (1-element tensor) path
    def scalar_bits(v, dt):
        t = torch.from_numpy(np.array([v], dtype=np.uint32).view(np.float32).copy())
        return int(t.to(dt).view(torch.int16).numpy().view(np.uint16)[0])
    OBS["nan_f16_scalar"] = {f"0x{v:08X}": f"0x{scalar_bits(v, torch.float16):04X}" for v in ex}
    OBS["nan_bf16_scalar"] = {f"0x{v:08X}": f"0x{scalar_bits(v, torch.bfloat16):04X}" for v in ex}
    # distribution of NaN outputs across all NaN inputs
    OBS["nan_f16_out_set"] = sorted({f"0x{int(x):04X}" for x in to16[isn]})[:12]
    OBS["nan_f16_out_distinct"] = int(np.unique(to16[isn]).size)
    OBS["nan_bf16_out_set"] = sorted({f"0x{int(x):04X}" for x in tobf[isn]})[:12]
    OBS["nan_bf16_out_distinct"] = int(np.unique(tobf[isn]).size)
    # does the vectorised path agree with element-wise conversion for NaNs?
    small = nan_in[:2000]
    ew16 = np.array([scalar_bits(int(v), torch.float16) for v in small], dtype=np.uint16)
    ewbf = np.array([scalar_bits(int(v), torch.bfloat16) for v in small], dtype=np.uint16)
    OBS["nan_f16_vec_vs_scalar_disagree"] = int(np.count_nonzero(ew16 != to16[isn][:2000]))
    OBS["nan_bf16_vec_vs_scalar_disagree"] = int(np.count_nonzero(ewbf != tobf[isn][:2000]))
    # non-NaN: vectorised vs 1-element path on a sample
    samp = inputs[~isn][::97]
    OBS["nonnan_vec_vs_scalar_disagree"] = int(sum(
        scalar_bits(int(v), torch.bfloat16) != tobf[idx[int(v)]] or
        scalar_bits(int(v), torch.float16) != to16[idx[int(v)]] for v in samp))

    # --- 8-bit and sub-byte floats -> f32 ----------------------------------
    small_tables = [
        ("f8_e4m3_to_f32.bin", "float8_e4m3fn", 256, "float8_e4m3fn"),
        ("f8_e5m2_to_f32.bin", "float8_e5m2", 256, "float8_e5m2"),
        ("f8_e8m0_to_f32.bin", "float8_e8m0fnu", 256, "float8_e8m0fnu"),
        ("f8_e4m3fnuz_to_f32.bin", "float8_e4m3fnuz", 256, "float8_e4m3fnuz"),
        ("f8_e5m2fnuz_to_f32.bin", "float8_e5m2fnuz", 256, "float8_e5m2fnuz"),
        ("f4_to_f32.bin", "float4_e2m1fn", 16, None),
        ("f6_e2m3_to_f32.bin", "float6_e2m3fn", 64, None),
        ("f6_e3m2_to_f32.bin", "float6_e3m2fn", 64, None),
    ]
    small_obs = {}
    for fname, mdname, n, tname in small_tables:
        codes = np.arange(n, dtype=np.uint8)
        vals = codes.view(getattr(ml_dtypes, mdname)).astype(np.float32)
        vb = vals.view(np.uint32)
        write_u32(out / fname, vals)
        nanc = [int(c) for c in codes[np.isnan(vals)]]
        infc = [int(c) for c in codes[np.isinf(vals)]]
        info = {"nan_codes": nanc, "inf_codes": infc,
                "nan_bits": sorted({f"0x{int(vb[c]):08X}" for c in nanc}),
                "max": float(np.nanmax(np.where(np.isinf(vals), np.nan, vals))),
                "min_pos": float(vals[vals > 0].min())}
        if tname is not None:
            tv = torch.from_numpy(codes.copy()).view(getattr(torch, tname)).to(torch.float32).numpy()
            tb = tv.view(np.uint32)
            assert np.array_equal(np.isnan(tv), np.isnan(vals)), fname
            nn = ~np.isnan(vals)
            info["torch_nonnan_equal"] = bool(np.array_equal(tb[nn], vb[nn]))
            info["torch_nan_bits"] = {f"0x{c:02X}": f"0x{int(tb[c]):08X}" for c in nanc}
            assert info["torch_nonnan_equal"], fname
        small_obs[fname] = info
    # float4 via torch packed x2: torch cannot convert float4_e2m1fn_x2 to f32
    try:
        torch.zeros(1, dtype=torch.uint8).view(torch.float4_e2m1fn_x2).to(torch.float32)
        OBS["torch_f4_convert"] = "supported"
    except Exception as e:  # noqa: BLE001
        OBS["torch_f4_convert"] = f"unsupported ({type(e).__name__}: {str(e).splitlines()[0][:100]})"
    OBS["small_tables"] = small_obs
    # ml_dtypes sub-byte types: do upper (unused) bits of the byte matter?
    OBS["mldtypes_f4_0x10"] = str(np.uint8(0x10).view(ml_dtypes.float4_e2m1fn).astype(np.float32))
    # the README summary states these; fail loudly if a version changes them
    assert OBS["f16_nan_examples"]["0x7C01"] == ("0x7F802000", "0x7FC02000")
    assert OBS["f16_to_f32_numpy_vs_torch_diffs"] == 1022
    assert OBS["bf16_to_f32_torch_is_shift"] and OBS["bf16_to_f32_mldtypes_is_shift"]
    assert OBS["nan_f16_vec"]["0x7F800001"] == "0x7E00" and OBS["nan_f16_vec"]["0x7FA00000"] == "0x7F00"
    assert OBS["nan_f16_vec"]["0x7F802000"] == "0x7E01" and OBS["nan_f16_vec"]["0xFF800001"] == "0xFE00"
    assert OBS["nan_f16_numpy"]["0x7F800001"] == "0x7C01" and OBS["nan_f16_numpy"]["0x7FA00000"] == "0x7D00"
    assert OBS["nan_bf16_out_set"] == ["0xFFFF"] and set(OBS["nan_bf16_scalar"].values()) == {"0xFFFF"}
    assert set(OBS["nan_bf16_mldtypes"].values()) == {"0x7FC0", "0xFFC0"}
    st = OBS["small_tables"]
    for f in ("f8_e4m3_to_f32.bin", "f8_e5m2_to_f32.bin"):
        assert st[f]["nan_bits"] == ["0x7FC00000", "0xFFC00000"]
    assert st["f8_e4m3fnuz_to_f32.bin"]["nan_bits"] == ["0xFFC00000"]
    assert st["f8_e4m3_to_f32.bin"]["torch_nan_bits"]["0x7F"] == "0x7FF00000"
    assert st["f8_e5m2_to_f32.bin"]["torch_nan_bits"]["0x7D"] == "0x7FE00000"
    for f in ("f8_e8m0_to_f32.bin", "f8_e4m3fnuz_to_f32.bin", "f8_e5m2fnuz_to_f32.bin"):
        assert set(st[f]["torch_nan_bits"].values()) == {"0x7F800001"}, f
    write_dtypes_readme(out)


def write_dtypes_readme(out: Path) -> None:
    o = OBS
    st = o["small_tables"]

    def tbl(d):
        return "; ".join(f"{k} -> {v}" for k, v in d.items())

    lines = f"""# Reference dtype conversion tables

Generated by `scripts/make_fixtures.py` (numpy {np.__version__}, torch {torch.__version__},
ml_dtypes {ml_dtypes.__version__}).  Every file is a raw little-endian array with
no header; "u32 bits" means the IEEE-754 binary32 bit pattern stored as a
little-endian `UInt32`, "u16 bits" a binary16/bfloat16 bit pattern as `UInt16`.

| file | element | count | meaning of entry i | produced by |
| --- | --- | --- | --- | --- |
| `f16_to_f32.bin` | u32 bits | 65536 | f16 with bits `i` widened to f32 | numpy `view(float16).astype(float32)` |
| `bf16_to_f32.bin` | u32 bits | 65536 | bf16 with bits `i` widened to f32 | torch `view(bfloat16).to(float32)` |
| `f32_inputs.bin` | u32 bits | {o['f32_inputs_count']} | test input (see below) | numpy |
| `f32_to_f16.bin` | u16 bits | {o['f32_inputs_count']} | `f32_inputs[i]` rounded to f16 | torch `.to(torch.float16)` on the whole array |
| `f32_to_bf16.bin` | u16 bits | {o['f32_inputs_count']} | `f32_inputs[i]` rounded to bf16 | torch `.to(torch.bfloat16)` on the whole array |
| `f8_e4m3_to_f32.bin` | u32 bits | 256 | F8_E4M3 (`float8_e4m3fn`) code `i` | ml_dtypes |
| `f8_e5m2_to_f32.bin` | u32 bits | 256 | F8_E5M2 (`float8_e5m2`) code `i` | ml_dtypes |
| `f8_e8m0_to_f32.bin` | u32 bits | 256 | F8_E8M0 (`float8_e8m0fnu`) code `i` | ml_dtypes |
| `f8_e4m3fnuz_to_f32.bin` | u32 bits | 256 | F8_E4M3FNUZ code `i` | ml_dtypes |
| `f8_e5m2fnuz_to_f32.bin` | u32 bits | 256 | F8_E5M2FNUZ code `i` | ml_dtypes |
| `f4_to_f32.bin` | u32 bits | 16 | F4 (`float4_e2m1fn`) code `i` (4 low bits, upper bits 0) | ml_dtypes |
| `f6_e2m3_to_f32.bin` | u32 bits | 64 | F6_E2M3 (`float6_e2m3fn`) code `i` (6 low bits) | ml_dtypes |
| `f6_e3m2_to_f32.bin` | u32 bits | 64 | F6_E3M2 (`float6_e3m2fn`) code `i` (6 low bits) | ml_dtypes |

All conversions to f16/bf16 are IEEE round-to-nearest-even, with overflow to
±inf (e.g. 65520.0 -> f16 `0x7C00`; `0x7F7F8000` -> bf16 `0x7F80`), f32
subnormals handled (no flush to zero).

## `f32_inputs.bin` contents (in this order, duplicates removed keeping the first occurrence)

1. all 65536 f16 values widened (exactly `f16_to_f32.bin`);
2. all 65536 bf16 values widened (`i << 16`);
3. for every positive finite f16 bit pattern b (0x0000..0x7BFF): the exact f32
   midpoint between value(b) and value(b+1), that midpoint's bit pattern - 1
   and + 1 (interleaved: mid, mid-1ulp, mid+1ulp).  For b = 0x7BFF the "next
   value" is 65536, so the midpoint is the overflow threshold 65520;
4. the same for every positive finite bf16 pattern (0x0000..0x7F7F; next of
   0x7F7F is 2^128);
5. the negated triplets for a subset of values: all subnormals, the 16 largest
   finite values, and every 32nd pattern (size budget);
6. hand-picked boundaries (±0, ±inf, values around 65504/65520, f16 and bf16
   subnormal / underflow thresholds, f32 min/max normal/subnormal) and
   NaNs: quiet and signalling, both signs, payloads that do / do not survive
   truncation to f16 / bf16;
7. 50,000 random u32 patterns (`numpy.random.default_rng({SEED})`).

{o['f32_inputs_before_dedup']} patterns before de-duplication, {o['f32_inputs_count']} after; {o['nan_inputs']} of them are NaN.

## Cross-checks performed

* f16 -> f32: numpy vs torch differ in {o['f16_to_f32_numpy_vs_torch_diffs']} entries
  (examples `(i, numpy, torch)`: {o['f16_to_f32_diff_examples']}).  NaN examples
  `f16 bits: (numpy, torch)`: {tbl(o['f16_nan_examples'])}.
  numpy scalar path: {tbl(o['f16_nan_numpy_scalar'])}.
* bf16 -> f32: torch vs ml_dtypes differ in {o['bf16_to_f32_torch_vs_mldtypes_diffs']} entries
  (examples `(i, torch, ml_dtypes)`: {o['bf16_to_f32_diff_examples']});
  torch result is exactly `i << 16` for all i: {o['bf16_to_f32_torch_is_shift']};
  ml_dtypes: {o['bf16_to_f32_mldtypes_is_shift']}.
* f32 -> f16: numpy `astype(float16)` disagrees with torch on {o['f32_to_f16_numpy_disagree_nonnan']} non-NaN inputs.
* f32 -> bf16: ml_dtypes disagrees with torch on {o['f32_to_bf16_mldtypes_disagree_nonnan']} non-NaN inputs.
* torch vectorised (whole array) vs 1-element-tensor path: non-NaN sample
  disagreements {o['nonnan_vec_vs_scalar_disagree']}; NaN disagreements (first 2000 NaN
  inputs) f16: {o['nan_f16_vec_vs_scalar_disagree']}, bf16: {o['nan_bf16_vec_vs_scalar_disagree']}.
* 8-bit floats: ml_dtypes and torch agree on every non-NaN code and on which
  codes are NaN; NaN bit patterns differ (below).

## Observed NaN conventions

Summary (asserted by the script, so a version change that alters them fails loudly):

* **f16 -> f32** (`f16_to_f32.bin`, numpy): sign kept, the 10-bit payload shifted
  left by 13, **signalling NaNs stay signalling** (`0x7C01` -> `0x7F802000`).
  torch differs exactly on the 1022 signalling NaNs: it sets the quiet bit
  (`0x7C01` -> `0x7FC02000`).
* **bf16 -> f32** (`bf16_to_f32.bin`): `i << 16` for every i (NaNs included) in
  both torch and ml_dtypes.
* **f32 -> f16** (`f32_to_f16.bin`, torch): sign kept, top 10 payload bits kept,
  quiet bit forced (`0x7F800001` -> `0x7E00`, `0x7FA00000` -> `0x7F00`,
  `0x7F802000` -> `0x7E01`).  numpy instead keeps signalling NaNs signalling
  (`0x7F800001` -> `0x7C01`, `0x7FA00000` -> `0x7D00`).
* **f32 -> bf16** (`f32_to_bf16.bin`, torch): **every NaN becomes `0xFFFF`**
  (negative sign, all-ones payload), whatever its sign or payload - both for
  whole arrays and 1-element tensors.  ml_dtypes gives `0x7FC0` / `0xFFC0`
  (canonical quiet NaN, sign kept).
* **8-bit floats -> f32** (tables, ml_dtypes): canonical quiet NaN with the
  code's sign bit (`0x7FC00000` / `0xFFC00000`); note the FNUZ NaN code `0x80`
  becomes the negative `0xFFC00000`.  torch instead shifts the payload
  (e4m3fn `0x7F` -> `0x7FF00000`, e5m2 `0x7D` -> `0x7FE00000`, i.e. quiet bit
  forced) and returns the positive *signalling* NaN `0x7F800001` for e8m0
  `0xFF` and FNUZ `0x80`.

Details:

**f32 -> f16 (torch, as stored in `f32_to_f16.bin`)**: {tbl(o['nan_f16_vec'])}.
Distinct NaN outputs over all NaN inputs: {o['nan_f16_out_distinct']} (first: {', '.join(o['nan_f16_out_set'])}).
Same inputs through a 1-element tensor: {tbl(o['nan_f16_scalar'])}.
numpy `astype(float16)`: {tbl(o['nan_f16_numpy'])}.

**f32 -> bf16 (torch, as stored in `f32_to_bf16.bin`)**: {tbl(o['nan_bf16_vec'])}.
Distinct NaN outputs over all NaN inputs: {o['nan_bf16_out_distinct']} (first: {', '.join(o['nan_bf16_out_set'])}).
Same inputs through a 1-element tensor: {tbl(o['nan_bf16_scalar'])}.
ml_dtypes `astype(bfloat16)`: {tbl(o['nan_bf16_mldtypes'])}.

**f16 -> f32**: see the cross-check above (numpy keeps the payload shifted left
by 13; whether the quiet bit gets set on signalling NaNs is shown by the
`0x7C01` / `0xFC01` examples).

**8-bit / sub-byte -> f32 (ml_dtypes, as stored)**, NaN codes and the f32 bits
ml_dtypes produces, and what torch produces for the same codes:
"""
    for fname, info in st.items():
        lines += (f"\n* `{fname}`: NaN codes {[f'0x{c:02X}' for c in info['nan_codes']]}"
                  f" -> {', '.join(info['nan_bits']) or '(none)'}; inf codes "
                  f"{[f'0x{c:02X}' for c in info['inf_codes']]}; max finite {info['max']}; "
                  f"min positive {info['min_pos']!r}")
        if "torch_nan_bits" in info:
            lines += f"; torch NaN bits: {tbl(info['torch_nan_bits']) or '(none)'}"
    lines += f"""

torch cannot convert `float4_e2m1fn_x2` to float32: {o['torch_f4_convert']}; the F4 and
F6 tables come from ml_dtypes only.  Note that ml_dtypes' sub-byte types do not
ignore the unused upper bits of the byte (e.g. byte 0x10 viewed as
`float4_e2m1fn` gives {o['mldtypes_f4_0x10']}), so the tables are only defined for
codes with the upper bits clear.

Recommendation for tests: compare non-NaN entries bit for bit; for NaN
entries either compare exactly against the convention moeckpt chooses to copy
(documented above) or only check "is NaN" (and the sign, where the reference
keeps it).
"""
    (out / "README.md").write_text(lines)


# ---------------------------------------------------------------------------
# b) safetensors files written by the official library
# ---------------------------------------------------------------------------

def u8view(codes, dtype, shape):
    return torch.tensor(codes, dtype=torch.uint8).reshape(shape).view(dtype)


def make_safetensors() -> None:
    out = fresh_dir(FIX / "safetensors")
    rng = np.random.default_rng(SEED + 1)
    g = torch.Generator().manual_seed(SEED + 1)

    def rnd_int(dtype, n, lo, hi, edges):
        vals = list(edges) + [int(x) for x in rng.integers(lo, hi, size=n - len(edges), endpoint=True)]
        return np.array(vals, dtype=dtype)

    def float_edges(np_dtype, finfo):
        e = [0.0, -0.0, np.inf, -np.inf, np.nan, float(finfo.smallest_subnormal),
             -float(finfo.smallest_subnormal), float(finfo.max), float(finfo.smallest_normal), 1.0]
        e += [float(x) for x in rng.standard_normal(2)]
        return np.array(e, dtype=np.float64).astype(np_dtype).reshape(3, 4)

    T: dict[str, torch.Tensor] = {}
    T["bool"] = torch.from_numpy(np.array([True, False] + list(rng.integers(0, 2, 5).astype(bool)), dtype=bool))
    T["u8"] = torch.from_numpy(rnd_int(np.uint8, 6, 0, 255, [0, 255]).reshape(2, 3))
    T["i8"] = torch.from_numpy(rnd_int(np.int8, 6, -128, 127, [-128, 127, 0, -1]).reshape(2, 3))
    T["u16"] = torch.from_numpy(rnd_int(np.uint16, 7, 0, 65535, [0, 65535]))
    T["i16"] = torch.from_numpy(rnd_int(np.int16, 6, -32768, 32767, [-32768, 32767, -1]).reshape(2, 3))
    T["u32"] = torch.from_numpy(rnd_int(np.uint32, 7, 0, 2**32 - 1, [0, 2**32 - 1]))
    T["i32"] = torch.from_numpy(rnd_int(np.int32, 6, -2**31, 2**31 - 1, [-2**31, 2**31 - 1, -1]).reshape(2, 3))
    T["u64"] = torch.from_numpy(np.array([0, 2**64 - 1, 2**63, 1] + [int(x) for x in rng.integers(0, 2**63, 3, dtype=np.int64)], dtype=np.uint64))
    T["i64"] = torch.from_numpy(rnd_int(np.int64, 6, -2**63, 2**63 - 1, [-2**63, 2**63 - 1, -1]).reshape(2, 3))
    T["f16"] = torch.from_numpy(float_edges(np.float16, np.finfo(np.float16)))
    bf = float_edges(np.float32, ml_dtypes.finfo(ml_dtypes.bfloat16)).astype(ml_dtypes.bfloat16)
    T["bf16"] = torch.from_numpy(bf.view(np.int16).copy()).view(torch.bfloat16)
    T["f32"] = torch.from_numpy(float_edges(np.float32, np.finfo(np.float32)))
    T["f64"] = torch.from_numpy(float_edges(np.float64, np.finfo(np.float64)))
    c = np.array([0, complex(-0.0, 0.0), complex(np.inf, 1), complex(np.nan, -2),
                  complex(1.5, -2.25)] + list(rng.standard_normal(1) + 1j * rng.standard_normal(1)),
                 dtype=np.complex64).reshape(2, 3)
    T["c64"] = torch.from_numpy(c)

    def f8codes(edges):
        return edges + [int(x) for x in rng.integers(0, 256, 12 - len(edges))]
    T["f8_e4m3"] = u8view(f8codes([0x00, 0x80, 0x7F, 0xFF, 0x01, 0x81, 0x7E, 0xFE, 0x08, 0x38]), torch.float8_e4m3fn, (3, 4))
    T["f8_e5m2"] = u8view(f8codes([0x00, 0x80, 0x7C, 0xFC, 0x7E, 0x7D, 0x01, 0x7B, 0x04, 0x3C]), torch.float8_e5m2, (3, 4))
    T["f8_e8m0"] = u8view([0x00, 0x7F, 0xFF, 0xFE, 0x01, 0x80] + [int(x) for x in rng.integers(0, 255, 1)], torch.float8_e8m0fnu, (7,))
    T["f8_e4m3fnuz"] = u8view(f8codes([0x00, 0x80, 0x01, 0x7F, 0xFF, 0x08, 0x40]), torch.float8_e4m3fnuz, (3, 4))
    T["f8_e5m2fnuz"] = u8view(f8codes([0x00, 0x80, 0x01, 0x7F, 0xFF, 0x04, 0x40]), torch.float8_e5m2fnuz, (3, 4))
    # F4: all 16 codes, logical shape [4,4]; storage [4,2] bytes (x2 packing,
    # element 2k in the low nibble of byte k).
    f4bytes = pack_lsb_first(list(range(16)), 4)
    T["f4"] = torch.tensor(list(f4bytes), dtype=torch.uint8).reshape(4, 2).view(torch.float4_e2m1fn_x2)

    can_write, cannot_write = [], []
    written = {}
    for k, v in T.items():
        try:
            safetensors.torch.save(dict([(k, v)]))
            written[k] = v
            can_write.append(k)
        except Exception as e:  # noqa: BLE001
            cannot_write.append((k, str(e).splitlines()[0]))
    # F6 types: no torch or numpy dtype exists; try TensorSpec directly anyway
    f6_attempts = {}
    for dt in ("float6_e2m3fn", "float6_e3m2fn", "F6_E2M3", "F6_E3M2"):
        buf = np.zeros(6, dtype=np.uint8)
        try:
            safetensors.serialize({"x": safetensors.TensorSpec(dtype=dt, shape=[2, 4], data_ptr=buf.ctypes.data, data_len=6)})
            f6_attempts[dt] = "accepted"
        except Exception as e:  # noqa: BLE001
            f6_attempts[dt] = f"rejected: {str(e).splitlines()[0][:160]}"
    OBS["f6_tensorspec"] = f6_attempts
    for name in ("f6_e2m3", "f6_e3m2"):
        cannot_write.append((name, "no torch/numpy dtype for float6, and TensorSpec rejects every float6 spelling (below)"))
    OBS["can_write"] = can_write
    OBS["cannot_write"] = cannot_write
    safetensors.torch.save_file(written, str(out / "all_dtypes.safetensors"))

    # self-check of the hand-built serializer: reproduce the library's bytes
    lib = (out / "all_dtypes.safetensors").read_bytes()
    des = safetensors.deserialize(lib)
    mine = st_serialize([(n, d["dtype"], d["shape"], bytes(d["data"])) for n, d in des])
    assert mine == lib, "hand-built serializer does not reproduce safetensors bytes"

    # handmade sub-byte file: F6 (library cannot write) + F4 (for ordering)
    e2m3 = list(range(64))
    e3m2 = list(range(63, -1, -1))
    small = [0, 1, 31, 32, 33, 63, 8, 40]
    hand = [
        ("f6_e2m3", "F6_E2M3", [8, 8], pack_lsb_first(e2m3, 6)),
        ("f6_e3m2", "F6_E3M2", [8, 8], pack_lsb_first(e3m2, 6)),
        ("f6_e2m3_small", "F6_E2M3", [2, 4], pack_lsb_first(small, 6)),
        ("f4", "F4", [4, 4], pack_lsb_first(list(range(16)), 4)),
        ("u8", "U8", [3], bytes([1, 2, 3])),
        ("bool", "BOOL", [2], bytes([1, 0])),
    ]
    hb = st_serialize(hand, {"format": "pt", "packing": "lsb-first bit stream"})
    (out / "handmade_subbyte.safetensors").write_bytes(hb)
    des = safetensors.deserialize(hb)
    OBS["handmade_deserialize"] = sorted((n, d["dtype"], d["shape"], len(d["data"])) for n, d in des)
    with safetensors.safe_open(str(out / "handmade_subbyte.safetensors"), "numpy") as f:
        OBS["handmade_safe_open_keys"] = list(f.keys())
        OBS["handmade_safe_open_metadata"] = f.metadata()
        shapes = {}
        for k in f.keys():
            sl = f.get_slice(k)
            shapes[k] = (sl.get_dtype(), sl.get_shape())
        OBS["handmade_safe_open_slices"] = shapes

    # odd shapes
    odd = {
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, dtype=torch.float32),
        "empty_middle": torch.zeros(2, 0, 3, dtype=torch.float32),
        "one": torch.tensor([-1.25], dtype=torch.float32),
        "prime": torch.randn(13, generator=g),
        "cube": torch.randn(3, 5, 7, generator=g),
        "odd_f16": torch.randn(5, 3, generator=g).to(torch.float16),
    }
    safetensors.torch.save_file(odd, str(out / "odd_shapes.safetensors"))

    # unicode metadata
    desc = "Mixtral — μ-experts, 日本語, emoji 🚀, quote \" backslash \\ newline \n tab \t"
    uni = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
           "ü/名前": torch.tensor([1, 2, 3], dtype=torch.int64)}
    # The Rust writer serializes __metadata__ from a HashMap with a per-process
    # random order; retry until the keys come out sorted so the file is
    # reproducible across runs (still written by the library).
    path = out / "metadata_unicode.safetensors"
    for attempt in range(200):
        safetensors.torch.save_file(uni, str(path), metadata={"format": "pt", "description": desc})
        meta_keys = list(json.loads(header_of(path))["__metadata__"].keys())
        if meta_keys == sorted(meta_keys):
            break
        # (each new Rust HashMap gets fresh RandomState keys, so retrying works)
    else:
        raise RuntimeError("could not get sorted metadata order from the library")
    OBS["unicode_attempts"] = attempt + 1
    OBS["unicode_header"] = header_of(out / "metadata_unicode.safetensors")

    # single metadata key, mixed dtypes
    single = {
        "weight": torch.randn(4, 3, generator=g),
        "half": torch.randn(2, 5, generator=g).to(torch.float16),
        "brain": torch.randn(3, 3, generator=g).to(torch.bfloat16),
        "ids": torch.tensor([[0, -1, 2**40], [7, 8, -2**62]], dtype=torch.int64),
        "mask": torch.tensor([True, False, True, True, False], dtype=torch.bool),
        "bytes": torch.tensor([0, 1, 127, 128, 255, 42, 9], dtype=torch.uint8),
        "a.b.c": torch.randn(1, generator=g),
    }
    safetensors.torch.save_file(single, str(out / "single_meta.safetensors"), metadata={"format": "pt"})
    lib = (out / "single_meta.safetensors").read_bytes()
    des = safetensors.deserialize(lib)
    assert st_serialize([(n, d["dtype"], d["shape"], bytes(d["data"])) for n, d in des], {"format": "pt"}) == lib

    make_mixtral(out)
    write_safetensors_readme(out)


def header_of(path: Path) -> str:
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return b[8:8 + n].decode("utf-8")


def make_mixtral(out: Path) -> None:
    import transformers
    from transformers import MixtralConfig, MixtralForCausalLM
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = MixtralConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                        num_experts_per_tok=2, max_position_embeddings=64, tie_word_embeddings=False)
    model = MixtralForCausalLM(cfg)
    model.eval()
    OBS["transformers_version"] = transformers.__version__
    sd = model.state_dict()
    OBS["mixtral_in_memory_names"] = [(k, list(v.shape)) for k, v in sd.items()]

    single = out / "tiny-mixtral"
    model.save_pretrained(str(single))
    # find a max_shard_size giving exactly 3 shards
    chosen = None
    for kb in range(10, 80):
        tmp = out / "_shard_probe"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(str(tmp), max_shard_size=f"{kb}KB")
        n = len(list(tmp.glob("model-*.safetensors")))
        shutil.rmtree(tmp)
        if n == 3:
            chosen = f"{kb}KB"
            break
    assert chosen, "no shard size gives 3 shards"
    OBS["mixtral_max_shard_size"] = chosen
    sharded = out / "tiny-mixtral-sharded"
    model.save_pretrained(str(sharded), max_shard_size=chosen)
    assert sorted(p.name for p in sharded.glob("*.safetensors")) == [
        f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]

    with safetensors.safe_open(str(single / "model.safetensors"), "pt") as f:
        disk = {k: f.get_tensor(k) for k in f.keys()}
        OBS["mixtral_disk_metadata"] = f.metadata()
    OBS["mixtral_disk_names"] = [(k, list(v.shape)) for k, v in disk.items()]
    fused = any("gate_up_proj" in k for k in sd)
    OBS["mixtral_fused_in_memory"] = fused
    OBS["mixtral_disk_is_classic"] = any(".block_sparse_moe.experts.0.w1.weight" in k for k in disk)
    # Check the on-disk per-expert tensors are the in-memory fused ones, split.
    if fused and OBS["mixtral_disk_is_classic"]:
        I = cfg.intermediate_size
        for l in range(cfg.num_hidden_layers):
            gu = sd[f"model.layers.{l}.mlp.experts.gate_up_proj"]
            dn = sd[f"model.layers.{l}.mlp.experts.down_proj"]
            for e in range(cfg.num_local_experts):
                p = f"model.layers.{l}.block_sparse_moe.experts.{e}."
                assert torch.equal(disk[p + "w1.weight"], gu[e, :I]), "w1 != gate half"
                assert torch.equal(disk[p + "w3.weight"], gu[e, I:]), "w3 != up half"
                assert torch.equal(disk[p + "w2.weight"], dn[e]), "w2 != down"
            assert torch.equal(disk[f"model.layers.{l}.block_sparse_moe.gate.weight"], sd[f"model.layers.{l}.mlp.gate.weight"])
        OBS["mixtral_split_check"] = "w1 = gate_up_proj[e, :intermediate], w3 = gate_up_proj[e, intermediate:], w2 = down_proj[e] (verified)"
        # also store the in-memory fused layout (transformers >= 5 naming) as a
        # single file, for tools that meet fused-expert checkpoints.
        fdir = out / "tiny-mixtral-fused"
        fdir.mkdir()
        safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()},
                                    str(fdir / "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(single / "config.json", fdir / "config.json")
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    OBS["mixtral_index_metadata"] = idx["metadata"]
    OBS["mixtral_shards"] = {p.name: p.stat().st_size for p in sorted(sharded.glob("*.safetensors"))}
    # sharded must hold exactly the same tensors as the single file
    got = {}
    for shard in sorted(sharded.glob("*.safetensors")):
        with safetensors.safe_open(str(shard), "pt") as f:
            for k in f.keys():
                assert idx["weight_map"][k] == shard.name
                got[k] = f.get_tensor(k)
    assert got.keys() == disk.keys() and all(torch.equal(got[k], disk[k]) for k in got)
    assert idx["metadata"]["total_size"] == sum(v.numel() * v.element_size() for v in got.values())


def write_safetensors_readme(out: Path) -> None:
    o = OBS
    names_disk = "\n".join(f"    {k} {s}" for k, s in o["mixtral_disk_names"])
    names_mem = "\n".join(f"    {k} {s}" for k, s in o["mixtral_in_memory_names"])
    cw = ", ".join(f"`{k}`" for k in o["can_write"])
    cnw = "\n".join(f"* `{k}`: {why}" for k, why in o["cannot_write"])
    f6 = "\n".join(f"* `TensorSpec(dtype={k!r})`: {v}" for k, v in o["f6_tensorspec"].items())
    shards = ", ".join(f"`{k}` ({v} B)" for k, v in o["mixtral_shards"].items())
    text = f"""# safetensors reference files

Generated by `scripts/make_fixtures.py` with safetensors {safetensors.__version__},
torch {torch.__version__}, transformers {o['transformers_version']}.  Everything except
`handmade_subbyte.safetensors` was written by the official library
(`safetensors.torch.save_file` or `transformers.save_pretrained`).

## `all_dtypes.safetensors`

One tensor per dtype, named after it in lower case, no `__metadata__`.
Written with `safetensors.torch.save_file`: {cw}.

Float tensors are [3,4] and start with `0, -0, +inf, -inf, nan, min subnormal,
-min subnormal, max, min normal, 1.0` followed by 2 random values (for f16 /
bf16 / f32 / f64).  8-bit floats are given as bit patterns: `f8_e4m3`
`[0x00,0x80,0x7F(nan),0xFF(-nan),0x01,0x81,0x7E(448),0xFE,0x08,0x38, rnd, rnd]`,
`f8_e5m2` `[0x00,0x80,0x7C(inf),0xFC(-inf),0x7E(qnan),0x7D(snan),0x01,0x7B(max),0x04,0x3C, rnd, rnd]`,
`f8_e8m0` [7] `[0x00(2^-127),0x7F(1.0),0xFF(nan),0xFE(2^127),0x01,0x80, rnd]`,
`f8_e4m3fnuz` / `f8_e5m2fnuz` `[0x00,0x80(nan),0x01,0x7F(max),0xFF(-max),...]`.
`f4` has logical shape [4,4] holding all 16 codes 0..15 in order; torch writes it
from a `float4_e2m1fn_x2` tensor of storage shape [4,2] and the library doubles
the last dimension in the header (`"dtype":"F4","shape":[4,4]`, 8 bytes).  The
packing is element 2k in the low nibble of byte k (so the bytes are
`10 32 54 76 98 BA DC FE`); safetensors itself only sees bytes.

Could NOT be written by the library:
{cnw}

{f6}

The file's header layout was reproduced byte for byte by the hand-built
serializer in `make_fixtures.py` (sort by dtype rank descending then name,
compact JSON, space padding to a multiple of 8) - asserted at generation time.

## `handmade_subbyte.safetensors`

Built by hand (same serializer), metadata `{{"format":"pt","packing":"lsb-first bit stream"}}`:
`f6_e2m3` F6_E2M3 [8,8] = codes 0..63 in order; `f6_e3m2` F6_E3M2 [8,8] = codes
63..0; `f6_e2m3_small` F6_E2M3 [2,4] = codes `[0,1,31,32,33,63,8,40]` (6 bytes);
`f4` F4 [4,4] = codes 0..15; `u8` [3] = 1,2,3; `bool` [2] = true,false.
Sub-byte packing is a little-endian bit stream: element j occupies bits
`[j*bits, (j+1)*bits)` counting from bit 0 (LSB) of byte 0 (so for F4, element
2k is the low nibble of byte k).  This is the convention these fixtures use (for F4 it matches torch's
`float4_e2m1fn_x2`); the safetensors format itself does not define it.
Accepted by the reference: `safetensors.deserialize` returns
{o['handmade_deserialize']}; `safe_open(..., "numpy")` lists
{o['handmade_safe_open_keys']} with slices {o['handmade_safe_open_slices']} (reading
the values into numpy is impossible: numpy has no such dtypes).

## `odd_shapes.safetensors`

f32 `scalar` [] = 3.5, `empty` [0], `empty_middle` [2,0,3], `one` [1] = -1.25,
`prime` [13], `cube` [3,5,7] (random), f16 `odd_f16` [5,3].  Empty tensors get
`data_offsets` `[k,k]` (several tensors may share the same offset).

## `metadata_unicode.safetensors`

f32 `a` [2,3] = 0..5 and i64 `ü/名前` [3] = 1,2,3 (non-ASCII tensor name), metadata
`format` = `pt` and `description` with non-ASCII and JSON escapes.  Header as
written:

```
{o['unicode_header']}
```

## `single_meta.safetensors`

Mixed dtypes (f32 `weight` [4,3], f16 `half` [2,5], bf16 `brain` [3,3], i64 `ids`
[2,3], bool `mask` [5], u8 `bytes` [7], f32 `a.b.c` [1]) and exactly one metadata
key `{{"format":"pt"}}` - for byte-for-byte writer tests (with a single key the
metadata order is deterministic; with several, the Rust writer uses a HashMap and
the order is unspecified).

## Tiny Mixtral

`MixtralForCausalLM(MixtralConfig(vocab_size=64, hidden_size=16,
intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
max_position_embeddings=64, tie_word_embeddings=False))` after
`torch.manual_seed(0)`, float32.

* `tiny-mixtral/`: `save_pretrained` (single file `model.safetensors`,
  `config.json`, `generation_config.json`).  File metadata {o['mixtral_disk_metadata']}.
* `tiny-mixtral-sharded/`: `save_pretrained(max_shard_size="{o['mixtral_max_shard_size']}")`:
  {shards} and `model.safetensors.index.json` with metadata
  `{json.dumps(o['mixtral_index_metadata'])}` (transformers 5 adds
  `total_parameters` next to `total_size`; `total_size` is the sum of tensor
  bytes).  Shards are not filled in name order: transformers packs tensors
  into shards its own way; use the index.
* `tiny-mixtral-fused/`: the in-memory state dict of transformers
  {o['transformers_version']} (fused experts) written with `safetensors.torch.save_file`
  plus the same `config.json`.  This is NOT what `save_pretrained` writes.

transformers {o['transformers_version']} keeps experts fused in memory
(`mlp.experts.gate_up_proj` [E, 2*I, H], `mlp.experts.down_proj` [E, H, I],
`mlp.gate.weight`) but its `save_pretrained` converts back to the classic
per-expert Hub layout, so `tiny-mixtral/` and `tiny-mixtral-sharded/` already
contain the classic layout.  Split relation: {o.get('mixtral_split_check', 'n/a')}.

Tensor names on disk (`tiny-mixtral/`, `tiny-mixtral-sharded/`), in file order:

```
{names_disk}
```

Tensor names of `tiny-mixtral-fused/` (transformers in-memory layout):

```
{names_mem}
```
"""
    (out / "README.md").write_text(text)


# ---------------------------------------------------------------------------
# c) malformed files
# ---------------------------------------------------------------------------

def f32b(*vals) -> bytes:
    return np.array(vals, dtype="<f4").tobytes()


def hdr(obj) -> bytes:
    return json_compact(obj)


def make_malformed() -> None:
    out = fresh_dir(FIX / "malformed")
    expected: dict[str, dict] = {}

    def single(name: str, error: str, reason: str, content: bytes) -> None:
        (out / name).write_bytes(content)
        try:
            safetensors.deserialize(content)
            rej, msg = False, None
        except Exception as e:  # noqa: BLE001
            rej, msg = True, str(e).splitlines()[0][:200]
        expected[name] = {"error": error, "reason": reason, "kind": "file",
                          "reference_rejects": rej, "reference_message": msg}

    eight = f32b(1.0, 2.0)  # 8 bytes: an F32 [2] tensor
    ok_t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

    single("fileTooSmall.safetensors", "fileTooSmall", "5 bytes: shorter than the 8-byte length prefix",
           b"\x10\x00\x00\x00\x00")
    single("headerTooLarge.safetensors", "headerTooLarge", "length prefix 200,000,000 > 100,000,000 limit",
           struct.pack("<Q", 200_000_000) + b"{}" + b" " * 6)
    single("headerLengthOutOfBounds.safetensors", "headerLengthOutOfBounds",
           "length prefix 64 but only 16 bytes follow it",
           struct.pack("<Q", 64) + b'{"a":1}' + b" " * 9)
    single("headerNotUTF8.safetensors", "headerNotUTF8", "header contains byte 0xFF inside a tensor name",
           raw_file(b'{"a\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight))
    single("headerNotJSON-syntax.safetensors", "headerNotJSON", "JSON syntax error (missing closing brace, stray comma)",
           raw_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},', eight))
    single("headerNotJSON-trailing.safetensors", "headerNotJSON", "valid JSON object followed by trailing garbage inside the header",
           raw_file(hdr({"a": ok_t}) + b"xyz", eight))
    single("headerNotObject.safetensors", "headerNotObject", "top-level JSON value is an array",
           raw_file(b'[{"dtype":"F32","shape":[2],"data_offsets":[0,8]}]', eight))
    single("duplicateKey.safetensors", "duplicateKey", "tensor name \"a\" appears twice in the header object (reference accepts, last wins)",
           raw_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                    b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight))
    single("malformedTensorEntry-missingOffsets.safetensors", "malformedTensorEntry", "tensor entry lacks data_offsets",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [2]}}), eight))
    single("malformedTensorEntry-shapeString.safetensors", "malformedTensorEntry", "shape is the string \"[2]\"",
           raw_file(hdr({"a": {"dtype": "F32", "shape": "[2]", "data_offsets": [0, 8]}}), eight))
    single("malformedTensorEntry-threeOffsets.safetensors", "malformedTensorEntry", "data_offsets has 3 elements",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}), eight))
    single("unknownDtype.safetensors", "unknownDtype", "dtype \"F12\" (otherwise a well-formed 8-byte tensor)",
           raw_file(hdr({"a": {"dtype": "F12", "shape": [2], "data_offsets": [0, 8]}}), eight))
    single("invalidShape-negative.safetensors", "invalidShape", "shape [-2]",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}), eight))
    single("invalidShape-fractional.safetensors", "invalidShape", "shape [2.5]",
           raw_file(b'{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', eight))
    single("offsetsReversed.safetensors", "offsetsReversed",
           "data_offsets [8,0] (begin > end) on an F32 [2] tensor, 8-byte data section; "
           "this check must run before byte-length/coverage checks",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}), eight))
    single("byteLengthMismatch.safetensors", "byteLengthMismatch",
           "F32 [2] (8 bytes) but data_offsets [0,12] span 12 bytes (data section is 12 bytes)",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}), f32b(1, 2, 3)))
    single("sizeOverflow.safetensors", "sizeOverflow",
           "shape [4294967296,4294967296,16] F32: element count * 4 overflows UInt64",
           raw_file(hdr({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]}}), eight))
    single("subByteNotWholeBytes.safetensors", "subByteNotWholeBytes",
           "F4 [3] is 12 bits, not a whole number of bytes (offsets [0,2], 2-byte data)",
           raw_file(hdr({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}), b"\x21\x03"))
    single("gapOrOverlap-gap.safetensors", "gapOrOverlap",
           "a [0,8], b [12,20]: 4-byte gap between tensors (data section 20 bytes)",
           raw_file(hdr({"a": ok_t, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}),
                    f32b(1, 2, 0, 3, 4)))
    single("gapOrOverlap-overlap.safetensors", "gapOrOverlap",
           "a [0,8], b [4,12]: tensors overlap (data section 12 bytes)",
           raw_file(hdr({"a": ok_t, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}),
                    f32b(1, 2, 3)))
    single("dataSectionMismatch-trailing.safetensors", "dataSectionMismatch",
           "last tensor ends at 8 but the data section is 12 bytes",
           raw_file(hdr({"a": ok_t}), f32b(1, 2, 3)))
    single("dataSectionMismatch-short.safetensors", "dataSectionMismatch",
           "last tensor ends at 8 but the data section is only 4 bytes",
           raw_file(hdr({"a": ok_t}), f32b(1)))
    single("metadataNotStringMap.safetensors", "metadataNotStringMap",
           "__metadata__ has a number value {\"format\":\"pt\",\"version\":1}",
           raw_file(b'{"__metadata__":{"format":"pt","version":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', eight))
    single("gitLFSPointer.safetensors", "gitLFSPointer", "Git LFS pointer text instead of the real file",
           b"version https://git-lfs.github.com/spec/v1\n"
           b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
           b"size 123\n")
    single("htmlPage.safetensors", "htmlPage", "an HTML 404 error page saved under the checkpoint's name",
           b"<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n"
           b"<body><h1>404</h1><p>Entry not found</p></body>\n</html>\n")

    # sanity: the base valid file used above is accepted by the reference
    safetensors.deserialize(raw_file(hdr({"a": ok_t}), eight))

    # ---- sharded ----
    def shard(tensors: dict[str, tuple]) -> bytes:
        return st_serialize([(n, "F32", [len(v)], f32b(*v)) for n, v in tensors.items()], {"format": "pt"})

    S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    IDX = "model.safetensors.index.json"

    def sharded(name: str, error: str, reason: str, index, shards: dict[str, bytes]) -> None:
        d = out / name
        d.mkdir()
        (d / IDX).write_text(index if isinstance(index, str) else json.dumps(index, indent=2) + "\n")
        for fn, content in shards.items():
            (d / fn).write_bytes(content)
        expected[name] = {"error": error, "reason": reason, "kind": "sharded",
                          "index": f"{name}/{IDX}", "reference_rejects": None,
                          "reference_message": None}

    def idx(wm, total):
        return {"metadata": {"total_size": total}, "weight_map": wm}

    a, b, c = {"a": (1.0, 2.0)}, {"b": (3.0, 4.0)}, {"c": (5.0, 6.0)}
    sharded("indexMalformed", "indexMalformed", "weight_map is a JSON array, not an object",
            {"metadata": {"total_size": 8}, "weight_map": ["a", S1]}, {S1: shard(a)})
    sharded("shardMissing", "shardMissing", f"weight_map names {S2}, which does not exist",
            idx({"a": S1, "b": S2}, 16), {S1: shard(a)})
    sharded("tensorMissingFromShard", "tensorMissingFromShard", f"weight_map puts \"b\" in {S1}, which only holds \"a\"",
            idx({"a": S1, "b": S1, "c": S2}, 24), {S1: shard(a), S2: shard(c)})
    sharded("tensorInTwoShards", "tensorInTwoShards",
            f"\"b\" is stored in both {S1} and {S2} (weight_map says {S1})",
            idx({"a": S1, "b": S1, "c": S2}, 24), {S1: shard({**a, **b}), S2: shard({**b, **c})})
    sharded("shardPathEscapes", "shardPathEscapes",
            "weight_map maps \"b\" to ../outside.safetensors (outside the checkpoint directory; the target does not exist either, "
            "so the escape check must come before the existence check)",
            idx({"a": S1, "b": "../outside.safetensors"}, 16), {S1: shard(a)})
    sharded("tensorNotInIndex", "tensorNotInIndex", f"{S2} holds \"c\", which the weight_map does not list",
            idx({"a": S1, "b": S2}, 16), {S1: shard(a), S2: shard({**b, **c})})

    (out / "EXPECTED.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    OBS["malformed"] = expected
    (out / "README.md").write_text("""# Malformed safetensors inputs

Generated by `scripts/make_fixtures.py`; every file is crafted byte by byte in
Python (not by the safetensors library).  `EXPECTED.json` maps each entry name
to:

* `error`: the moeckpt reader error identifier the input must produce;
* `reason`: what is wrong with it;
* `kind`: `"file"` (a single `.safetensors` file in this directory) or
  `"sharded"` (a subdirectory; open `index`, i.e.
  `<name>/model.safetensors.index.json`);
* `reference_rejects`: whether `safetensors.deserialize(bytes)` (safetensors
  """ + safetensors.__version__ + """) raised on the file (`null` for sharded
  checkpoints, which the safetensors library does not handle);
  `reference_message`: its first message line.

Variants of one rule are named `<rule>-<variant>.safetensors`.  Notes:

* the reference accepts `duplicateKey.safetensors` (serde keeps the last
  entry); moeckpt rejects it on purpose;
* for `offsetsReversed` the file necessarily also breaks byte-length/coverage
  rules, so that check has to run first;
* `gitLFSPointer` and `htmlPage` would otherwise look like `headerTooLarge`
  (their first 8 bytes read as a huge length), so they must be sniffed first;
* `shardPathEscapes` points at `../outside.safetensors`, which does not
  exist, so the escape check must precede the existence check.
""")


CAST_TARGETS = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def make_casts() -> None:
    """Each float tensor cast by torch (Tensor.to); integer, bool and complex tensors, and F4
    (packed, not castable element-wise), are stored unchanged."""
    out = fresh_dir(FIX / "casts")
    sources = {"all_dtypes": FIX / "safetensors" / "all_dtypes.safetensors",
               "tiny-mixtral": FIX / "safetensors" / "tiny-mixtral" / "model.safetensors"}
    kept: dict[str, list[str]] = {}
    for stem, path in sources.items():
        tensors = safetensors.torch.load_file(str(path))
        for suffix, dtype in CAST_TARGETS.items():
            cast = {}
            for name, t in tensors.items():
                if t.is_floating_point() and t.dtype != torch.float4_e2m1fn_x2:
                    cast[name] = t.to(dtype)
                else:
                    cast[name] = t
                    kept.setdefault(f"{stem}-{suffix}", []).append(name)
            safetensors.torch.save_file(cast, str(out / f"{stem}-{suffix}.safetensors"), metadata={"format": "pt"})
    lines = ["# Casts made by torch", "",
             f"Written by `scripts/make_fixtures.py` (torch {torch.__version__}, safetensors "
             f"{safetensors.__version__}): every floating-point tensor of the source converted with "
             "`Tensor.to(dtype)` and saved with `safetensors.torch.save_file(..., metadata={\"format\": \"pt\"})`.",
             "", "| file | source | tensors stored unchanged |", "| --- | --- | --- |"]
    for stem, path in sources.items():
        for suffix in CAST_TARGETS:
            lines.append(f"| `{stem}-{suffix}.safetensors` | `{path.relative_to(FIX)}` | "
                         f"{', '.join(kept.get(f'{stem}-{suffix}', [])) or 'none'} |")
    lines += ["", "Tests compare every element bit for bit, NaNs included: torch 2.13 writes one NaN for any NaN",
              "cast to bf16 (0xFFFF from f32, 0x7FC0 from any other dtype), keeps sign and payload under a quiet",
              "bit for f16, and widens the F8 encodings' NaNs as `FloatBits.Minifloat` does."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    os.chdir(ROOT)
    torch.manual_seed(0)
    log(f"writing fixtures under {FIX}")
    make_dtypes()
    log("dtypes done")
    make_safetensors()
    log("safetensors done")
    make_malformed()
    log("malformed done")
    make_casts()
    log("casts done")
    for p in FIX.rglob("*"):  # the Rust writer creates files 0600
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    summary = {k: v for k, v in OBS.items() if k not in ("malformed", "mixtral_in_memory_names", "mixtral_disk_names")}
    print(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
    total = sum(p.stat().st_size for p in FIX.rglob("*") if p.is_file())
    log(f"total fixture size: {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
