"""Helpers shared by the fixture scripts (make_fixtures.py, make_model_fixtures.py,
make_hdf5_fixtures.py)."""
import shutil
from pathlib import Path


def log(msg: str) -> None:
    print(msg, flush=True)


def fresh_dir(path: Path) -> Path:
    """An empty directory at `path` (what was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
