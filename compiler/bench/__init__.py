"""Benchmarks run by `python -m compiler bench <name>`; each prints its figures and how to rerun."""
