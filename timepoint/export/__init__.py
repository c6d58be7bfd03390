"""Exporters by format name. Each is `export(store, out_dir, compression) -> list[Path]`: it reads
only the run store, so any past run can be exported again, and writes its files into `out_dir`;
line formats honour `compression` (none, gzip, bz2)."""

from . import chat, csv_tables, formatters, fountain, markdown, parquet, tables, tdf, training

EXPORTERS = {
    "training": training.export,
    "chat": chat.export,
    "formatters": formatters.export,
    "tdf": tdf.export,
    "sqlite": tables.export,
    "parquet": parquet.export,
    "csv": csv_tables.export,
    "fountain": fountain.export,
    "markdown": markdown.export,
}
