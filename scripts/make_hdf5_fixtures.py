#!/usr/bin/env python3
"""Generate fixtures/hdf5/: HDF5 checkpoints for moeckpt's HDF5 format.

Deterministic (fixed seeds, no timestamps; asserted by the caller comparing
two runs) and re-runnable: fixtures/hdf5/ is deleted and rewritten.  Run from
anywhere:

    KERAS_BACKEND=torch /work/venv/bin/python scripts/make_hdf5_fixtures.py

Needs the pinned packages in scripts/requirements-fixtures.txt (h5py, numpy,
ml_dtypes, safetensors, torch, keras).  CI never runs this script; the
generated files are committed.  If `h5cc` (Debian's libhdf5-dev, the library
moeckpt links) is on PATH, a small C reader embedded below is compiled and
run on every file: it must read every supported dataset to the bytes in
MANIFEST.json with the system libhdf5.

Files (see the generated fixtures/hdf5/README.md):
  nested.h5, chunked.h5, big_endian.h5, bf16.h5, unsupported.h5,
  keras/ (Keras 3 .weights.h5 f32 + bf16, Keras 3 legacy .h5, Keras-2-style
  legacy files built with h5py), tiny-mixtral/ and tiny-mixtral-bf16/
  (fixtures/models' tiny Mixtral as HDF5), malformed/ (+ EXPECTED.json),
  MANIFEST.json, README.md

moeckpt's conventions are implemented (for checking) in scripts/check_hdf5.py:
dataset /a/b/c = tensor a.b.c; root scalar string attributes = metadata;
BF16 = custom 2-byte HDF5 float or 2-byte opaque with attribute
dtype=bfloat16; F8_* = custom 1-byte floats with a `dtype` attribute; C64 =
compound {r: f32, i: f32}.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
OUT = ROOT / "fixtures" / "hdf5"
MODELS = ROOT / "fixtures" / "models"
sys.path.insert(0, str(SCRIPTS))
import check_hdf5 as ck  # noqa: E402
from fixture_util import fresh_dir, log

SEED = 20240607
MAX_TOTAL_BYTES = 1536 * 1024

# MANIFEST: file -> {"metadata": {...}, "tensors": {path: {...}}}
MANIFEST: dict[str, dict] = {}
# Observations rendered into the README
OBS: dict[str, object] = {}
NOTES: dict[str, str] = {}  # file -> paragraph for the README




def rng(offset: int) -> np.random.Generator:
    return np.random.default_rng(SEED + offset)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def rel(p: Path) -> str:
    return p.relative_to(OUT).as_posix()


# ---------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------

def expect(fpath: Path, path: str, dtype: str, shape, raw_le: bytes | None, attrs: dict | None = None,
           refuse: str | None = None, note: str | None = None) -> None:
    ent = MANIFEST.setdefault(rel(fpath), {"metadata": {}, "tensors": {}})
    assert path.startswith("/") and path not in ent["tensors"], path
    e = {"name": ck.tensor_name(path), "dtype": dtype,
         "shape": None if shape is None else [int(s) for s in shape],
         "bytes_hex_sha256": sha(raw_le) if raw_le is not None else None, "attrs": attrs or {}}
    if refuse:
        e["refuse"] = refuse
    if note:
        e["note"] = note
    ent["tensors"][path] = e


def expect_meta(fpath: Path, meta: dict[str, str]) -> None:
    MANIFEST.setdefault(rel(fpath), {"metadata": {}, "tensors": {}})["metadata"] = dict(meta)


ST_NAME = {np.dtype(k): v for k, v in {
    "bool": "BOOL", "u1": "U8", "i1": "I8", "u2": "U16", "i2": "I16", "u4": "U32", "i4": "I32",
    "u8": "U64", "i8": "I64", "f2": "F16", "f4": "F32", "f8": "F64", "c8": "C64"}.items()}


def le_bytes(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.uint8).tobytes()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def st_name(a: np.ndarray) -> str:
    return ST_NAME[a.dtype.newbyteorder("=")]


def put(f: h5py.File, fpath: Path, path: str, data: np.ndarray, attrs: dict | None = None, **kw) -> h5py.Dataset:
    """create_dataset(path, data=data, **kw) + its expectation (native types)."""
    d = f.create_dataset(path, data=data, **kw)
    for k, v in (attrs or {}).items():
        d.attrs[k] = v
    expect(fpath, path, st_name(data), data.shape, le_bytes(data), ck.string_attrs(d))
    return d


# ---------------------------------------------------------------------------
# custom float types
# ---------------------------------------------------------------------------

def custom_float(size: int, fields: tuple[int, int, int, int, int], ebias: int):
    """H5Tcopy(H5T_IEEE_F32LE) narrowed to `size` bytes.  libhdf5 checks each
    call against the current state: the fields must first be moved inside the
    future precision (set_fields while the type is still 32-bit), then
    offset 0, precision, size, and the bias last."""
    t = h5py.h5t.IEEE_F32LE.copy()
    t.set_fields(*fields)
    t.set_offset(0)
    t.set_precision(8 * size)
    t.set_size(size)
    t.set_ebias(ebias)
    return t


def bf16_type():
    return custom_float(2, ck.BF16_FIELDS, 127)


F8_SPECS = {  # safetensors name -> (fields, bias, ml_dtypes type)
    "F8_E5M2": ((7, 2, 5, 0, 2), 15, ml_dtypes.float8_e5m2),
    "F8_E4M3": ((7, 3, 4, 0, 3), 7, ml_dtypes.float8_e4m3fn),
    "F8_E4M3FNUZ": ((7, 3, 4, 0, 3), 8, ml_dtypes.float8_e4m3fnuz),
    "F8_E5M2FNUZ": ((7, 2, 5, 0, 2), 16, ml_dtypes.float8_e5m2fnuz),
}


def f8_type(name: str):
    fields, bias, _ = F8_SPECS[name]
    return custom_float(1, fields, bias)


def probe_type_call_orders() -> None:
    """Record which call orders libhdf5 accepts for the BF16 type."""
    def attempt(steps):
        t = h5py.h5t.IEEE_F32LE.copy()
        for name, args in steps:
            try:
                getattr(t, name)(*args)
            except Exception as e:  # noqa: BLE001
                return f"{name}{args} fails: {str(e).split('(')[0].strip()}"
        return "accepted"
    fs = ("set_fields", (15, 7, 8, 0, 7))
    orders = {
        "set_fields, set_offset(0), set_precision(16), set_size(2), set_ebias(127)":
            [fs, ("set_offset", (0,)), ("set_precision", (16,)), ("set_size", (2,)), ("set_ebias", (127,))],
        "set_size(2) first":
            [("set_size", (2,)), fs, ("set_precision", (16,)), ("set_ebias", (127,))],
        "set_precision(16) before set_fields":
            [("set_precision", (16,)), fs, ("set_size", (2,)), ("set_ebias", (127,))],
        "set_fields, set_size(2) (precision left at 32)":
            [fs, ("set_size", (2,)), ("set_ebias", (127,))],
    }
    OBS["bf16_call_orders"] = {k: attempt(v) for k, v in orders.items()}
    # E8M0: no sign bit; HDF5 floats need one inside the precision
    try:
        custom_float(1, (8, 0, 8, 0, 0), 127)
        OBS["e8m0"] = "accepted"
    except Exception as e:  # noqa: BLE001
        OBS["e8m0"] = str(e).split("(")[0].strip()
    try:
        custom_float(1, (7, 0, 8, 0, 0), 127)
        OBS["e8m0_overlap"] = "accepted"
    except Exception as e:  # noqa: BLE001
        OBS["e8m0_overlap"] = str(e).split("(")[0].strip()


def untimed_dcpl():
    """A dataset creation property list without object timestamps (h5py's
    high-level API already does this; libhdf5's default records them)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    return dcpl


def untimed_group(parent, name: str):
    """parent.require_group(name) without object timestamps, for every level."""
    g = parent
    for part in [x for x in name.split("/") if x]:
        if part not in g:
            gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            gcpl.set_obj_track_times(False)
            h5py.h5g.create(g.id, part.encode(), gcpl=gcpl)
        g = g[part]
    return g


def create_raw(f: h5py.File, path: str, ftype, raw: np.ndarray, chunks=None, gzip=None, shuffle=False,
               shape=None):
    """A dataset of type `ftype` holding the raw bit patterns `raw` (uint8 /
    uint16 array, shape = dataset shape unless `shape` is given), written with
    memory type == file type so that HDF5 converts nothing."""
    shape = raw.shape if shape is None else tuple(shape)
    assert raw.nbytes == int(np.prod(shape)) * ftype.get_size(), (path, raw.nbytes, shape)
    parent, _, leaf = path.rpartition("/")
    g = untimed_group(f, parent) if parent else f
    dcpl = untimed_dcpl()
    if chunks:
        dcpl.set_chunk(chunks)
        if shuffle:
            dcpl.set_shuffle()
        if gzip is not None:
            dcpl.set_deflate(gzip)
    space = h5py.h5s.create(h5py.h5s.SCALAR) if len(shape) == 0 else h5py.h5s.create_simple(shape)
    did = h5py.h5d.create(g.id, leaf.encode(), ftype, space, dcpl=dcpl)
    if raw.size:
        did.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(raw), mtype=ftype)
    return f[path]


