"""Exporters by format name. Each is `export(store, out_dir, compression) -> list[Path]`: it reads the
run only through the read side (`timepoint.history.RunHistory`), so any past run can be exported
again, and writes its files into `out_dir`; line formats honour `compression` (none, gzip, bz2). A
format with nothing to write for a run (backward outside PORTAL, counterfactual outside BRANCHING)
writes no file."""

from . import (
    backward,
    chat,
    counterfactual,
    csv_tables,
    formatters,
    fountain,
    html,
    markdown,
    narrative,
    parquet,
    pdf,
    tables,
    tdf,
    training,
)

EXPORTERS = {
    "training": training.export,
    "chat": chat.export,
    "backward": backward.export,
    "counterfactual": counterfactual.export,
    "formatters": formatters.export,
    "tdf": tdf.export,
    "sqlite": tables.export,
    "parquet": parquet.export,
    "csv": csv_tables.export,
    "fountain": fountain.export,
    "markdown": markdown.export,
    "narrative": narrative.export,
    "html": html.export,
    "pdf": pdf.export,
}
