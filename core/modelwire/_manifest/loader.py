"""Deprecated: the manifest loader is now three modules.

:mod:`.structure` (one document), :mod:`.sources` (reading a source) and
:mod:`.catalog` (many documents merged). This module only re-exports their
public names for code not yet moved over (``_runtime``); import from the
new modules instead. It will be removed.
"""

from __future__ import annotations

from .catalog import Catalog, check_plugin_names, load_manifests, load_source, plugin_name_errors
from .sources import builtin_names
from .structure import converter, parse_manifest

__all__ = [
    "Catalog",
    "builtin_names",
    "check_plugin_names",
    "converter",
    "load_manifests",
    "load_source",
    "parse_manifest",
    "plugin_name_errors",
]
