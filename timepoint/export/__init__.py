"""Exporters by format name. Each is `export(store, out_dir, compression) -> list[Path]`: it reads
only the run store, so any past run can be exported again, and writes its files into `out_dir`;
line formats honour `compression` (none, gzip, bz2)."""

from . import training

EXPORTERS = {"training": training.export}
