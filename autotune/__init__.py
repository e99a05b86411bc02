"""Autotuning: schedule search spaces, cost model, search, measurement and the tuning database."""
