#!/usr/bin/env python3
"""Compare an HDF5 checkpoint with a safetensors checkpoint, bit for bit.

    /work/venv/bin/python scripts/check_hdf5.py SRC OUT [--allow-missing]

One of SRC / OUT is an HDF5 file (recognised by its signature, whatever its
extension), the other a safetensors checkpoint: a `.safetensors` file, a
`*.safetensors.index.json`, or a directory (with `model.safetensors.index.json`
or a single `.safetensors` file).  Typical use: OUT is what `moeckpt convert`
wrote from SRC, in either direction.

The HDF5 side is read with h5py following moeckpt's conventions (below), the
safetensors side with the official `safetensors` library (torch framework).
For every tensor:

* the HDF5 dataset's type must map to the safetensors dtype (BOOL, U8..U64,
  I8..I64, F16, BF16, F32, F64, C64, F8_*), shapes equal;
* the raw element bytes, little-endian, C order, must be identical
  (big-endian datasets are read with a little-endian memory type; custom
  floats and opaque bf16 are read with the file type itself, i.e. the raw bit
  patterns; booleans as 0/1 bytes);
* values as h5py reads them (high level `dset[()]`) must equal the
  safetensors values: for the custom-float BF16 type h5py returns float32,
  compared with the bf16 values widened to float32 (NaN where NaN, otherwise
  bit for bit, so -0.0 must stay -0.0);
* the root group's scalar string attributes (variable-length UTF-8 or
  fixed-length ASCII/UTF-8) must equal the safetensors `__metadata__`
  (non-string attributes are ignored and listed).

Names: the dataset `/a/b/c` is the tensor `a.b.c` (any nesting accepted).
Tensors present on one side only are a failure unless --allow-missing (then
they are listed and only the common tensors are compared).

Exit status: 0 OK, 1 mismatch (messages on stdout), 2 usage error.

moeckpt's HDF5 type conventions (also used by scripts/make_hdf5_fixtures.py
to check the fixtures it writes):

* native IEEE integers/floats of 1/2/4/8 bytes (either byte order);
* BOOL = h5py's enum over a 1-byte integer with exactly FALSE=0, TRUE=1;
* BF16 = a 2-byte HDF5 float with sign 15, exponent 7..14 (bias 127),
  mantissa 0..6; or a 2-byte opaque type with the string attribute
  `dtype` = `bfloat16` (what h5py writes for an ml_dtypes.bfloat16 array,
  as Keras 3 does);
* F8 = a 1-byte HDF5 float: E5M2 fields (sign 7, exp 2..6, mantissa 0..1) with
  bias 15 = F8_E5M2 / bias 16 = F8_E5M2FNUZ, E4M3 fields (sign 7, exp 3..6,
  mantissa 0..2) with bias 7 = F8_E4M3 / bias 8 = F8_E4M3FNUZ; a `dtype`
  string attribute, when present, must name that same dtype;
* C64 = a compound of two IEEE float32 members `r` (offset 0) and `i`
  (offset 4), size 8 (h5py's complex64);
* anything else (strings, references, arrays, other compounds/enums/opaques,
  3-byte integers, null dataspaces, ...) is unsupported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# (spos, epos, esize, mpos, msize), ebias -> name, for 1/2-byte custom floats
BF16_FIELDS = (15, 7, 8, 0, 7)
F8_LAYOUTS = {
    ((7, 2, 5, 0, 2), 15): "F8_E5M2",
    ((7, 2, 5, 0, 2), 16): "F8_E5M2FNUZ",
    ((7, 3, 4, 0, 3), 7): "F8_E4M3",
    ((7, 3, 4, 0, 3), 8): "F8_E4M3FNUZ",
}
IEEE_FLOATS = {  # size -> (fields, ebias, name)
    2: ((15, 10, 5, 0, 10), 15, "F16"),
    4: ((31, 23, 8, 0, 23), 127, "F32"),
    8: ((63, 52, 11, 0, 52), 1023, "F64"),
}
# safetensors dtype -> numpy dtype used to hold the little-endian raw bytes
RAW_NP = {
    "BOOL": np.uint8, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
    "F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": np.uint16,
    "C64": np.complex64, "F8_E5M2": np.uint8, "F8_E4M3": np.uint8,
    "F8_E4M3FNUZ": np.uint8, "F8_E5M2FNUZ": np.uint8,
}
CLASS_NAMES = {
    h5py.h5t.INTEGER: "INTEGER", h5py.h5t.FLOAT: "FLOAT", h5py.h5t.STRING: "STRING",
    h5py.h5t.BITFIELD: "BITFIELD", h5py.h5t.OPAQUE: "OPAQUE", h5py.h5t.COMPOUND: "COMPOUND",
    h5py.h5t.REFERENCE: "REFERENCE", h5py.h5t.ENUM: "ENUM", h5py.h5t.VLEN: "VLEN",
    h5py.h5t.ARRAY: "ARRAY", h5py.h5t.TIME: "TIME",
}
if hasattr(h5py.h5t, "COMPLEX"):
    CLASS_NAMES[h5py.h5t.COMPLEX] = "COMPLEX"


class Unsupported(Exception):
    pass


def tensor_name(path: str) -> str:
    return path.lstrip("/").replace("/", ".")


def type_class_name(t) -> str:
    return CLASS_NAMES.get(t.get_class(), f"class {t.get_class()}")


def attr_str(value) -> str | None:
    """A scalar string attribute as text, or None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).rstrip(b"\0").decode("utf-8")
    return None


