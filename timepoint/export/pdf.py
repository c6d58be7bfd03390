"""`screenplay.pdf`: the Fountain screenplay typeset by screenplain in the industry format: US Letter,
Courier (Courier Prime, embedded) 12 pt, 1.5 in left margin, 1 in top, 55 lines a page."""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.lib.pagesizes import letter
from screenplain.export.pdf import Settings, to_pdf
from screenplain.parsers.fountain import parse

from ..store import RunStore
from .fountain import screenplay


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """A PDF is already compressed; `compression` does not apply."""
    path = out_dir / "screenplay.pdf"
    to_pdf(parse(io.StringIO(screenplay(store))), str(path), settings=Settings(font_size=12, page_size=letter))
    return [path]