def bf16_bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


# ---------------------------------------------------------------------------
# nested.h5
# ---------------------------------------------------------------------------

DESCRIPTION = "Tiny MoE fixture — Mixture-of-Experts: ñ, ü, 日本語, emoji 🚀"


def make_nested() -> None:
    p = OUT / "nested.h5"
    r = rng(1)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "pt"
        f.attrs["description"] = DESCRIPTION
        f.attrs["fixed"] = np.bytes_("fixed")
        f.attrs["layer_ids"] = np.arange(4, dtype=np.int32)
        blk = "/model/encoder/block"
        put(f, p, f"{blk}/f16", r.standard_normal((4, 6)).astype(np.float16))
        put(f, p, f"{blk}/f32", r.standard_normal((4, 6)).astype(np.float32),
            attrs={"units": "arbitrary", "scale": np.float32(0.5)})
        put(f, p, f"{blk}/f64", r.standard_normal((4, 6)))
        for dt in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"):
            info = np.iinfo(dt)
            mid = r.integers(info.min, info.max, size=7, dtype=dt, endpoint=True)
            vals = np.concatenate([np.array([info.min, info.max, 0, 1], dtype=dt), mid])
            put(f, p, f"{blk}/{np.dtype(dt).name}", vals)
        put(f, p, f"{blk}/bool", r.integers(0, 2, size=(2, 3)).astype(bool))
        put(f, p, "/model/encoder/scale_i64", np.array([[-5], [7]], dtype=np.int64))
        put(f, p, "/scalar", np.array(3.25, dtype=np.float32))
        put(f, p, "/empty/vector", np.zeros((0,), np.float32))
        put(f, p, "/empty/inner_zero", np.zeros((2, 0, 3), np.int64))
        put(f, p, "/odd/cube", r.standard_normal((3, 5, 7)).astype(np.float32))
        put(f, p, "/top", np.arange(5, dtype=np.float32) / 4)
        f["model"].attrs["role"] = "group attribute"
        f["model"].attrs["n_layers"] = np.int64(2)
        expect_meta(p, ck.string_attrs(f))
    NOTES["nested.h5"] = (
        "Every native type under groups nested 3 deep (`/model/encoder/block/*`); integers hold "
        "their type's min, max, 0, 1 then 7 seeded values; a scalar, two empty datasets, a [3,5,7] "
        "cube and a dataset directly under the root.  Root attributes as h5py writes them: "
        "`format`, `description` (variable-length UTF-8 strings), `fixed` (`np.bytes_`, a "
        "fixed-length 5-byte ASCII string, NULLPAD), `layer_ids` (int32 [4], not a string: not "
        "metadata).  `/model` has a string and an int64 attribute, `.../f32` a string and a "
        "float32 attribute (only string attributes are listed in MANIFEST.json).")


# ---------------------------------------------------------------------------
# chunked.h5
# ---------------------------------------------------------------------------

def make_chunked() -> None:
    p = OUT / "chunked.h5"
    r = rng(2)
    base = r.standard_normal((64, 48)).astype(np.float32)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "pt"
        put(f, p, "/contiguous", base)
        put(f, p, "/chunked", base, chunks=(16, 16))
        put(f, p, "/gzip4", base, chunks=(16, 16), compression="gzip", compression_opts=4)
        put(f, p, "/gzip4_shuffle", base, chunks=(16, 16), compression="gzip", compression_opts=4, shuffle=True)
        put(f, p, "/ragged_chunks", base[:50, :37], chunks=(16, 10), compression="gzip", compression_opts=4)
        put(f, p, "/fletcher32", base, chunks=(32, 16), fletcher32=True)
        put(f, p, "/all_filters", base[:40, :40], chunks=(7, 9), compression="gzip", compression_opts=9,
            shuffle=True, fletcher32=True)
        put(f, p, "/i64_gzip_shuffle", r.integers(-10**12, 10**12, size=1000), chunks=(128,),
            compression="gzip", compression_opts=4, shuffle=True)
        put(f, p, "/f16_ragged", r.standard_normal((7, 9, 5)).astype(np.float16), chunks=(4, 4, 2),
            compression="gzip", compression_opts=1)
        put(f, p, "/scaleoffset_i32", r.integers(-1000, 1000, size=(10, 10)).astype(np.int32),
            chunks=(5, 10), scaleoffset=0)
        # compact layout: the data lives in the object header
        dcpl = untimed_dcpl()
        dcpl.set_layout(h5py.h5d.COMPACT)
        small = base[:4, :4].copy()
        did = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((4, 4)), dcpl=dcpl)
        did.write(h5py.h5s.ALL, h5py.h5s.ALL, small)
        expect(p, "/compact", "F32", small.shape, le_bytes(small))
        # never written: no storage allocated, reads give the fill value
        f.create_dataset("/contiguous_unwritten", shape=(8,), dtype="<f4")
        expect(p, "/contiguous_unwritten", "F32", (8,), le_bytes(np.zeros(8, np.float32)),
               note="never written: no storage allocated (H5Dget_offset is undefined); reads give fill value 0")
        f.create_dataset("/contiguous_unwritten_fill", shape=(2, 3), dtype="<f4", fillvalue=2.5)
        expect(p, "/contiguous_unwritten_fill", "F32", (2, 3), le_bytes(np.full((2, 3), 2.5, np.float32)),
               note="never written, fill value 2.5: no storage allocated; reads give 2.5 everywhere")
        # chunked with only some chunks written, fill value -1.5
        d = f.create_dataset("/partial_chunks_fill", shape=(40,), dtype="<f4", chunks=(8,), fillvalue=-1.5)
        want = np.full(40, -1.5, np.float32)
        want[0:8] = base[0, :8]
        want[24:32] = base[1, :8]
        d[0:8] = want[0:8]
        d[24:32] = want[24:32]
        expect(p, "/partial_chunks_fill", "F32", (40,), le_bytes(want),
               note="only chunks 0 and 3 of 5 written; the others read as the fill value -1.5")
        # resizable (maxshape None) dataset grown after writing
        d = f.create_dataset("/resizable", shape=(20, 48), maxshape=(None, 48), dtype="<f4", chunks=(8, 48))
        d[:] = base[:20]
        d.resize((25, 48))
        want = np.concatenate([base[:20], np.zeros((5, 48), np.float32)])
        expect(p, "/resizable", "F32", (25, 48), le_bytes(want),
               note="maxshape (None, 48); 20 rows written, then resized to 25 (rows 20-24 = fill value 0)")
        expect_meta(p, ck.string_attrs(f))
    NOTES["chunked.h5"] = (
        "The same seeded float32 [64, 48] block (`/contiguous`) stored in every layout and filter "
        "combination libhdf5 provides; subsets of it in the ragged ones.  Also: a COMPACT-layout "
        "dataset, a contiguous dataset that was never written (no storage allocated), a chunked "
        "dataset with unallocated chunks and a non-zero fill value, and an extendible dataset "
        "resized after writing.  `scaleoffset_i32` uses the scale-offset filter in its lossless "
        "integer mode (`scaleoffset=0`).  Every chunk of every filtered dataset in the fixtures went through "
        "all its filters (chunk filter mask 0, asserted).")


# ---------------------------------------------------------------------------
# big_endian.h5
# ---------------------------------------------------------------------------

def make_big_endian() -> None:
    p = OUT / "big_endian.h5"
    r = rng(3)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "pt"
        put(f, p, "/f4", r.standard_normal((3, 4)).astype(">f4"))
        put(f, p, "/f8", r.standard_normal(5).astype(">f8"))
        put(f, p, "/i4", np.array([-2**31, 2**31 - 1, -1, 0, 1, 123456789], dtype=">i4"))
        put(f, p, "/u2", np.array([0, 1, 255, 256, 0x1234, 0xFFFE, 0xFFFF], dtype=">u2"))
        put(f, p, "/f2", np.array([[1.0, -2.5, np.inf], [np.nan, 6.1e-5, -0.0]], dtype=">f2"))
        put(f, p, "/i8_gzip_shuffle", r.integers(-2**62, 2**62, size=50).astype(">i8"), chunks=(16,),
            compression="gzip", shuffle=True)
        put(f, p, "/c8", (r.standard_normal(4) + 1j * r.standard_normal(4)).astype(">c8"))
        expect_meta(p, ck.string_attrs(f))
    NOTES["big_endian.h5"] = (
        "Big-endian datasets (HDF5 byte order BE); MANIFEST.json hashes the little-endian bytes of "
        "the same values.  `/c8` is h5py's compound {r, i} of big-endian float32 (C64).")


# ---------------------------------------------------------------------------
# bf16.h5 and the custom-float sweeps
# ---------------------------------------------------------------------------