def string_attrs(obj) -> dict[str, str]:
    out = {}
    for k in obj.attrs:
        s = attr_str(obj.attrs[k])
        if s is not None:
            out[k] = s
    return out


def non_string_attrs(obj) -> list[str]:
    return [k for k in obj.attrs if attr_str(obj.attrs[k]) is None]


def float_fields(t) -> tuple[tuple[int, ...], int]:
    return tuple(t.get_fields()), t.get_ebias()


def classify(dset: h5py.Dataset) -> str:
    """The safetensors dtype moeckpt reports for the dataset; raises
    Unsupported(reason) when moeckpt must refuse it."""
    if dset.id.get_space().get_simple_extent_type() == h5py.h5s.NULL:
        raise Unsupported("null dataspace (h5py.Empty): no shape")
    t = dset.id.get_type()
    cls = t.get_class()
    size = t.get_size()
    dattr = attr_str(dset.attrs["dtype"]) if "dtype" in dset.attrs else None
    if cls == h5py.h5t.INTEGER:
        if size not in (1, 2, 4, 8) or t.get_precision() != 8 * size or t.get_offset() != 0:
            raise Unsupported(f"{size}-byte integer (precision {t.get_precision()}, offset {t.get_offset()})")
        signed = t.get_sign() == h5py.h5t.SGN_2
        return f"{'I' if signed else 'U'}{8 * size}"
    if cls == h5py.h5t.FLOAT:
        fields, bias = float_fields(t)
        if t.get_offset() != 0 or t.get_precision() != 8 * size:
            raise Unsupported(f"float with offset {t.get_offset()} / precision {t.get_precision()}")
        if size in IEEE_FLOATS and (fields, bias) == IEEE_FLOATS[size][:2]:
            name = IEEE_FLOATS[size][2]
        elif size == 2 and fields == BF16_FIELDS and bias == 127:
            name = "BF16"
        elif size == 1 and (fields, bias) in F8_LAYOUTS:
            name = F8_LAYOUTS[(fields, bias)]
        else:
            raise Unsupported(f"{size}-byte float with fields {fields} and bias {bias}")
        if dattr is not None and dattr != name and not (name == "BF16" and dattr == "bfloat16"):
            raise Unsupported(f"float layout is {name} but the dtype attribute says {dattr!r}")
        return name
    if cls == h5py.h5t.ENUM:
        base = t.get_super()
        members = {t.get_member_name(i): t.get_member_value(i) for i in range(t.get_nmembers())}
        if base.get_size() == 1 and members == {b"FALSE": 0, b"TRUE": 1}:
            return "BOOL"
        raise Unsupported(f"enum {sorted(members)} over a {base.get_size()}-byte integer")
    if cls == h5py.h5t.OPAQUE:
        if size == 2 and dattr == "bfloat16":
            return "BF16"
        raise Unsupported(f"{size}-byte opaque (tag {t.get_tag()!r}, dtype attribute {dattr!r})")
    if cls == h5py.h5t.COMPOUND:
        members = [(t.get_member_name(i), t.get_member_offset(i), t.get_member_type(i))
                   for i in range(t.get_nmembers())]
        if (size == 8 and [(m[0], m[1]) for m in members] == [(b"r", 0), (b"i", 4)]
                and all(m[2].get_class() == h5py.h5t.FLOAT and m[2].get_size() == 4
                        and float_fields(m[2]) == IEEE_FLOATS[4][:2] for m in members)):
            return "C64"
        raise Unsupported("compound " + ", ".join(f"{m[0].decode()}@{m[1]}:{type_class_name(m[2])}{m[2].get_size()}"
                                                  for m in members))
    if cls == h5py.h5t.STRING:
        raise Unsupported(("variable-length" if t.is_variable_str() else f"fixed-length ({size}-byte)") + " string")
    raise Unsupported(f"HDF5 type class {type_class_name(t)}")


