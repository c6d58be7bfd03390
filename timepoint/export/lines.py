"""Line formats on disk: JSONL written record by record, optionally gzip or bz2 compressed, and
read back whatever the compression (the suffix says which)."""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

COMPRESSION = {"none": "", "gzip": ".gz", "bz2": ".bz2"}


def open_text(path: Path, mode: str = "r") -> IO[str]:
    """Open a text file, decompressing or compressing by its suffix."""
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8", newline="")
    if path.suffix == ".bz2":
        return bz2.open(path, mode + "t", encoding="utf-8", newline="")
    return path.open(mode, encoding="utf-8", newline="")


def compressed(path: Path, compression: str) -> Path:
    return path.with_name(path.name + COMPRESSION[compression])


def write_jsonl(path: Path, records: Iterable[dict], compression: str = "none") -> Path:
    """Write one JSON object per line to `path` (plus .gz/.bz2); returns the path written."""
    target = compressed(path, compression)
    with open_text(target, "w") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target


def read_jsonl(path: Path) -> list[dict]:
    with open_text(path) as f:
        return [json.loads(line) for line in f if line.strip()]