BF16_SPECIAL = [
    (0x0000, "+0"), (0x8000, "-0"), (0x3F80, "1"), (0xBF80, "-1"), (0x4049, "3.140625"),
    (0x7F80, "+inf"), (0xFF80, "-inf"), (0x7FC0, "quiet NaN"), (0xFFC0, "-quiet NaN"),
    (0x7F81, "signalling NaN (payload 1)"), (0x7FFF, "NaN, all payload bits"),
    (0x0001, "smallest subnormal 9.18e-41"), (0x007F, "largest subnormal"), (0x807F, "-largest subnormal"),
    (0x0080, "smallest normal 1.18e-38"), (0x7F7F, "max finite 3.39e38"), (0xFF7F, "-max finite"),
    (0x3E00, "0.125"),
]


def sweep_custom_floats() -> None:
    """Write every bit pattern with the custom types into a temporary file and
    record what h5py returns (not committed: the results go to the README)."""
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as td:
        with h5py.File(Path(td) / "sweep.h5", "w") as f:
            allbf = np.arange(65536, dtype=np.uint32).astype(np.uint16)
            d = create_raw(f, "bf16", bf16_type(), allbf)
            got = d[()]
            want = allbf.view(ml_dtypes.bfloat16).astype(np.float32)
            nan_w, nan_g = np.isnan(want), np.isnan(got)
            same = ~nan_w & ~nan_g & (got.view(np.uint32) == want.view(np.uint32))
            nan_bits_kept = int(np.sum(nan_w & nan_g & (got.view(np.uint32) == want.view(np.uint32))))
            res["BF16"] = {
                "h5py_dtype": str(d.dtype), "patterns": 65536,
                "exact": int(same.sum()), "nan_patterns": int(nan_w.sum()),
                "nan_read_as_nan": int((nan_w & nan_g).sum()),
                "nan_bits_preserved": nan_bits_kept,
                "non_nan_mismatches": int((~nan_w & ~same).sum()),
                "examples": {f"0x{b:04X}": f"{float(got[b])!r} (bits 0x{int(got[b:b+1].view(np.uint32)[0]):08X})"
                             for b in (0x7FC0, 0xFFC0, 0x7F81, 0x7FFF, 0x0001, 0x8000)},
            }
            raw = np.empty(65536, np.uint16)
            d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=d.id.get_type())
            res["BF16"]["raw_read_with_file_type_exact"] = bool(np.array_equal(raw, allbf))
            u16 = np.empty(65536, np.uint16)
            d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, u16, mtype=h5py.h5t.STD_U16LE)
            res["BF16"]["read_with_STD_U16LE"] = (
                f"converts values, not bits: 0x3F80 (1.0) -> {int(u16[0x3F80])}, 0x4049 (3.14) -> "
                f"{int(u16[0x4049])}, 0xBF80 (-1.0) -> {int(u16[0xBF80])}")
            for name, (fields, bias, mlt) in F8_SPECS.items():
                allb = np.arange(256, dtype=np.uint8)
                d = create_raw(f, name, f8_type(name), allb)
                got = d.astype("f4")[()]
                want = allb.view(mlt).astype(np.float32)
                diff = [i for i in range(256)
                        if not ((np.isnan(got[i]) and np.isnan(want[i])) or got[i].view(np.uint32) == want[i].view(np.uint32))]
                res[name] = {"h5py_dtype": str(d.dtype), "patterns": 256, "mismatches": len(diff),
                             "mismatch_examples": {f"0x{i:02X}": f"h5py {got[i]!r} vs {name} {want[i]!r}" for i in diff[:4]}}
    OBS["sweep"] = res


def make_bf16() -> None:
    p = OUT / "bf16.h5"
    r = rng(4)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "pt"
        special = np.array([b for b, _ in BF16_SPECIAL], np.uint16)
        create_raw(f, "/bf16/special", bf16_type(), special)
        expect(p, "/bf16/special", "BF16", special.shape, le_bytes(special))
        rnd = bf16_bits(r.standard_normal((4, 8, 3)) * 10)
        create_raw(f, "/bf16/random", bf16_type(), rnd)
        expect(p, "/bf16/random", "BF16", rnd.shape, le_bytes(rnd))
        chk = bf16_bits(r.standard_normal((16, 12)))
        create_raw(f, "/bf16/chunked_gzip_shuffle", bf16_type(), chk, chunks=(5, 4), gzip=4, shuffle=True)
        expect(p, "/bf16/chunked_gzip_shuffle", "BF16", chk.shape, le_bytes(chk))
        sc = bf16_bits(np.array(-2.75))
        create_raw(f, "/bf16/scalar", bf16_type(), sc)
        expect(p, "/bf16/scalar", "BF16", (), le_bytes(sc))
        emp = np.zeros((0, 4), np.uint16)
        create_raw(f, "/bf16/empty", bf16_type(), emp)
        expect(p, "/bf16/empty", "BF16", emp.shape, b"")
        # h5py's own encoding of an ml_dtypes.bfloat16 array, as Keras 3 writes it
        kb = (r.standard_normal((3, 5)) * 4).astype(np.float32).astype(ml_dtypes.bfloat16)
        d = f.create_dataset("/opaque_bf16/keras_style", data=kb)
        d.attrs["dtype"] = "bfloat16"
        expect(p, "/opaque_bf16/keras_style", "BF16", kb.shape, kb.view(np.uint16).astype("<u2").tobytes(),
               ck.string_attrs(d))
        t = d.id.get_type()
        OBS["opaque_bf16"] = {"class": ck.type_class_name(t), "size": t.get_size(), "tag": t.get_tag().decode(),
                              "h5py_dtype": str(d.dtype), "h5py_value_type": type(d[0, 0]).__name__,
                              "first": repr(d[0, 0])}
        for name in F8_SPECS:
            allb = np.arange(256, dtype=np.uint8).reshape(16, 16)
            path = f"/f8/{name.lower()}"
            d = create_raw(f, path, f8_type(name), allb)
            d.attrs["dtype"] = name
            expect(p, path, name, allb.shape, allb.tobytes(), ck.string_attrs(d))
        c = (r.standard_normal((2, 3)) + 1j * r.standard_normal((2, 3))).astype(np.complex64)
        c[0, 0] = complex(np.inf, -0.0)
        put(f, p, "/complex/c64", c)
        t = f["/complex/c64"].id.get_type()
        OBS["c64_type"] = f"{ck.type_class_name(t)} size {t.get_size()}: " + ", ".join(
            f"{t.get_member_name(i).decode()} at {t.get_member_offset(i)} ({ck.type_class_name(t.get_member_type(i))} "
            f"{t.get_member_type(i).get_size()} bytes)" for i in range(t.get_nmembers()))
        expect_meta(p, ck.string_attrs(f))
    NOTES["bf16.h5"] = (
        "`/bf16/*`: the custom HDF5 float BF16 type (bit patterns of `special`: "
        + ", ".join(f"0x{b:04X} {d}" for b, d in BF16_SPECIAL)
        + "), written with memory type = file type (raw bits, no conversion).  `/opaque_bf16/keras_style`: "
        "`f.create_dataset(data=<ml_dtypes.bfloat16 array>)` + attribute `dtype`=`bfloat16`, exactly Keras 3's "
        "`H5IOStore.__setitem__`.  `/f8/*`: every 8-bit pattern (row-major 0x00..0xFF in [16,16]) of each "
        "1-byte custom float, with the `dtype` attribute.  `/complex/c64`: h5py's default complex64 "
        "(first element +inf - 0j).")


# ---------------------------------------------------------------------------
# keras/
# ---------------------------------------------------------------------------

def keras_model(dtype: str):
    import keras
    return keras.Sequential([
        keras.Input((4,), dtype="int32", name="ids"),
        keras.layers.Embedding(10, 8, name="embedding", dtype=dtype),
        keras.layers.LayerNormalization(name="layer_normalization", dtype=dtype),
        keras.layers.Dense(6, name="dense", dtype=dtype),
    ], name="tiny")


def keras_weights(model, r: np.random.Generator) -> list[np.ndarray]:
    return [r.standard_normal(tuple(w.shape)).astype(np.float32) for w in model.weights]


