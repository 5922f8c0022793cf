"""The Arrow engine: checked, optimized trees evaluated in process with
``pyarrow.compute`` (and NumPy for grouped reductions)."""
