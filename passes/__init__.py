"""Graph IR -> graph IR passes, a registry of them, and pipelines parsed from strings.

A pass is a small dataclass registered under a name; its fields are its options:

    @register("prune-dead")
    @dataclass
    class PruneDead:
        def run(self, module: Module) -> bool: ...   # returns whether it changed the module

A pipeline string lists passes with optional options: "prune-dead,fuse-ops{max-ops=16}".
"""
from .registry import PassError, Pipeline, available_passes, parse_pipeline, register

__all__ = ["PassError", "Pipeline", "available_passes", "parse_pipeline", "register"]