def make_keras() -> None:
    import keras
    kd = fresh_dir(OUT / "keras")
    OBS["keras_version"] = keras.__version__
    OBS["keras_backend"] = keras.backend.backend()
    for variant, dtype in (("float32", "float32"), ("bfloat16", "bfloat16")):
        r = rng(5)
        m = keras_model(dtype)
        vals = keras_weights(m, r)
        m.set_weights(vals)
        name = "tiny.weights.h5" if dtype == "float32" else "tiny-bf16.weights.h5"
        p = kd / name
        m.save_weights(str(p))
        with h5py.File(p, "r") as f:
            expect_meta(p, ck.string_attrs(f))
        for layer in m.layers:
            for i, w in enumerate(layer.weights):
                v = vals[[id(x) for x in m.weights].index(id(w))]
                path = f"/layers/{layer.name}/vars/{i}"
                if dtype == "bfloat16":
                    bits = bf16_bits(v)
                    got = np.asarray(keras.ops.convert_to_numpy(w)).view(np.uint16)
                    assert np.array_equal(got, bits), "keras bf16 rounding differs from ml_dtypes"
                    expect(p, path, "BF16", v.shape, le_bytes(bits), {"dtype": "bfloat16"})
                else:
                    expect(p, path, "F32", v.shape, le_bytes(v))
        if dtype == "float32":
            # Keras 3's legacy whole-model .h5 (model.save with .h5: legacy_h5_format)
            pl = kd / "tiny-keras3-legacy.h5"
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.save(str(pl))
            with h5py.File(pl, "r") as f:
                expect_meta(pl, ck.string_attrs(f))
                for layer in m.layers:
                    for w in layer.weights:
                        v = vals[[id(x) for x in m.weights].index(id(w))]
                        expect(pl, f"/model_weights/{layer.name}/{w.path}", "F32", v.shape, le_bytes(v))
    make_keras2_legacy(kd / "legacy-keras2.h5", rng(6), weightless=2, libver="earliest")
    make_keras2_legacy(kd / "legacy-keras2-200layers.h5", rng(7), weightless=195, libver="v108")
    NOTES["keras/tiny.weights.h5"] = (
        f"Real Keras {keras.__version__} (backend {keras.backend.backend()}) `model.save_weights` of "
        "`Sequential([Input((4,), int32), Embedding(10, 8), LayerNormalization(), Dense(6)], name='tiny')` "
        f"with weights set from `np.random.default_rng({SEED + 5})` normals (in `model.weights` order).  "
        "Keras 3 layout: `/layers/<layer>/vars/<i>`, the layer's Keras name in the `vars` group's `name` "
        "attribute; no root attributes.")
    NOTES["keras/tiny-bf16.weights.h5"] = (
        "The same model with every layer `dtype='bfloat16'`: Keras stores each variable with "
        "`create_dataset(data=<ml_dtypes.bfloat16 array>)` and the attribute `dtype`=`bfloat16` (h5py "
        "makes a 2-byte OPAQUE type).  Values = the float32 weights rounded to bf16 (Keras' rounding "
        "asserted equal to ml_dtypes').")
    NOTES["keras/tiny-keras3-legacy.h5"] = (
        "The float32 model saved by Keras 3 in the legacy whole-model HDF5 format (`model.save('x.h5')`, "
        "keras/src/legacy/saving/legacy_h5_format.py): root attributes `keras_version`, `backend`, "
        "`model_config` (JSON), group `model_weights` (attributes `layer_names`, `backend`, "
        "`keras_version`) with `/model_weights/<layer>/<variable path>` datasets, e.g. "
        "`/model_weights/dense/tiny/dense/kernel` (Keras 3 variable paths have no `:0`).")


KERAS2_LAYERS = [  # (name, [(weight name, shape)])
    ("embedding", [("embeddings:0", (10, 8))]),
    ("layer_normalization", [("gamma:0", (8,)), ("beta:0", (8,))]),
    ("dense", [("kernel:0", (8, 6)), ("bias:0", (6,))]),
    ("dense_1", [("kernel:0", (6, 3)), ("bias:0", (3,))]),
]


def make_keras2_legacy(p: Path, r: np.random.Generator, weightless: int, libver: str) -> None:
    """A Keras 2 `model.save_weights('x.h5')` file, built with h5py following
    tf.keras 2.13's hdf5_format.save_weights_to_hdf5_group (same calls)."""
    layers = [("input_1", [])] + KERAS2_LAYERS[:2]
    layers += [(f"dropout_{i}" if i % 2 else f"activation_{i}", []) for i in range(weightless)]
    layers += KERAS2_LAYERS[2:]
    names = [n for n, _ in layers]
    assert len(set(names)) == len(names)
    if libver == "earliest":
        f = h5py.File(p, "w")
    else:
        # root attributes in dense storage (fractal heap + v2 B-tree): a v1.8+
        # file whose root group's attribute phase change is (0, 0)
        fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
        fcpl.set_attr_phase_change(0, 0)
        fcpl.set_obj_track_times(False)
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18)
        f = h5py.File(h5py.h5f.create(str(p).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))
    # h5py 2.x (TF <= 2.3 era) stored lists of bytes and bytes objects as
    # fixed-length strings; h5py 3.x stores them as variable-length strings.
    h5py2 = libver == "earliest"
    enc = (lambda lst: np.asarray(lst)) if h5py2 else (lambda lst: lst)
    with f:
        f.attrs["layer_names"] = enc([n.encode("utf8") for n in names])
        f.attrs["backend"] = np.bytes_("tensorflow".encode("utf8")) if h5py2 else "tensorflow".encode("utf8")
        f.attrs["keras_version"] = np.bytes_(b"2.3.0") if h5py2 else "2.13.1".encode("utf8")
        for name, weights in sorted(layers, key=lambda x: x[0]):
            g = untimed_group(f, name)  # = f.create_group(name), without timestamps (v108)
            wn = [f"{name}/{w}".encode("utf8") for w, _ in weights]
            # np.asarray([]) is an empty float64 array, which Keras 2 stores as is
            g.attrs["weight_names"] = enc(wn) if wn else np.asarray([])
            for (w, shape), full in zip(weights, wn):
                val = r.standard_normal(shape).astype(np.float32)
                untimed_group(g, full.decode().rpartition("/")[0])  # the intermediate group
                dset = g.create_dataset(full, val.shape, dtype=val.dtype)
                dset[:] = val
                expect(p, f"/{name}/{full.decode()}", "F32", shape, le_bytes(val))
        g = untimed_group(f, "top_level_model_weights")
        g.attrs["weight_names"] = np.asarray([])
        expect_meta(p, ck.string_attrs(f))
        info = h5py.h5o.get_info(f.id)
        present = info.hdr.mesg.present
        OBS[f"root_header[{rel(p)}]"] = {
            "object_header_version": info.hdr.version,
            "attribute_messages_in_header": bool(present & (1 << 0x000C)),
            "attribute_info_message": bool(present & (1 << 0x0015)),
            "num_attrs": info.num_attrs,
            "layer_names_bytes": sum(len(n.encode()) for n in names),  # text only
        }
    strings = ("fixed-length strings, as h5py 2.x stored Keras 2's lists of bytes and `.encode('utf8')` values "
               "(`keras_version`=`2.3.0`)" if h5py2 else
               "variable-length ASCII strings, as h5py 3.x stores Keras 2's lists of bytes and `.encode('utf8')` "
               "values (`keras_version`=`2.13.1`)")
    NOTES[rel(p)] = (
        f"Keras-2-style legacy weights (`model.save_weights('x.h5')`) built with h5py following tf.keras' "
        f"`save_weights_to_hdf5_group`: root attributes `layer_names` ({len(names)} names), "
        f"`backend`=`tensorflow`, `keras_version`; one group per layer (sorted by name) with attribute "
        f"`weight_names` (layers without weights get `np.asarray([])` = an empty float64 array, as Keras 2 "
        f"does); datasets at `/<layer>/<layer>/<weight>:0`; an empty `top_level_model_weights` group.  "
        f"Strings: {strings}.  "
        + ("Default h5py file format (libver earliest, v1 object headers, attributes in the header)."
           if libver == "earliest" else
           "libver v108 (v2 object headers) with the root group's attribute phase change set to (0, 0) in the "
           "file creation property list, so the root attributes are in DENSE storage (attribute info message + "
           "fractal heap + v2 B-tree; no attribute message in the header).  Note: the 200 names are only "
           f"{OBS.get('root_header[keras/legacy-keras2-200layers.h5]', {}).get('layer_names_bytes', '?')} bytes of text; "
           "libhdf5 would move an attribute to dense storage on its own only past 64 KiB (which Keras 2 avoids by "
           "splitting into `layer_names0`, `layer_names1`, ...) or past 8 attributes."))


# ---------------------------------------------------------------------------
# tiny-mixtral/
# ---------------------------------------------------------------------------

def write_st_as_h5(src: Path, dst: Path, as_bf16_float: bool) -> None:
    tensors = {}
    with safetensors.safe_open(str(src), framework="pt") as f:
        meta = f.metadata() or {}
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    with h5py.File(dst, "w") as h:
        for k, v in meta.items():
            h.attrs[k] = v
        for name, t in tensors.items():
            path = "/" + name.replace(".", "/")
            if t.dtype == torch.bfloat16:
                assert as_bf16_float
                bits = t.contiguous().view(torch.int16).numpy().view(np.uint16)
                create_raw(h, path, bf16_type(), bits)
                expect(dst, path, "BF16", bits.shape, le_bytes(bits))
            else:
                a = t.numpy()
                put(h, dst, path, a)
        expect_meta(dst, ck.string_attrs(h))