def little_endian_mtype(t):
    """The file type with its byte order (and its members') set to little-endian."""
    m = t.copy()
    cls = m.get_class()
    if cls in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.ENUM):
        m.set_order(h5py.h5t.ORDER_LE)
    elif cls == h5py.h5t.COMPOUND:
        m = h5py.h5t.create(h5py.h5t.COMPOUND, t.get_size())
        for i in range(t.get_nmembers()):
            mt = t.get_member_type(i).copy()
            mt.set_order(h5py.h5t.ORDER_LE)
            m.insert(t.get_member_name(i), t.get_member_offset(i), mt)
    return m


def read_raw_le(dset: h5py.Dataset, dtype: str) -> np.ndarray:
    """The dataset's elements as moeckpt holds them: little-endian, C order,
    raw bit patterns for custom floats / opaque bf16, 0/1 bytes for BOOL."""
    shape = dset.shape
    arr = np.empty(shape, dtype=RAW_NP[dtype])
    if arr.size == 0:
        return arr
    ftype = dset.id.get_type()
    if dtype == "BOOL":
        mtype = ftype.copy()  # the enum itself: no conversion, raw int8 0/1
        arr8 = np.empty(shape, dtype=np.int8)
        dset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, arr8, mtype=mtype)
        if not np.isin(arr8, (0, 1)).all():
            raise ValueError(f"{dset.name}: boolean values other than 0/1")
        return arr8.view(np.uint8)
    # same class and layout as the file, little-endian: HDF5 only swaps bytes
    # (a uint16 memory type would make HDF5 convert the *values*).
    mtype = little_endian_mtype(ftype)
    dset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=mtype)
    return arr


def h5_tensors(f: h5py.File) -> dict[str, h5py.Dataset]:
    out: dict[str, h5py.Dataset] = {}
    paths: dict[str, str] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            n = tensor_name("/" + name)
            if n in out:
                raise ValueError(f"datasets {paths[n]} and /{name} both map to tensor name {n!r}")
            out[n] = obj
            paths[n] = "/" + name

    f.visititems(visit)
    return out


