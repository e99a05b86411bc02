"""Tests of the code generators (codegen/)."""