def make_tiny_mixtral() -> None:
    for name in ("tiny-mixtral", "tiny-mixtral-bf16"):
        d = fresh_dir(OUT / name)
        src = MODELS / name
        write_st_as_h5(src / "model.safetensors", d / "model.h5", as_bf16_float=True)
        for extra in ("config.json", "expected.safetensors"):
            shutil.copyfile(src / extra, d / extra)
        # the checker must agree
        rc = subprocess.run([sys.executable, str(SCRIPTS / "check_hdf5.py"), str(src / "model.safetensors"),
                             str(d / "model.h5")], capture_output=True, text=True)
        assert rc.returncode == 0, rc.stdout + rc.stderr
        OBS[f"check[{name}]"] = rc.stdout.strip().splitlines()[-1]
    NOTES["tiny-mixtral/model.h5"] = (
        "`fixtures/models/tiny-mixtral/model.safetensors` (float32), one dataset per tensor, "
        "`a.b.c` -> `/a/b/c` (e.g. `/model/layers/0/block_sparse_moe/experts/0/w1/weight`), root attribute "
        "`format`=`pt` (the file's `__metadata__`).  `config.json` and `expected.safetensors` copied "
        "unchanged from fixtures/models/tiny-mixtral/.")
    NOTES["tiny-mixtral-bf16/model.h5"] = (
        "The same from `fixtures/models/tiny-mixtral-bf16/` (every tensor BF16, stored as the custom HDF5 "
        "bf16 float, raw bits).  Both files pass `scripts/check_hdf5.py` against their source.")


# ---------------------------------------------------------------------------
# unsupported.h5
# ---------------------------------------------------------------------------

def make_unsupported() -> None:
    p = OUT / "unsupported.h5"
    r = rng(8)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "pt"

        def unsup(path: str, reason: str) -> None:
            d = f[path]
            try:
                ck.classify(d)
                raise AssertionError(f"{path} classified as supported")
            except ck.Unsupported as e:
                got = str(e)
            OBS.setdefault("unsupported_classifier", {})[path] = got
            # a null dataspace has no shape: recorded as [] like a scalar (shape stays a list)
            expect(p, path, "unsupported", d.shape if d.shape is not None else (), None,
                   ck.string_attrs(d), refuse=reason)

        f.create_dataset("compound_pair", data=np.array([(1, 2.5), (3, -1.0), (5, 0.0)],
                                                         dtype=[("a", "<i4"), ("b", "<f8")]))
        unsup("/compound_pair", "compound that is not {r: f32, i: f32}")
        f.create_dataset("complex128", data=np.array([1 + 2j, -3j]))
        unsup("/complex128", "compound {r: f64, i: f64}: safetensors has no 128-bit complex")
        f.create_dataset("vlen_str", data=["alpha", "béta"], dtype=h5py.string_dtype())
        unsup("/vlen_str", "variable-length string")
        f.create_dataset("fixed_str", data=np.array([b"abc", b"defgh"], dtype="S8"))
        unsup("/fixed_str", "fixed-length string")
        refs = f.create_dataset("object_ref", shape=(2,), dtype=h5py.ref_dtype)
        refs[0] = f["compound_pair"].ref
        refs[1] = f["vlen_str"].ref
        unsup("/object_ref", "object reference")
        at = h5py.h5t.array_create(h5py.h5t.IEEE_F32LE, (3,))
        did = h5py.h5d.create(f.id, b"array_f32x3", at, h5py.h5s.create_simple((2,)), dcpl=untimed_dcpl())
        did.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(6, dtype=np.float32).reshape(2, 3), mtype=at)
        unsup("/array_f32x3", "HDF5 array type")
        t24 = h5py.h5t.STD_I32LE.copy()
        t24.set_precision(24)
        t24.set_size(3)
        create_raw(f, "/int24", t24, np.array([[1, 0, 0], [0xFF, 0xFF, 0xFF], [0, 0, 0x80], [5, 6, 7]], np.uint8),
                   shape=(4,))
        unsup("/int24", "3-byte integer")
        et = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2}, basetype="i1")
        f.create_dataset("enum_color", data=np.array([0, 2, 1], dtype="i1"), dtype=et)
        unsup("/enum_color", "enum that is not h5py's bool")
        ob = r.standard_normal(4).astype(np.float32).astype(ml_dtypes.bfloat16)
        f.create_dataset("opaque_no_dtype_attr", data=ob)
        unsup("/opaque_no_dtype_attr", "2-byte opaque without the dtype=bfloat16 attribute")
        vl = f.create_dataset("vlen_f32", shape=(2,), dtype=h5py.vlen_dtype(np.float32))
        vl[0] = np.array([1, 2, 3], np.float32)
        vl[1] = np.array([4], np.float32)
        unsup("/vlen_f32", "variable-length sequence")
        f.create_dataset("null_dataspace", data=h5py.Empty("f4"))
        unsup("/null_dataspace", "null dataspace (h5py.Empty): no shape at all (MANIFEST.json records [])")
        did = h5py.h5d.create(f.id, b"bitfield_b8", h5py.h5t.STD_B8LE, h5py.h5s.create_simple((4,)),
                              dcpl=untimed_dcpl())
        did.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1, 2, 4, 128], np.uint8), mtype=h5py.h5t.STD_B8LE)
        unsup("/bitfield_b8", "bitfield")
        d = create_raw(f, "/f8_wrong_dtype_attr", f8_type("F8_E4M3"), np.arange(4, dtype=np.uint8))
        d.attrs["dtype"] = "F8_E5M2"
        unsup("/f8_wrong_dtype_attr", "E4M3 float whose dtype attribute says F8_E5M2")
        d = create_raw(f, "/f8_e3m4", custom_float(1, (7, 4, 3, 0, 4), 3), np.arange(4, dtype=np.uint8))
        unsup("/f8_e3m4", "1-byte float with no safetensors equivalent (E3M4)")
        # a supported type behind a filter libhdf5 does not have
        # compressible values: h5py registers LZF as an optional filter, so a chunk
        # it cannot shrink would be stored unfiltered (filter mask 1) and be readable
        v = np.tile(np.arange(4, dtype=np.float32), (16, 4))
        f.create_dataset("lzf_f32", data=v, chunks=(8, 8), compression="lzf")
        expect(p, "/lzf_f32", "F32", v.shape, le_bytes(v), {},
               refuse="filter 32000 (lzf) is h5py's own filter: libhdf5 alone cannot decode the chunks "
                      "(the type is fine; reading the data fails)")
        # external storage: the raw data lives in another file next to this one
        ext = np.arange(6, dtype="<f4") * 1.5
        (OUT / "unsupported-external.bin").write_bytes(b"EXT!" + ext.tobytes())
        f.create_dataset("external_f32", shape=(2, 3), dtype="<f4",
                         external=[("unsupported-external.bin", 4, ext.nbytes)])
        expect(p, "/external_f32", "F32", (2, 3), le_bytes(ext.reshape(2, 3)), {},
               refuse="external storage: the data is in `unsupported-external.bin` (offset 4, 24 bytes), a path "
                      "libhdf5 resolves against the current directory (or HDF5_EXTFILE_PREFIX), not the .h5's")
        expect_meta(p, ck.string_attrs(f))
    NOTES["unsupported.h5"] = (
        "A valid file whose datasets moeckpt must refuse, naming the dataset: MANIFEST.json gives "
        "`dtype`=`unsupported` and a `refuse` reason (from scripts/check_hdf5.py's classification).  "
        "`/lzf_f32` is an F32 dataset behind h5py's LZF filter (id 32000): its type and shape are fine "
        "but libhdf5 without the plugin cannot read its chunks (bytes hash given for completeness).  "
        "`/external_f32` is an F32 dataset with EXTERNAL storage in `unsupported-external.bin` (4-byte header "
        "`EXT!`, then the 24 data bytes).")


# ---------------------------------------------------------------------------
# malformed/
# ---------------------------------------------------------------------------

