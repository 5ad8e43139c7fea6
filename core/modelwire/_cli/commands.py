"""``modelwire call``, ``embed`` and ``demo``: thin layers over :class:`Runtime`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
import attrs

from .._errors import ModelError
from .._events import Done, Fallback, Finish, TextDelta, ToolCallDelta, Usage

__all__ = ["add_commands"]

BUILTIN = "builtin:*"


def _catalog(args: argparse.Namespace, model: str) -> Any:
    from .._manifest.catalog import load_manifests
    from .._runtime.planning import resolve_model

    sources = [BUILTIN, *(args.manifest or [])]
    catalog = load_manifests(*sources, overridable=[BUILTIN])
    if args.base_url:
        spec, _ = resolve_model(catalog, model)
        provider = attrs.evolve(catalog.providers[spec.provider], base_url=args.base_url)
        catalog = attrs.evolve(catalog, providers={**catalog.providers, spec.provider: provider})
    return catalog


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def _call(args: argparse.Namespace) -> int:
    from .._runtime.client import Runtime

    kwargs: dict[str, Any] = {}
    if args.system is not None:
        kwargs["system"] = args.system
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        kwargs["temperature"] = args.temperature
    try:
        rt = Runtime(_catalog(args, args.model))
        async with rt:
            calls: dict[int, list[str]] = {}
            async for ev in rt.stream(args.model, args.prompt, **kwargs):
                if args.json:
                    _emit(ev.to_dict())
                elif type(ev) is TextDelta:
                    sys.stdout.write(ev.text)
                    sys.stdout.flush()
                elif type(ev) is ToolCallDelta:
                    slot = calls.setdefault(ev.index, ["", ""])
                    slot[0] += ev.name or ""
                    slot[1] += ev.arguments or ""
                elif type(ev) is Usage:
                    cost = f" cost=${ev.cost:.6f}" if ev.cost is not None else ""
                    print(f"\n[usage] input={ev.input_tokens} output={ev.output_tokens}{cost}", file=sys.stderr)
                elif type(ev) is Finish:
                    print(f"\n[finish] {ev.reason}", file=sys.stderr)
                elif type(ev) is Fallback:
                    print(f"\n[fallback] {ev.from_model} -> {ev.to_model}: {ev.reason}", file=sys.stderr)
                elif type(ev) is Done and not args.json:
                    for _, (name, arguments) in sorted(calls.items()):
                        print(f"\n[tool call] {name}({arguments})")
            if not args.json:
                sys.stdout.write("\n")
    except ModelError as exc:
        if args.json:
            _emit(exc.to_dict())
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def _embed(args: argparse.Namespace) -> int:
    from .._runtime.client import Runtime

    rt = Runtime(_catalog(args, args.model))
    async with rt:
        vectors = await rt.embed(args.model, args.texts)
    for text, vector in zip(args.texts, vectors, strict=True):
        _emit({"text": text, "vector": vector})
    return 0


def add_commands(sub: Any) -> None:
    """Attach the runtime commands to the CLI's subparsers."""
    p = sub.add_parser("call", help="stream one prompt through a model")
    p.add_argument("model", metavar="MODEL", help="model name, or provider/model")
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--manifest", "-m", action="append", metavar="F", help="extra manifest source (repeatable)")
    p.add_argument("--base-url", metavar="URL", help="override the provider's base URL")
    p.add_argument("--system", metavar="S", help="system prompt")
    p.add_argument("--max-tokens", type=int, metavar="N")
    p.add_argument("--temperature", type=float, metavar="T")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.set_defaults(handler=lambda a: anyio.run(_call, a))

    p = sub.add_parser("embed", help="embed texts, print one JSON vector per line")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--manifest", "-m", action="append", metavar="F")
    p.add_argument("--base-url", metavar="URL")
    p.set_defaults(handler=lambda a: anyio.run(_embed, a))

    from .scaffold import add_plugin_command

    add_plugin_command(sub)

    from .run import add_run_command

    add_run_command(sub)

    from .serve import add_serve_command

    add_serve_command(sub)

    try:
        from .demo import add_demo
    except ImportError:  # pragma: no cover - demo ships with the testing server
        return
    add_demo(sub)
