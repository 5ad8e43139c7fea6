"""The ``modelwire`` command: a thin layer over the public API (one module per command group)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
