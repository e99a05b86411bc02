"""Frontends: ONNX and PyTorch models imported into the graph IR (see issue: frontends)."""
