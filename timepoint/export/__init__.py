"""Exporters by format name. Each is `export(store, out_dir, compression) -> list[Path]`: it reads the
run only through the read side (`timepoint.history.RunHistory`), so any past run can be exported
again, and writes its files into `out_dir`; line formats honour `compression` (none, gzip, bz2). A
format with nothing to write for a run (backward outside PORTAL, counterfactual outside BRANCHING)
writes no file.

A format's module is imported when it is first used: some bring heavy libraries (plotly, pyarrow,
reportlab) that a run needs only at its end, and a process that never writes the format never loads them."""

from importlib import import_module
from typing import Callable

MODULES = {
    "training": "training",
    "chat": "chat",
    "backward": "backward",
    "counterfactual": "counterfactual",
    "formatters": "formatters",
    "tdf": "tdf",
    "sqlite": "tables",
    "parquet": "parquet",
    "csv": "csv_tables",
    "fountain": "fountain",
    "markdown": "markdown",
    "narrative": "narrative",
    "html": "html",
    "pdf": "pdf",
}


def exporter(name: str) -> Callable:
    """The `export` function of a format named in MODULES."""
    return import_module(f"{__name__}.{MODULES[name]}").export
