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

    (OUT / "README.md").write_text(README)
    for path in sorted(OUT.iterdir()):
        log(f"{path.name}: {path.stat().st_size} bytes")


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
"""

if __name__ == "__main__":
    main()
