"""Compiled modules at run time: input checks, memory plan, native entry, save/load."""
from .module import InputError, LLVMModule, load

__all__ = ["LLVMModule", "InputError", "load"]
