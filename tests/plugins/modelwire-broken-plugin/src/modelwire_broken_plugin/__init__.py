"""A plugin that cannot be imported (for modelwire's tests)."""

raise ImportError("modelwire_broken_plugin needs a module that is not installed")
