"""``modelwire demo``: one prompt through four wire formats, offline.

Starts a :mod:`modelwire.testing` replay server on loopback, points the
bundled manifests at it (base URLs and keys through the runtime's ``env``,
nothing global is touched) and streams one prompt per provider, showing
text, a tool call, usage and cost as the events arrive.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio

from .._events import Done, Finish, TextDelta, ToolCallDelta, Usage

__all__ = ["add_demo", "run_demo"]

PROVIDERS = [
    # (manifest, model, base-URL variable, key variable, format)
    ("openai", "gpt-4.1-mini", "OPENAI_BASE_URL", "OPENAI_API_KEY", "openai"),
    ("anthropic", "claude-haiku-4-5", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "anthropic"),
    ("gemini", "gemini-2.5-flash", "GEMINI_BASE_URL", "GEMINI_API_KEY", "gemini"),
    ("ollama", "llama3.2", "OLLAMA_BASE_URL", None, "ollama"),
]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PROMPT = "What's the weather in Paris? Answer briefly."
ANSWER = "Let me check the weather in Paris for you — un instant ☀️."


async def run_demo(out: Any = None, as_json: bool = False, seed: int = 7) -> int:
    """Run the demo, writing to ``out`` (stdout by default); returns an exit status."""
    from .._runtime.client import Runtime
    from ..testing import ReplayServer, Script, ToolCall

    out = out or sys.stdout
    with ReplayServer(seed=seed) as srv:
        env = dict(os.environ)
        for _manifest, _model, base_var, key_var, fmt in PROVIDERS:
            env[base_var] = srv.url_for(fmt)
            if key_var:
                env[key_var] = "demo-key"
        sources = [f"builtin:{p[0]}" for p in PROVIDERS]
        async with Runtime.from_manifests(*sources, env=env) as rt:
            for manifest, model, _b, _k, fmt in PROVIDERS:
                srv.push(
                    Script(
                        text=ANSWER,
                        tool_calls=(ToolCall(id=f"call_{fmt}_1", name="get_weather", arguments='{"city": "Paris"}'),),
                        usage=(42, 17),
                        finish="tool_calls",
                    )
                )
                if not as_json:
                    out.write(f"\n== {manifest} · {model} ==\n")
                calls: dict[int, list[str]] = {}
                async for ev in rt.stream(model, PROMPT, tools=TOOLS):
                    if as_json:
                        out.write(json.dumps({"provider": manifest, **ev.to_dict()}, ensure_ascii=False) + "\n")
                    elif type(ev) is TextDelta:
                        out.write(ev.text)
                    elif type(ev) is ToolCallDelta:
                        slot = calls.setdefault(ev.index, ["", ""])
                        slot[0] += ev.name or ""
                        slot[1] += ev.arguments or ""
                    elif type(ev) is Finish:
                        for name, arguments in calls.values():
                            out.write(f"\n  tool call: {name}({arguments})")
                        out.write(f"\n  finish:    {ev.reason}")
                    elif type(ev) is Usage:
                        cost = "n/a" if ev.cost is None else f"${ev.cost:.6f}"
                        out.write(f"\n  usage:     {ev.input_tokens} in, {ev.output_tokens} out, cost {cost}")
                    elif type(ev) is Done:
                        out.write("\n  done\n")
                    if hasattr(out, "flush"):
                        out.flush()
    return 0


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="offline demo: one prompt through four providers on loopback")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.add_argument("--seed", type=int, default=7, help="seed for the replay server's chunking")

    def handler(args: argparse.Namespace) -> int:
        from .._plugins.manager import get_plugins
        from .hints import PARSER_HINT

        if not any(r["kind"] == "parser" for r in get_plugins().describe()):
            print(f"error: {PARSER_HINT}", file=sys.stderr)
            return 1
        return anyio.run(run_demo, None, args.json, args.seed)

    p.set_defaults(handler=handler)
