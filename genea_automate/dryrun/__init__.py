"""Dry runs of the rules: simulate, rule tests and replay share one core."""
