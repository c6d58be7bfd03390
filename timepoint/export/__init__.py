"""Exporters by format name. Each reads a run store and writes into a directory."""

from . import training

EXPORTERS = {"training": training.export}
