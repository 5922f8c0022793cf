"""Execution of checked, optimized trees on Apache Arrow data."""
