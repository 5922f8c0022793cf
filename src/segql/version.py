"""segql's version (``segql.__version__``), in a module of its own: ``segql
--version`` and ``import segql`` read it without loading the engine."""

from __future__ import annotations

__version__ = "0.1.0"
