"""Helpers shared by the fixture scripts (make_fixtures.py, make_model_fixtures.py,
make_hdf5_fixtures.py, make_mlx_quantized_fixtures.py)."""
import json
import shutil
import struct
from pathlib import Path


def log(msg: str) -> None:
    print(msg, flush=True)


def fresh_dir(path: Path) -> Path:
    """An empty directory at `path` (what was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def canonicalize_metadata_order(path: Path) -> None:
    """Rewrite the library's header with the `__metadata__` keys sorted.

    safetensors (Rust) keeps `__metadata__` in a HashMap, so its key order
    changes from run to run.  Everything else (tensor order, offsets, compact
    serde_json syntax, space padding) is left exactly as the library wrote it:
    the header is re-serialised with the same compact syntax (checked to
    reproduce the library's bytes before reordering) and has the same length.
    """
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = raw[8:8 + n]
    text = hdr.rstrip(b" ")
    pad = hdr[len(text):]
    obj = json.loads(text)
    compact = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert compact(obj) == text, "library header is not plain compact JSON"
    new = {"__metadata__": dict(sorted(obj["__metadata__"].items()))}
    new.update({k: v for k, v in obj.items() if k != "__metadata__"})
    new_text = compact(new)
    assert len(new_text) == len(text)
    path.write_bytes(raw[:8] + new_text + pad + raw[8 + n:])
    # the library must read it back identically
    import safetensors
    with safetensors.safe_open(str(path), "np") as f:
        assert f.metadata() == obj["__metadata__"]