def is_hdf5(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        # the superblock is at 0, 512, 1024, 2048, ... (user block)
        off = 0
        while True:
            fh.seek(off)
            sig = fh.read(8)
            if sig == HDF5_SIGNATURE:
                return True
            if len(sig) < 8:
                return False
            off = 512 if off == 0 else off * 2


# ---------------------------------------------------------------------------
# safetensors side
# ---------------------------------------------------------------------------

class UsageError(Exception):
    pass


def safetensors_files(path: Path) -> list[Path]:
    if path.is_dir():
        idx = path / "model.safetensors.index.json"
        if idx.exists():
            path = idx
        elif (path / "model.safetensors").exists():
            return [path / "model.safetensors"]
        else:
            files = sorted(path.glob("*.safetensors"))
            if len(files) != 1:
                raise UsageError(f"{path}: a directory needs model.safetensors.index.json, model.safetensors "
                                 f"or exactly one .safetensors file (found {len(files)})")
            return files
    if path.name.endswith(".index.json"):
        wm = json.loads(path.read_text())["weight_map"]
        return [path.parent / s for s in sorted(set(wm.values()))]
    return [path]


def load_safetensors(path: Path):
    import safetensors
    tensors, metadata = {}, None
    for p in safetensors_files(path):
        with safetensors.safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
            if metadata is None:
                metadata = md
            for k in f.keys():
                sl = f.get_slice(k)
                tensors[k] = (sl.get_dtype(), list(sl.get_shape()), f.get_tensor(k))
    return tensors, metadata or {}


def torch_raw(t) -> bytes:
    import torch
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same_values_nan_aware(a: np.ndarray, b: np.ndarray) -> bool:
    """a, b float arrays of the same dtype: NaN where NaN, else bitwise equal."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    ui = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return bool(np.array_equal(a[~na].view(ui), b[~nb].view(ui)))


def compare(h5path: Path, stpath: Path, allow_missing: bool) -> list[str]:
    import torch
    problems: list[str] = []
    st, st_meta = load_safetensors(stpath)
    with h5py.File(h5path, "r") as f:
        h5 = h5_tensors(f)
        meta = string_attrs(f)
        ignored = non_string_attrs(f)
        if ignored:
            print(f"note: non-string root attributes ignored: {ignored}")
        if meta != st_meta:
            problems.append(f"metadata differs: HDF5 root string attributes {meta} != safetensors __metadata__ {st_meta}")
        only_h5 = sorted(set(h5) - set(st))
        only_st = sorted(set(st) - set(h5))
        for what, names in (("only in the HDF5 file", only_h5), ("only in the safetensors checkpoint", only_st)):
            if names:
                msg = f"{len(names)} tensor(s) {what}: {names[:8]}{' ...' if len(names) > 8 else ''}"
                (print if allow_missing else problems.append)(("note: " if allow_missing else "") + msg)
        common = sorted(set(h5) & set(st))
        for name in common:
            d = h5[name]
            st_dtype, st_shape, t = st[name]
            try:
                dtype = classify(d)
            except Unsupported as e:
                problems.append(f"{name}: HDF5 dataset {d.name} has an unsupported type: {e}")
                continue
            if dtype != st_dtype:
                problems.append(f"{name}: dtype {dtype} (HDF5 {d.name}) != {st_dtype}")
                continue
            if list(d.shape) != st_shape:
                problems.append(f"{name}: shape {list(d.shape)} != {st_shape}")
                continue
            raw = read_raw_le(d, dtype).tobytes()
            want = torch_raw(t)
            if raw != want:
                n = next((i for i in range(min(len(raw), len(want))) if raw[i] != want[i]), min(len(raw), len(want)))
                problems.append(f"{name}: raw bytes differ ({len(raw)} vs {len(want)} bytes, first difference at byte {n})")
                continue
            # values as h5py's high-level API reads them
            if d.size == 0:
                continue
            v = d[()]
            if dtype == "BF16" and d.id.get_type().get_class() == h5py.h5t.FLOAT:
                want_f32 = t.to(torch.float32).numpy()
                if v.dtype != np.float32 or not same_values_nan_aware(np.asarray(v), want_f32):
                    problems.append(f"{name}: h5py reads {v.dtype} values that differ from the bf16 values widened to float32")
            elif dtype in ("F16", "F32", "F64"):
                w = t.numpy()
                if not same_values_nan_aware(np.asarray(v, dtype=w.dtype.newbyteorder("=")), w):
                    problems.append(f"{name}: h5py values differ")
            elif dtype == "C64" or dtype[0] in "IU" or dtype == "BOOL":
                w = t.numpy()
                vv = np.asarray(v).astype(w.dtype)
                if vv.tobytes() != w.tobytes():
                    problems.append(f"{name}: h5py values differ")
        print(f"compared {len(common)} tensor(s), metadata {meta}")
    return problems


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    if len(args) != 2 or any(fl not in ("--allow-missing",) for fl in flags):
        print("usage: check_hdf5.py SRC OUT [--allow-missing]\n"
              "  one of SRC / OUT an HDF5 file, the other a .safetensors file, an index.json or a directory",
              file=sys.stderr)
        return 2
    a, b = Path(args[0]), Path(args[1])
    for p in (a, b):
        if not p.exists():
            print(f"usage error: {p} does not exist", file=sys.stderr)
            return 2
    if is_hdf5(a) and not is_hdf5(b):
        h5path, stpath = a, b
    elif is_hdf5(b) and not is_hdf5(a):
        h5path, stpath = b, a
    else:
        print("usage error: exactly one of SRC / OUT must be an HDF5 file", file=sys.stderr)
        return 2
    try:
        problems = compare(h5path, stpath, "--allow-missing" in flags)
    except UsageError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001  (unreadable HDF5 or safetensors input)
        print(f"FAIL: cannot read {h5path} / {stpath}: {type(e).__name__}: {e}")
        return 1
    if problems:
        for p in problems[:40]:
            print("MISMATCH:", p)
        if len(problems) > 40:
            print(f"... and {len(problems) - 40} more")
        print(f"FAIL: {len(problems)} problem(s) between {h5path} and {stpath}")
        return 1
    print(f"OK: {h5path} matches {stpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
