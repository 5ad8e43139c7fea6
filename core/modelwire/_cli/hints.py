"""Hints the CLI gives in more than one command."""

from __future__ import annotations

__all__ = ["PARSER_HINT"]

PARSER_HINT = (
    "no parser plugin is installed; install the built-in ones: from a checkout,"
    " pip install ./plugins/modelwire-sse ./plugins/modelwire-jsonchunk ./plugins/modelwire-text"
)
