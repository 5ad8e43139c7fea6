"""The ``modelwire`` command: a thin layer over the public API.

Every :class:`ModelError` is printed as one readable message on stderr with
exit status 1; no command shows a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import attrs

from .._errors import ManifestIssue, ModelError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


# -- frames --------------------------------------------------------------------


def _cmd_frames(args: argparse.Namespace) -> int:
    from .._plugins.manager import get_plugins

    parser = get_plugins().get_parser(args.parser)
    size = args.chunk_size
    if size < 1:
        print("error: --chunk-size must be at least 1", file=sys.stderr)
        return 1
    stream: BinaryIO
    if args.file in (None, "-"):
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            print(f"error: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
            return 1
    try:
        while True:
            chunk = stream.read(size)
            if not chunk:
                break
            for frame in parser.feed(chunk):
                _emit(frame.to_dict())
        for frame in parser.close():
            _emit(frame.to_dict())
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        sys.stdout.flush()
    return 0


# -- plugins -------------------------------------------------------------------


_PLURALS = {"fallback_policy": "fallback policies"}


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .._plugins.manager import get_plugins

    plugins = get_plugins()
    rows = plugins.describe()
    errors = [
        {
            "code": e.code,
            "plugin": getattr(e, "plugin", None),
            "distribution": getattr(e, "distribution", None),
            "message": e.message,
        }
        for e in plugins.errors()
    ]
    if args.json:
        _emit({"registrations": rows, "errors": errors})
    else:
        width = max((len(r["name"]) for r in rows), default=4)
        if not any(r["kind"] == "parser" for r in rows):
            from .hints import PARSER_HINT

            print("parsers:\n  (none)")
            errors.append({"code": "PARSER_NOT_FOUND", "plugin": None, "distribution": None, "message": PARSER_HINT})
        current = None
        for row in rows:
            if row["kind"] != current:
                current = row["kind"]
                print(f"{_PLURALS.get(current, current.replace('_', ' ') + 's')}:")
            origin = f"{row['distribution'] or row['plugin']} {row['version'] or ''}".strip()
            extra = ""
            if row.get("media_types"):
                extra = "  [" + ", ".join(row["media_types"]) + "]"
            if row.get("conflict"):
                extra += "  (conflict)"
            print(f"  {row['name']:<{width}}  {origin}{extra}")
        for err in errors:
            print(f"error: {err['message']}", file=sys.stderr)
    return 1 if errors else 0


# -- check / schema --------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    if not args.sources and not args.tools:
        print("error: give manifest SOURCEs, --tools PATH..., or both", file=sys.stderr)
        return 2
    status = _check_manifests(args) if args.sources else 0
    if args.tools:
        status = max(status, _check_tools(args))
    return status


def _check_tools(args: argparse.Namespace) -> int:
    """Tool manifests, then the pipelines in the same files; every error printed."""
    from ..tools import ToolRegistry, read_tools

    if args.resolve_impl:
        # As `modelwire run` imports an app from its project directory: each tool
        # file's directory (and the working directory) is importable.
        from pathlib import Path

        for path in [".", *args.tools]:
            folder = Path(path).resolve()
            folder = folder if folder.is_dir() else folder.parent
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
    registry = ToolRegistry()
    try:
        tools, issues = read_tools(*args.tools, registry=registry, resolve=args.resolve_impl)
    except ModelError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    seen = {str(i) for i in issues}
    pipelines: list[Any] = []
    from ..pipelines import read_pipelines

    # The IO check needs every tool: with broken or no tool manifests, check structure only.
    checked_against = registry if tools and not issues else None
    try:
        pipelines, found = read_pipelines(list(args.tools), checked_against)
    except ModelError as exc:
        found = [ManifestIssue(exc.message)]
    issues.extend(i for i in found if str(i) not in seen)
    if pipelines and checked_against is None and tools:
        print("note: pipelines were checked without the tool IO check (fix the tool errors first)", file=sys.stderr)
    for issue in issues:
        print(f"error: {issue}", file=sys.stderr)
    if issues:
        return 1
    counts = plural(len(tools), "tool")
    if pipelines:
        counts += ", " + plural(len(pipelines), "pipeline")
    print(f"ok: {', '.join(args.tools)}: {counts}")
    return 0


def _check_manifests(args: argparse.Namespace) -> int:
    from .._manifest.catalog import load_manifests, plugin_name_errors

    # All sources form one catalog, as a runtime loads them: a model in one
    # file may use a provider from another, and a name defined twice is an error,
    # except over a built-in (``check builtin:* mine.yaml`` checks as ``call`` loads).
    # Checked with what `call` loads under them (built-ins, then the discovered
    # manifests), so a model may use a bundled provider; only the given files count.
    from .._manifest.config import default_sources
    from .._plugins.manager import get_plugins

    builtins = [s for s in args.sources if s.startswith("builtin:")]
    sources, base = default_sources(*args.sources, discover=not args.no_config)
    issues: list[ManifestIssue] = []
    try:
        catalog = load_manifests(*sources, overridable=[*base, *builtins], collect=issues)
    except ModelError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    mine = [
        (section, name) for (section, name), origin in catalog.origins.items()
        if not _from_defaults(origin, base, builtins)
    ]
    own = attrs.evolve(
        catalog,
        providers={n: p for n, p in catalog.providers.items() if ("providers", n) in mine},
        models={n: m for n, m in catalog.models.items() if ("models", n) in mine},
    )
    for pname, provider in own.providers.items():
        for oname, op in provider.operators.items():
            if not op.events:
                where = catalog.where("providers", pname, "operators", oname)
                issues.append(attrs.evolve(
                    where, message="an operator needs `events:` rules (frame -> events); without them every answer is empty"
                ))
    issues = _without_cascades(issues)
    for issue in issues:
        print(f"error: {issue}", file=sys.stderr)
    errors = [] if args.no_plugins else plugin_name_errors(own, get_plugins())
    for err in errors:
        print(f"error: {err.message}", file=sys.stderr)
    if issues or errors:
        return 1
    providers = len(own.providers)
    models = len(own.models)
    print(f"ok: {', '.join(args.sources)}: {plural(providers, 'provider')}, {plural(models, 'model')}")
    return 0


def _without_cascades(issues: list[ManifestIssue]) -> list[ManifestIssue]:
    """Drop "unknown provider 'p'" where p itself failed to load: its own error says why."""
    import re

    broken = {
        m[1] for i in issues if (m := re.match(r"providers\.([^.\[]+)", i.path or ""))
    }
    return [
        i for i in issues
        if not ((m := re.match(r"unknown provider '([^']+)'", i.message)) and m[1] in broken)
    ]


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 provider``, ``2 providers``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def _from_defaults(origin: str, base: list[str], builtins: list[str]) -> bool:
    if origin.startswith("builtin:"):
        return not builtins
    return any(origin == b or origin.startswith(b.rstrip(os.sep) + os.sep) for b in base if b != "builtin:*")


def _cmd_schema(args: argparse.Namespace) -> int:
    from .._manifest.schema import manifest_schema

    text = json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


# -- wiring --------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    ap = argparse.ArgumentParser(
        prog="modelwire",
        description="Call language-model providers from manifests.",
    )
    ap.add_argument("--version", action="version", version=f"modelwire {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("frames", help="feed a byte stream through a parser, print frames as JSON lines")
    p.add_argument("file", nargs="?", metavar="FILE", help="input file, or - for stdin (default)")
    p.add_argument("--parser", required=True, help="parser plugin name (sse, jsonchunk, text, ...)")
    p.add_argument("--chunk-size", type=int, default=1024, metavar="N", help="bytes per feed (default 1024)")
    p.set_defaults(handler=_cmd_frames)

    p = sub.add_parser("plugins", help="list installed plugins by hook")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=_cmd_plugins)

    p = sub.add_parser("check", help="validate manifests (and tool manifests, pipelines) and print every error")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="file, directory, URL, git+URL@REF#PATH or builtin:NAME")
    p.add_argument(
        "--tools", nargs="+", action="extend", default=[], metavar="PATH",
        help="tool manifest files or directories (and the pipelines in them) to validate",
    )
    p.add_argument("--resolve-impl", action="store_true", help="with --tools: also import each tool's impl")
    p.add_argument("--no-plugins", action="store_true", help="do not check parser / auth names against installed plugins")
    p.add_argument("--no-config", action="store_true",
                   help="check against the built-ins only, not the config-dir manifests nor MODELWIRE_MANIFESTS")
    p.set_defaults(handler=_cmd_check)

    p = sub.add_parser("schema", help="print the manifest JSON Schema")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=_cmd_schema)

    from .commands import add_commands

    add_commands(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelwire`` console script."""
    for stream in (sys.stdout, sys.stderr):
        # Model output may hold lone surrogates (a JSON "\ud800"): show them escaped, never crash.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ModelError as exc:
        text = str(exc).replace("\n", "\n  ")
        print(f"error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Quietly stop when piped into `head`.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
