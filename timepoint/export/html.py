"""`run.html`: the run page as one standalone file, plotly.js inlined, viewable with no network."""

from __future__ import annotations

from pathlib import Path

from ..store import RunStore
from .page import run_page


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Always plain text: a page is opened whole."""
    path = out_dir / "run.html"
    path.write_text(run_page(store), encoding="utf-8", newline="\n")
    return [path]