def make_malformed() -> None:
    md = fresh_dir(OUT / "malformed")
    nested = (OUT / "nested.h5").read_bytes()
    r = rng(9)
    files = {
        "truncated.h5": (nested[: len(nested) // 2],
                         f"first {len(nested) // 2} of nested.h5's {len(nested)} bytes: valid superblock, "
                         "end-of-file address beyond the end"),
        "random.h5": (r.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                      f"4096 bytes of np.random.default_rng({SEED + 9}).integers(0, 256) (no HDF5 signature)"),
        "empty.h5": (b"", "0 bytes"),
        "signature_only.h5": (ck.HDF5_SIGNATURE + r.integers(0, 256, 56, dtype=np.uint8).tobytes(),
                              "the 8-byte HDF5 signature then 56 seeded random bytes (no valid superblock)"),
        "not_hdf5.h5": ((ROOT / "fixtures" / "safetensors" / "single_meta.safetensors").read_bytes(),
                        "fixtures/safetensors/single_meta.safetensors renamed (a valid safetensors file)"),
    }
    exp = {}
    for name, (data, reason) in files.items():
        (md / name).write_bytes(data)
        try:
            with h5py.File(md / name, "r") as f:
                list(f.keys())
                h5py_msg = None
        except Exception as e:  # noqa: BLE001
            h5py_msg = f"{type(e).__name__}: {e}"
        exp[name] = {"expect": "error", "exit_status": 2, "reason": reason,
                     "size": len(data), "h5py_rejects": h5py_msg is not None, "h5py_message": h5py_msg,
                     "must": "a clear one-line error naming the file (not an HDF5 error stack, no crash), exit 2"}
    (md / "EXPECTED.json").write_text(json.dumps(exp, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    OBS["malformed"] = exp


# ---------------------------------------------------------------------------
# verification with h5py (high and low level) and with the system libhdf5
# ---------------------------------------------------------------------------

def verify_all() -> None:
    for fname, ent in MANIFEST.items():
        with h5py.File(OUT / fname, "r") as f:
            assert ck.string_attrs(f) == ent["metadata"], (fname, ck.string_attrs(f), ent["metadata"])
            found: list[str] = []
            f.visititems(lambda n, o: found.append("/" + n) if isinstance(o, h5py.Dataset) else None)
            assert sorted(found) == sorted(ent["tensors"]), (fname, sorted(set(found) ^ set(ent["tensors"])))
            ck.h5_tensors(f)  # no two datasets map to the same name
            for path, e in ent["tensors"].items():
                d = f[path]
                assert ck.string_attrs(d) == e["attrs"], (fname, path)
                if e["dtype"] == "unsupported":
                    continue
                assert ck.classify(d) == e["dtype"], (fname, path, ck.classify(d), e["dtype"])
                assert list(d.shape) == e["shape"], (fname, path)
                if path == "/external_f32":  # relative external file: resolved against the cwd
                    cwd = os.getcwd()
                    os.chdir((OUT / fname).parent)
                    try:
                        raw = ck.read_raw_le(d, e["dtype"]).tobytes()
                    finally:
                        os.chdir(cwd)
                else:
                    raw = ck.read_raw_le(d, e["dtype"]).tobytes()
                assert sha(raw) == e["bytes_hex_sha256"], (fname, path, "raw bytes")
                # chunked + filtered: every chunk must have gone through every filter
                # (filter mask 0).  An optional filter that fails on a chunk (LZF on
                # data it cannot shrink) leaves that chunk unfiltered with a mask bit
                # set, which would make the chunk readable without the filter.
                dcpl = d.id.get_create_plist()
                if dcpl.get_layout() == h5py.h5d.CHUNKED and dcpl.get_nfilters():
                    masks = sorted({d.id.get_chunk_info(i).filter_mask for i in range(d.id.get_num_chunks())})
                    assert masks == [0], (fname, path, masks)
                if "refuse" in e:  # lzf: h5py has the filter, libhdf5 alone does not
                    continue
                # contiguous datasets: the bytes in the file at H5Dget_offset
                if dcpl.get_layout() == h5py.h5d.CONTIGUOUS and d.id.get_offset() is not None and d.size:
                    with open(OUT / fname, "rb") as fh:
                        fh.seek(d.id.get_offset())
                        file_bytes = fh.read(d.id.get_storage_size())
                    t = d.id.get_type()
                    if t.get_class() in (h5py.h5t.INTEGER, h5py.h5t.FLOAT) and t.get_order() == h5py.h5t.ORDER_BE:
                        file_bytes = np.frombuffer(file_bytes, ck.RAW_NP[e["dtype"]]).byteswap().tobytes()
                    elif t.get_class() == h5py.h5t.COMPOUND and t.get_member_type(0).get_order() == h5py.h5t.ORDER_BE:
                        file_bytes = np.frombuffer(file_bytes, ">f4").astype("<f4").tobytes()
                    assert sha(file_bytes) == e["bytes_hex_sha256"], (fname, path, "file bytes")
                # the high-level read agrees with the raw bytes
                if d.size:
                    v = np.asarray(d[()])
                    dt = e["dtype"]
                    raw_arr = ck.read_raw_le(d, dt)
                    if dt == "BF16" and v.dtype == np.float32:
                        assert ck.same_values_nan_aware(v, raw_arr.view(ml_dtypes.bfloat16).astype(np.float32))
                    elif dt == "BOOL":
                        assert v.dtype == np.bool_ and np.array_equal(v.astype(np.uint8), raw_arr)
                    elif dt in ("F16", "F32", "F64"):
                        assert ck.same_values_nan_aware(v.astype(v.dtype.newbyteorder("=")), raw_arr)
                    elif dt[0] in "IU" or dt == "C64":
                        assert v.astype(raw_arr.dtype).tobytes() == raw_arr.tobytes()
    log("h5py read-back: every dataset matches MANIFEST.json")


C_READER = r"""
/* Reads every dataset of an HDF5 file with the system libhdf5 the way moeckpt
   is meant to: memory type = the file type with little-endian byte order
   (integers, floats incl. custom ones, enums, compounds), opaque as is.  Writes
   the raw bytes to OUTDIR/<n>.bin and one line per dataset on stdout. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outdir;
static int counter = 0;

static hid_t le_mtype(hid_t ft) {
    H5T_class_t c = H5Tget_class(ft);
    if (c == H5T_INTEGER || c == H5T_FLOAT || c == H5T_ENUM) {
        hid_t m = H5Tcopy(ft);
        /* 1.10 refuses H5Tset_order on an enum even when nothing changes */
        if (H5Tget_order(m) != H5T_ORDER_LE && H5Tget_size(m) > 1 && H5Tset_order(m, H5T_ORDER_LE) < 0) {
            H5Tclose(m); return -1;
        }
        return m;
    }
    if (c == H5T_COMPOUND) {
        size_t sz = H5Tget_size(ft);
        hid_t m = H5Tcreate(H5T_COMPOUND, sz);
        int n = H5Tget_nmembers(ft);
        for (int i = 0; i < n; i++) {
            char *name = H5Tget_member_name(ft, i);
            hid_t mt = H5Tget_member_type(ft, i);
            hid_t lm = le_mtype(mt);
            if (lm < 0) { H5Tclose(m); H5Tclose(mt); H5free_memory(name); return -1; }
            H5Tinsert(m, name, H5Tget_member_offset(ft, i), lm);
            H5Tclose(lm); H5Tclose(mt); H5free_memory(name);
        }
        return m;
    }
    if (c == H5T_OPAQUE) return H5Tcopy(ft);
    return -1;
}

static herr_t visit(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    (void)info; (void)data;
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(loc, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return 0;  /* a group */
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    int cls = (int)H5Tget_class(ft);
    printf("/%s\tclass=%d\tsize=%zu", name, cls, H5Tget_size(ft));
    if (H5Sget_simple_extent_type(sp) == H5S_NULL) { printf("\tNULLSPACE\n"); goto done; }
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    hid_t mt = le_mtype(ft);
    if (mt < 0) { printf("\tNOMTYPE\n"); goto done; }
    size_t msz = H5Tget_size(mt);
    unsigned char *buf = malloc(npts * msz + 1);
    herr_t st;
    H5E_BEGIN_TRY { st = npts ? H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0; } H5E_END_TRY;
    if (st < 0) { printf("\tREADFAIL\n"); }
    else {
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.bin", outdir, counter);
        FILE *o = fopen(path, "wb");
        fwrite(buf, 1, npts * msz, o);
        fclose(o);
        printf("\tOK\t%d\n", counter++);
    }
    free(buf);
    H5Tclose(mt);
done:
    H5Sclose(sp); H5Tclose(ft); H5Dclose(d);
    return 0;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *ainfo, void *data) {
    (void)ainfo; (void)data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_type(s) == H5S_SCALAR) {
        if (H5Tis_variable_str(t)) {
            char *v = NULL;
            hid_t m = H5Tcopy(H5T_C_S1); H5Tset_size(m, H5T_VARIABLE); H5Tset_cset(m, H5Tget_cset(t));
            H5Aread(a, m, &v);
            printf("ATTR\t%s\t", name);
            for (const unsigned char *p = (const unsigned char *)v; *p; p++) printf("%02x", *p);
            printf("\n");
            H5free_memory(v); H5Tclose(m);
        } else {
            size_t n = H5Tget_size(t);
            char *v = calloc(n + 1, 1);
            H5Aread(a, t, v);
            printf("ATTR\t%s\t", name);
            for (size_t i = 0; i < n && v[i]; i++) printf("%02x", (unsigned char)v[i]);
            printf("\n");
            free(v);
        }
    } else {
        printf("ATTRNONSTRING\t%s\t%d\n", name, (int)H5Tget_class(t));
    }
    H5Sclose(s); H5Tclose(t); H5Aclose(a);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    outdir = argv[2];
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("LIBVERSION\t%u.%u.%u\n", maj, min, rel);
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (f < 0) { printf("OPENFAIL\n"); return 0; }
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_cb, NULL);
    herr_t st;
    H5E_BEGIN_TRY { st = H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, visit, NULL); } H5E_END_TRY;
    if (st < 0) printf("VISITFAIL\n");
    H5Fclose(f);
    return 0;
}
"""


def libhdf5_check() -> None:
    h5cc = shutil.which("h5cc")
    if not h5cc:
        OBS["libhdf5_check"] = None
        log("h5cc not found: skipping the system libhdf5 check")
        return
    res: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        (td / "reader.c").write_text(C_READER)
        subprocess.run([h5cc, "-O1", "-o", str(td / "reader"), str(td / "reader.c")], check=True,
                       capture_output=True)
        unreadable: dict[str, list[str]] = {}
        checked = 0
        libver = None
        for fname, ent in sorted(MANIFEST.items()):
            outd = td / fname.replace("/", "_")
            outd.mkdir()
            out = subprocess.run([str(td / "reader"), str(OUT / fname), str(outd)], check=True,
                                 capture_output=True, text=True).stdout
            lines = out.splitlines()
            libver = lines[0].split("\t")[1]
            assert "OPENFAIL" not in out and "VISITFAIL" not in out, (fname, out)
            attrs = {ln.split("\t")[1]: bytes.fromhex(ln.split("\t")[2]).decode("utf-8")
                     for ln in lines if ln.startswith("ATTR\t")}
            assert attrs == ent["metadata"], (fname, attrs, ent["metadata"])
            rows = {ln.split("\t")[0]: ln.split("\t") for ln in lines[1:] if ln.startswith("/")}
            assert sorted(rows) == sorted(ent["tensors"]), fname
            for path, e in ent["tensors"].items():
                row = rows[path]
                ok = len(row) >= 5 and row[3] == "OK"
                if e["dtype"] != "unsupported" and "refuse" not in e:
                    assert ok, (fname, path, row)
                    got = sha((outd / f"{row[4]}.bin").read_bytes())
                    assert got == e["bytes_hex_sha256"], (fname, path, "libhdf5 bytes")
                    checked += 1
                else:
                    what = {"NOMTYPE": "not attempted (no plain little-endian memory type for this class)",
                            "READFAIL": "H5Dread fails", "NULLSPACE": "null dataspace, nothing to read"}
                    if path == "/lzf_f32":
                        assert row[3] == "READFAIL", row  # no LZF plugin in the system libhdf5
                    unreadable.setdefault(fname, []).append(
                        f"`{path}` " + ("read OK (raw bytes)" if ok else what.get(row[3], row[3])))
        mal = {}
        for p in sorted((OUT / "malformed").glob("*.h5")):
            out = subprocess.run([str(td / "reader"), str(p), str(td)], capture_output=True, text=True).stdout
            mal[p.name] = "H5Fopen fails" if "OPENFAIL" in out else "opens"
        res = {"libhdf5": libver, "datasets_checked": checked, "refused_or_unsupported": unreadable,
               "malformed": mal}
    OBS["libhdf5_check"] = res
    log(f"system libhdf5 {res['libhdf5']}: {res['datasets_checked']} datasets read to the manifest bytes")


# ---------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------

FILTER_NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}


def describe_type(t) -> tuple[str, str]:
    cls = ck.type_class_name(t)
    order = ""
    if t.get_class() in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.ENUM, h5py.h5t.BITFIELD):
        base = t.get_super() if t.get_class() == h5py.h5t.ENUM else t
        order = {h5py.h5t.ORDER_LE: "LE", h5py.h5t.ORDER_BE: "BE"}.get(base.get_order(), "none")
    elif t.get_class() == h5py.h5t.COMPOUND:
        order = "/".join({h5py.h5t.ORDER_LE: "LE", h5py.h5t.ORDER_BE: "BE"}.get(
            t.get_member_type(i).get_order(), "-") for i in range(t.get_nmembers())
            if t.get_member_type(i).get_class() in (h5py.h5t.INTEGER, h5py.h5t.FLOAT))
    else:
        order = "n/a"
    detail = f"{cls} {t.get_size()}B"
    if t.get_class() == h5py.h5t.FLOAT:
        fields, bias = ck.float_fields(t)
        std = ck.IEEE_FLOATS.get(t.get_size())
        if not (std and (fields, bias) == std[:2]):
            detail += f" fields{fields} bias {bias}"
    elif t.get_class() == h5py.h5t.INTEGER:
        detail += " signed" if t.get_sign() == h5py.h5t.SGN_2 else " unsigned"
        if t.get_precision() != 8 * t.get_size():
            detail += f" precision {t.get_precision()}"
    elif t.get_class() == h5py.h5t.ENUM:
        detail += " {" + ", ".join(f"{t.get_member_name(i).decode()}={t.get_member_value(i)}"
                                   for i in range(t.get_nmembers())) + "}"
    elif t.get_class() == h5py.h5t.OPAQUE:
        detail += f" tag {t.get_tag().decode()!r}"
    elif t.get_class() == h5py.h5t.COMPOUND:
        detail += " {" + ", ".join(f"{t.get_member_name(i).decode()}@{t.get_member_offset(i)}:"
                                   f"{ck.type_class_name(t.get_member_type(i))}{t.get_member_type(i).get_size()}"
                                   for i in range(t.get_nmembers())) + "}"
    elif t.get_class() == h5py.h5t.STRING:
        detail += " variable-length" if t.is_variable_str() else " fixed"
    return detail, order


def describe_attr(obj, k) -> str:
    aid = obj.attrs.get_id(k)
    t = aid.get_type()
    v = obj.attrs[k]
    if t.get_class() == h5py.h5t.STRING:
        kind = "vlen " if t.is_variable_str() else f"fixed {t.get_size()}B "
        kind += "UTF-8" if t.get_cset() == h5py.h5t.CSET_UTF8 else "ASCII"
        shape = aid.shape
        if shape:
            return f"`{k}` ({kind} string array {list(shape)}, first {ck.attr_str(np.asarray(v).flat[0])!r})"
        return f"`{k}` = {ck.attr_str(v)!r} ({kind} string)"
    a = np.asarray(v)
    if a.size > 6:
        return f"`{k}` ({ck.type_class_name(t)} {a.dtype} {list(a.shape)})"
    return f"`{k}` = {a.tolist()!r} ({ck.type_class_name(t)} {a.dtype} {list(a.shape)})"


def file_section(fname: str) -> str:
    ent = MANIFEST[fname]
    p = OUT / fname
    lines = [f"### `{fname}` ({p.stat().st_size} bytes)", ""]
    if fname in NOTES:
        lines += [NOTES[fname], ""]
    with h5py.File(p, "r") as f:
        ra = [describe_attr(f, k) for k in f.attrs]
        lines.append("Root attributes: " + ("; ".join(ra) if ra else "none") + ".  "
                     f"Metadata (root string attributes): `{json.dumps(ent['metadata'], ensure_ascii=False)}`.")
        lines.append("")
        gattrs = []

        def gvisit(n, o):
            if isinstance(o, h5py.Group) and len(o.attrs) and len(gattrs) < 6:
                gattrs.append(f"`/{n}`: " + "; ".join(describe_attr(o, k) for k in o.attrs))
        f.visititems(gvisit)
        if gattrs:
            lines.append("Group attributes" + (" (first 6 groups)" if len(gattrs) == 6 else "") + ": "
                         + " | ".join(gattrs) + ".")
            lines.append("")
        lines += ["| dataset | moeckpt dtype | shape | HDF5 type | order | layout | filters | attributes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for path, e in ent["tensors"].items():
            d = f[path]
            detail, order = describe_type(d.id.get_type())
            dcpl = d.id.get_create_plist()
            layout = {h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked",
                      h5py.h5d.COMPACT: "compact"}.get(dcpl.get_layout(), "?")
            if dcpl.get_external_count():
                layout += " (external: " + ", ".join(
                    f"{dcpl.get_external(i)[0].decode()} @{dcpl.get_external(i)[1]}"
                    for i in range(dcpl.get_external_count())) + ")"
            if layout == "chunked":
                layout += f" {list(dcpl.get_chunk())}"
            filters = ", ".join(
                FILTER_NAMES.get(dcpl.get_filter(i)[0], str(dcpl.get_filter(i)[0]))
                + (f"({dcpl.get_filter(i)[2][0]})" if dcpl.get_filter(i)[0] == 1 else "")
                for i in range(dcpl.get_nfilters())) or "-"
            attrs = "; ".join(describe_attr(d, k) for k in d.attrs) or "-"
            dt = e["dtype"] + (" (refuse)" if "refuse" in e and e["dtype"] != "unsupported" else "")
            shape = "scalar" if e["shape"] == [] and d.shape == () else e["shape"]
            lines.append(f"| `{path}` | {dt} | {shape} | {detail} | {order} | {layout} | {filters} | {attrs} |")
        notes = [(path, e) for path, e in ent["tensors"].items() if "refuse" in e or "note" in e]
        if notes:
            lines.append("")
            for path, e in notes:
                lines.append(f"* `{path}`: " + (e.get("refuse") or e.get("note")))
    lines.append("")
    return "\n".join(lines)


def versions() -> str:
    import importlib.metadata as md
    return (f"h5py {h5py.version.version} with libhdf5 {h5py.version.hdf5_version}, numpy {np.__version__}, "
            f"ml_dtypes {md.version('ml_dtypes')}, keras {md.version('keras')} (backend torch), torch "
            f"{torch.__version__}, safetensors {safetensors.__version__}, Python {platform.python_version()}")


def write_readme() -> None:
    sw = OBS["sweep"]
    bf = sw["BF16"]
    f8_rows = "\n".join(
        f"| {n} | {v['h5py_dtype']} | {v['mismatches']} / 256 | "
        + ("; ".join(f"{k}: {x}" for k, x in v["mismatch_examples"].items()) or "-") + " |"
        for n, v in sw.items() if n != "BF16")
    co = "\n".join(f"* `{k}`: {v}" for k, v in OBS["bf16_call_orders"].items())
    lc = OBS["libhdf5_check"]
    if lc:
        unread = "\n".join(f"* `{fn}`: " + "; ".join(v) for fn, v in lc["refused_or_unsupported"].items())
        lib_text = (f"Compiled with `h5cc` against the system libhdf5 **{lc['libhdf5']}** (Debian's libhdf5-dev, the "
                    f"library moeckpt links), a C reader (embedded in the generator) read "
                    f"**{lc['datasets_checked']}** supported datasets of every file with memory type = the file "
                    "type in little-endian order (opaque as is) and got exactly the MANIFEST.json bytes; it also "
                    "read every root string attribute (variable-length UTF-8 and fixed-length, including the "
                    "dense-storage root of `keras/legacy-keras2-200layers.h5`) to the manifest metadata.  "
                    "The refused / unsupported datasets:\n\n" + unread + "\n\nMalformed files: "
                    + ", ".join(f"`{k}` {v}" for k, v in lc["malformed"].items()) + ".")
    else:
        lib_text = "`h5cc` was not available: not run."
    files = sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != "README.md")
    listing = "\n".join(f"| `{rel(p)}` | {p.stat().st_size} |" for p in files)
    rh = OBS["root_header[keras/legacy-keras2-200layers.h5]"]
    rh_small = OBS["root_header[keras/legacy-keras2.h5]"]
    mal = "\n".join(f"| `{k}` | {v['size']} | {v['reason']} | {v['h5py_message']} |" for k, v in OBS["malformed"].items())
    text = f"""# HDF5 fixtures

Generated by `scripts/make_hdf5_fixtures.py` ({versions()}).  Deterministic:
two runs give byte-identical files.  Do not edit by hand; regenerate with

```sh
KERAS_BACKEND=torch /work/venv/bin/python scripts/make_hdf5_fixtures.py
```

moeckpt's conventions (implemented for checking in `scripts/check_hdf5.py`):
the dataset `/a/b/c` is the tensor `a.b.c` (any nesting); the root group's
scalar string attributes are the checkpoint metadata; native IEEE
integers/floats of either byte order; BOOL = h5py's enum int8 {{FALSE=0,
TRUE=1}}; BF16 = custom 2-byte HDF5 float (sign 15, exponent 7..14 bias 127,
mantissa 0..6) or a 2-byte OPAQUE with attribute `dtype`=`bfloat16`; F8_* =
custom 1-byte floats with a `dtype` attribute; C64 = compound {{r: f32 @0,
i: f32 @4}}; everything else is refused.

## MANIFEST.json

`{{file: {{"metadata": {{root string attributes}}, "tensors": {{dataset path:
{{"name", "dtype", "shape", "bytes_hex_sha256", "attrs", ["refuse"], ["note"]}}}}}}}}`.
`dtype` is the safetensors dtype moeckpt should report (or `unsupported`);
`bytes_hex_sha256` is the SHA-256 of the little-endian raw element bytes in C
order as moeckpt should hold them (BOOL as 0/1 bytes, big-endian datasets as
the little-endian bytes of the same values, BF16/F8 as the raw bit patterns,
C64 as interleaved float32 r, i; `e3b0c442...` for empty datasets; null for
unsupported types); `attrs` are the dataset's string attributes; `refuse`
says why moeckpt must refuse the dataset.  The hashes were computed from the
arrays the generator wrote, then checked three ways: h5py low-level reads
(memory type = little-endian file type), the file bytes at `H5Dget_offset`
for contiguous datasets, and the system libhdf5 (below).

## Files

| file | bytes |
| --- | --- |
{listing}

## Building the BF16 / F8 types with h5py

`t = h5py.h5t.IEEE_F32LE.copy(); t.set_fields(15, 7, 8, 0, 7); t.set_offset(0);
t.set_precision(16); t.set_size(2); t.set_ebias(127)` (the F8 types: the same
with their fields, precision 8, size 1).  libhdf5 validates each call against
the current state, so the order matters:

{co}

(`set_size` on a float shrinks the precision itself when the fields fit, so
`set_precision` is optional; `set_offset(0)` is a no-op after the copy.)

F8_E8M0 cannot be expressed: it has no sign bit, and an HDF5 float needs a
sign bit inside its precision that overlaps neither exponent nor mantissa
(fields (8, 0, 8, 0, 0) with precision 8: "{OBS['e8m0']}"; sign at 7 inside
the exponent: "{OBS['e8m0_overlap']}").  The four F8 types that exist
(E5M2, E4M3 = E4M3FN, and the FNUZ variants with bias 16 / 8) share two bit
layouts and differ in bias and in NaN/inf conventions that HDF5 cannot
record, hence the `dtype` attribute.

Writing the raw bits: the dataset must be written with **memory type = file
type**.  A `STD_U16LE` memory type makes libhdf5 convert the *values*
(uint16 -> bf16 float); reading with `STD_U16LE` likewise converts:
{bf['read_with_STD_U16LE']}.  Reading with the file type itself returns the bits
unchanged (all 65536 patterns: {bf['raw_read_with_file_type_exact']}).

## What h5py reads back for the custom types

Every bit pattern written with the custom types to a scratch file and read
with h5py's high-level API:

* BF16 custom float: h5py maps it to `{bf['h5py_dtype']}`; of 65536 patterns
  {bf['exact']} non-NaN patterns are bit-exact (= ml_dtypes' widening), {bf['non_nan_mismatches']} non-NaN
  mismatches; {bf['nan_read_as_nan']} of {bf['nan_patterns']} NaN patterns read as NaN, {bf['nan_bits_preserved']}
  of them with the bits ml_dtypes gives (libhdf5's soft float conversion keeps a
  NaN's sign but sets every mantissa bit, so payloads and quiet/signalling are
  lost: compare raw bits, or NaN-ness, never float32 bits).  Examples (input bits -> float32 from h5py):
  {'; '.join(f"{k} -> {v}" for k, v in bf['examples'].items())}.
* F8 custom floats (`d.astype('f4')`): libhdf5 converts with IEEE semantics (all-ones
  exponent = inf/NaN, no FNUZ rules), so only F8_E5M2 reads back right:

| type | h5py dtype | mismatches vs ml_dtypes | examples |
| --- | --- | --- | --- |
{f8_rows}

* h5py's own bfloat16 (an `ml_dtypes.bfloat16` array passed to `create_dataset`):
  an HDF5 **{OBS['opaque_bf16']['class']}** type of {OBS['opaque_bf16']['size']} bytes with tag
  `{OBS['opaque_bf16']['tag']!r}` (empty: h5py does not record that it is bfloat16; Keras adds the
  `dtype`=`bfloat16` attribute itself); h5py reads it back as `{OBS['opaque_bf16']['h5py_dtype']}`
  (`{OBS['opaque_bf16']['h5py_value_type']}` elements, e.g. `{OBS['opaque_bf16']['first']}`) and Keras
  re-views it with `np.array(value, dtype=ml_dtypes.bfloat16)`.
* complex64 as h5py {h5py.version.version} writes it (libhdf5 {h5py.version.hdf5_version} has a native
  complex class, h5py still uses the compatible compound by default): {OBS['c64_type']}.

## Dense attribute storage

`keras/legacy-keras2-200layers.h5`: root object header version
{rh['object_header_version']}, attribute info message present:
{rh['attribute_info_message']}, attribute messages in the header:
{rh['attribute_messages_in_header']} ({rh['num_attrs']} attributes, `layer_names` {rh['layer_names_bytes']}
bytes of text) -> dense storage.  `keras/legacy-keras2.h5` (default format): header
version {rh_small['object_header_version']}, attribute messages in the header:
{rh_small['attribute_messages_in_header']}.

## System libhdf5 check

{lib_text}

## Datasets

""" + "\n".join(file_section(fn) for fn in sorted(MANIFEST)) + f"""
## malformed/

`malformed/EXPECTED.json`: every file must give a clear error and exit status 2.

| file | bytes | what | h5py says |
| --- | --- | --- | --- |
{mal}

## Checking a conversion

```sh
/work/venv/bin/python scripts/check_hdf5.py fixtures/models/tiny-mixtral/model.safetensors fixtures/hdf5/tiny-mixtral/model.h5
```

({OBS['check[tiny-mixtral]']}; tiny-mixtral-bf16: {OBS['check[tiny-mixtral-bf16]']})
"""
    (OUT / "README.md").write_text(text)


def main() -> int:
    os.chdir(ROOT)
    log(f"writing HDF5 fixtures under {OUT}")
    fresh_dir(OUT)
    probe_type_call_orders()
    sweep_custom_floats()
    make_nested()
    make_chunked()
    make_big_endian()
    make_bf16()
    make_keras()
    make_tiny_mixtral()
    make_unsupported()
    make_malformed()
    verify_all()
    libhdf5_check()
    (OUT / "MANIFEST.json").write_text(json.dumps(dict(sorted(MANIFEST.items())), indent=1,
                                                  ensure_ascii=False) + "\n")
    write_readme()
    for p in OUT.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"total size of fixtures/hdf5: {total} bytes")
    assert total < MAX_TOTAL_BYTES, "fixtures/hdf5 too large"
    return 0


if __name__ == "__main__":
    sys.exit(main())
