"""Code generators: kernel IR to LLVM (CPU), CUDA C (NVIDIA GPUs); graph IR to StableHLO (XLA)."""
