"""Tests of the XLA and TPU targets (codegen/xla)."""
