"""Timepoint: turn a scenario into a causal timeline and export it as fine-tuning data."""

__version__ = "0.1.0"
