"""``modelwire call``, ``embed`` and ``demo``: thin layers over :class:`Runtime`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
import attrs

from .._errors import InvalidRequestError, ModelError
from .._events import Done, Fallback, Finish, TextDelta, ToolCallDelta, Usage

__all__ = ["add_commands"]

BUILTIN = "builtin:*"


def add_source_options(p: argparse.ArgumentParser) -> None:
    """``-m`` and ``--no-config``: the manifest sources every runtime command loads."""
    p.add_argument(
        "--manifest", "-m", action="append", metavar="F",
        help="extra manifest source (repeatable); may replace a built-in or discovered provider or model",
    )
    p.add_argument(
        "--no-config", action="store_true",
        help="do not load the config-dir manifests nor MODELWIRE_MANIFESTS (see `modelwire config path`)",
    )


def load_catalog(args: argparse.Namespace) -> Any:
    """``builtin:*``, discovered manifests, then ``-m`` sources: what ``call`` and ``check`` see."""
    from .._manifest.catalog import load_manifests
    from .._manifest.config import default_sources

    sources, overridable = default_sources(
        *(getattr(args, "manifest", None) or []), discover=not getattr(args, "no_config", False)
    )
    return load_manifests(*sources, overridable=overridable)


def _catalog(args: argparse.Namespace, model: str) -> Any:
    from .._runtime.planning import resolve_model

    catalog = load_catalog(args)
    spec, _ = resolve_model(catalog, model)
    providers = dict(catalog.providers)
    provider = providers[spec.provider]
    if getattr(args, "base_url", None):
        provider = attrs.evolve(provider, base_url=args.base_url)
    if getattr(args, "timeout", None) is not None:
        t = args.timeout
        provider = attrs.evolve(provider, timeout=attrs.evolve(
            provider.timeout, total=t, read=min(provider.timeout.read, t),
            connect=min(provider.timeout.connect, t), write=min(provider.timeout.write, t),
        ))
    providers[spec.provider] = provider
    models = dict(catalog.models)
    retries = 0 if getattr(args, "no_retry", False) else getattr(args, "retries", None)
    if retries is not None:
        # Every model of the chain: `--retries 0` means one try on each.
        for name, m in list(models.items()):
            models[name] = attrs.evolve(m, retry=attrs.evolve(m.retry, attempts=retries + 1))
        if model not in models:
            models[model] = attrs.evolve(spec, retry=attrs.evolve(spec.retry, attempts=retries + 1))
    return attrs.evolve(catalog, providers=providers, models=models)


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRequestError(f"{what}: not JSON: {exc}", code="BAD_ARGUMENT") from None


def _schema(value: str) -> Any:
    """``--schema``: inline JSON (starts with ``{``) or the path of a JSON file."""
    if value.lstrip().startswith("{"):
        return _json_arg(value, "--schema")
    try:
        with open(value, encoding="utf-8") as fh:
            text = fh.read(1 << 20)
    except OSError as exc:
        raise InvalidRequestError(f"--schema: cannot read {value}: {exc.strerror}", code="BAD_ARGUMENT") from None
    return _json_arg(text, f"--schema {value}")


def _inputs(pairs: list[str]) -> dict[str, Any]:
    """``--input key=text`` (a string) and ``--input key:=JSON`` (any JSON value), as httpie reads them."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key or key == ":":
            raise InvalidRequestError(
                f"--input {pair!r}: expected KEY=TEXT or KEY:=JSON", code="BAD_ARGUMENT"
            )
        if key.endswith(":"):
            key = key[:-1]
            out[key] = _json_arg(value, f"--input {key}")
        else:
            out[key] = value
    return out


def _err(command: str, message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


def resolve_call(args: argparse.Namespace) -> tuple[str | None, str | None, str | None]:
    """``(model, prompt, error)`` from ``call [MODEL] [PROMPT]``, stdin and the default model.

    One argument that names a model (declared, or ``provider/model``) is the
    model and the prompt comes from stdin; otherwise it is the prompt, for the
    default model. A missing PROMPT, or ``-``, reads stdin.
    """
    from .._manifest.config import default_model

    model, prompt = args.model, args.prompt
    if model is not None and prompt is None and not _names_model(args, model):
        model, prompt = None, model
    if model is None:
        model = default_model()
        if model is None:
            return None, None, (
                "no model given: name one (modelwire call MODEL PROMPT), set MODELWIRE_DEFAULT_MODEL,"
                " or write it to default_model.txt in the config directory (modelwire config path)"
            )
    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            return model, None, "no prompt given: pass PROMPT, or pipe it on stdin (echo hi | modelwire call)"
        prompt = _read_stdin()
        if not prompt.strip():
            return model, None, "no prompt given: stdin was empty"
    return model, prompt, None


def _names_model(args: argparse.Namespace, name: str) -> bool:
    from .._errors import NotFoundError
    from .._runtime.planning import resolve_model

    try:
        resolve_model(load_catalog(args), name)
    except NotFoundError:
        return False
    return True


def _attachments(paths: list[str]) -> list[dict[str, Any]]:
    """``-a FILE|URL`` as OpenAI-style ``image_url`` parts (a file becomes a data: URL)."""
    import base64
    import mimetypes

    parts: list[dict[str, Any]] = []
    for item in paths:
        if item.startswith(("http://", "https://", "data:")):
            url = item
        else:
            try:
                with open(item, "rb") as fh:
                    data = fh.read(20 * 1024 * 1024 + 1)
            except OSError as exc:
                raise InvalidRequestError(
                    f"--attachment {item}: cannot read: {exc.strerror}", code="ATTACHMENT_UNREADABLE"
                ) from None
            if len(data) > 20 * 1024 * 1024:
                raise InvalidRequestError(
                    f"--attachment {item}: larger than 20 MiB", code="ATTACHMENT_TOO_LARGE"
                )
            mime = mimetypes.guess_type(item)[0] or "application/octet-stream"
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        parts.append({"type": "image_url", "url": url})
    return parts


def _cost(value: Any, currency: str | None = None) -> str:
    if value is None:
        return "n/a"
    return f"${value}" if currency in (None, "USD") else f"{value} {currency}"


async def _call_operator(args: argparse.Namespace) -> int:
    from .._runtime.client import Runtime

    if args.prompt is not None:
        raise InvalidRequestError(
            "--operator takes its inputs from --input KEY=TEXT / KEY:=JSON, not a PROMPT", code="BAD_ARGUMENT"
        )
    if args.model is None:
        raise InvalidRequestError("--operator needs a MODEL", code="BAD_ARGUMENT")
    inputs = _inputs(args.input or [])
    rt = Runtime(_catalog(args, args.model))
    async with rt:
        if args.json:
            async for ev in rt.call_events(args.model, args.operator, **inputs):
                _emit(ev.to_dict())
        else:
            _emit((await rt.call(args.model, args.operator, **inputs)).to_dict())
    return 0


async def _call(args: argparse.Namespace) -> int:
    from .._runtime.client import Runtime
    from .._runtime.request import normalize_response_format
    from .._runtime.structured import parse_output
    from .progress import Waiting, retry_lines

    if args.operator is not None:
        return await _call_operator(args)
    if args.input:
        raise InvalidRequestError("--input goes with --operator", code="BAD_ARGUMENT")
    model, prompt, problem = resolve_call(args)
    if problem is not None:
        _err("call", problem)
        return 1
    assert model is not None and prompt is not None
    kwargs: dict[str, Any] = {}
    if args.schema is not None:
        kwargs["response_format"] = _schema(args.schema)
    if args.system is not None:
        kwargs["system"] = args.system
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        kwargs["temperature"] = args.temperature
    usage_to_stderr = args.usage
    waiting = Waiting(sys.stderr, enabled=not args.json and not args.no_stream)
    try:
        rt = Runtime(_catalog(args, model))
        request: Any = prompt
        if args.attachment:
            kwargs["messages"] = [{"role": "user", "content": [
                {"type": "text", "text": prompt}, *_attachments(args.attachment),
            ]}]
            request = None
        with retry_lines(sys.stderr):
            async with rt:
                calls: dict[int, list[str]] = {}
                buffered: list[str] = []
                text: list[str] = []  # the answer so far, for --schema
                waiting.start()
                async for ev in rt.stream(model, request, **kwargs):
                    waiting.stop()
                    if type(ev) is TextDelta:
                        text.append(ev.text)
                    elif type(ev) is Fallback and not ev.continued:
                        text.clear()
                    if args.json:
                        _emit(ev.to_dict())
                    elif type(ev) is TextDelta:
                        if args.no_stream:
                            buffered.append(ev.text)
                        else:
                            sys.stdout.write(ev.text)
                            sys.stdout.flush()
                    elif type(ev) is ToolCallDelta:
                        slot = calls.setdefault(ev.index, ["", ""])
                        slot[0] += ev.name or ""
                        slot[1] += ev.arguments or ""
                    elif type(ev) is Usage and usage_to_stderr:
                        print(
                            f"usage: {ev.input_tokens} in, {ev.output_tokens} out, cost {_cost(ev.cost, ev.currency)}",
                            file=sys.stderr,
                        )
                    elif type(ev) is Finish and usage_to_stderr:
                        print(f"finish: {ev.reason}", file=sys.stderr)
                    elif type(ev) is Fallback:
                        print(f"fallback: {ev.from_model} -> {ev.to_model}: {ev.reason}", file=sys.stderr)
                        if not ev.continued:
                            buffered.clear()
                    elif type(ev) is Done and not args.json:
                        sys.stdout.write("".join(buffered))
                        for _, (name, arguments) in sorted(calls.items()):
                            sys.stdout.write(f"\ntool call: {name}({arguments})")
                        sys.stdout.write("\n")
                        sys.stdout.flush()
                if args.schema is not None:
                    unified = normalize_response_format(kwargs["response_format"])
                    schema = unified["schema"] if unified is not None else None
                    parsed = parse_output("".join(text), schema, {"model": model})
                    if args.json:
                        _emit({"type": "parsed", "value": parsed})
    except ModelError as exc:
        waiting.stop()
        if args.json:
            _emit(exc.to_dict())
        else:
            message = str(exc).replace("\n", "\n  ")
            print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        waiting.stop()
    return 0


async def _embed(args: argparse.Namespace) -> int:
    from .._runtime.client import Runtime

    rt = Runtime(_catalog(args, args.model))
    async with rt:
        vectors = await rt.embed(args.model, args.texts)
    for text, vector in zip(args.texts, vectors, strict=True):
        _emit({"text": text, "vector": vector})
    return 0


# -- models / config -------------------------------------------------------------


def model_rows(catalog: Any, provider: str | None = None) -> list[dict[str, Any]]:
    """One row per declared model: provider, id, capabilities, limits, prices, fallback."""
    rows = []
    for name in sorted(catalog.models):
        m = catalog.models[name]
        if provider is not None and m.provider != provider:
            continue
        limits = {k: v for k, v in attrs.asdict(m.limits).items() if v is not None and k != "mode"}
        pricing = None
        if m.pricing is not None:
            pricing = {k: v for k, v in attrs.asdict(m.pricing).items() if v is not None}
        rows.append({
            "name": name,
            "provider": m.provider,
            "id": m.id or name,
            "capabilities": list(m.capabilities),
            "limits": limits,
            "pricing": pricing,
            "fallback": list(m.fallback),
            "source": catalog.origins.get(("models", name)),
        })
    return rows


def _k(n: Any) -> str:
    return "-" if n is None else str(n)


def _cmd_models(args: argparse.Namespace) -> int:
    catalog = load_catalog(args)
    if args.provider is not None and args.provider not in catalog.providers:
        known = ", ".join(sorted(catalog.providers)) or "none"
        _err("models", f"unknown provider {args.provider!r}; known: {known}")
        return 1
    rows = model_rows(catalog, args.provider)
    if args.json:
        _emit({"models": rows})
        return 0
    header = ("model", "provider", "capabilities", "context", "max out", "$/Mtok in", "$/Mtok out")
    table = [header]
    for r in rows:
        price = r["pricing"] or {}
        table.append((
            r["name"], r["provider"], ",".join(r["capabilities"]),
            _k(r["limits"].get("context_window")), _k(r["limits"].get("max_tokens")),
            "-" if not price else f"{price['input_per_mtok']:g}",
            "-" if not price else f"{price['output_per_mtok']:g}",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_config_path(args: argparse.Namespace) -> int:
    from .._manifest.config import config_dir

    print(config_dir() / "manifests")
    return 0


def _cmd_config_sources(args: argparse.Namespace) -> int:
    from .._manifest.config import default_sources

    sources, _ = default_sources(discover=not args.no_config)
    for source in sources:
        print(source)
    return 0


def add_commands(sub: Any) -> None:
    """Attach the runtime commands to the CLI's subparsers."""
    p = sub.add_parser("call", help="send one prompt to a model and stream the answer, or call any operator")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model name, or provider/model (default: MODELWIRE_DEFAULT_MODEL)")
    p.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt; missing or - reads stdin (not with --operator)")
    add_source_options(p)
    p.add_argument("--base-url", metavar="URL", help="override the provider's base URL")
    p.add_argument("--system", "-s", metavar="TEXT", help="system prompt")
    p.add_argument("--max-tokens", type=int, metavar="N", help="largest answer, in tokens")
    p.add_argument("--temperature", "-t", type=float, metavar="T", help="sampling temperature")
    p.add_argument("--attachment", "-a", action="append", metavar="FILE",
                   help="an image file or URL for a vision model (repeatable; a file is sent as a data: URL)")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds for the whole call, stream included")
    p.add_argument("--retries", type=int, metavar="N", help="retries on each model (default: the manifest's)")
    p.add_argument("--no-retry", action="store_true", help="same as --retries 0")
    p.add_argument("--no-stream", action="store_true", help="print the answer once it is complete")
    p.add_argument("--usage", "-u", action="store_true", help="print finish reason, usage and cost to stderr")
    p.add_argument("--schema", metavar="FILE|JSON", help="structured output: a JSON Schema the answer must match")
    p.add_argument("--operator", metavar="NAME", help="call this operator (rerank, ...) and print its result as JSON")
    p.add_argument("--input", action="append", metavar="KEY=TEXT|KEY:=JSON", help="an input of --operator (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.set_defaults(handler=lambda a: anyio.run(_call, a))

    p = sub.add_parser("embed", help="embed texts, print one JSON vector per line")
    p.add_argument("model", metavar="MODEL", help="embedding model name, or provider/model")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to embed, one vector each")
    add_source_options(p)
    p.add_argument("--base-url", metavar="URL", help="override the provider's base URL")
    p.set_defaults(handler=lambda a: anyio.run(_embed, a))

    p = sub.add_parser("models", help="list every model: provider, capabilities, limits, prices")
    p.add_argument("--provider", "-p", metavar="P", help="only the models of provider P")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_source_options(p)
    p.set_defaults(handler=_cmd_models)

    p = sub.add_parser("config", help="where modelwire looks for your manifests")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND")
    csub.required = True
    c = csub.add_parser("path", help="print the directory whose *.yaml manifests load automatically",
                        description="Print the directory whose *.yaml manifests load automatically.")
    c.set_defaults(handler=_cmd_config_path)
    c = csub.add_parser("sources", help="print every manifest source loaded by default, in order",
                        description="Print every manifest source loaded by default, in order (later ones win).")
    c.add_argument("--no-config", action="store_true", help="as call --no-config: the built-ins only")
    c.set_defaults(handler=_cmd_config_sources)

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
