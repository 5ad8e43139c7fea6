"""The fallback loop: on a typed error, the model's policy says retry, next model, or raise.

The policy (a plugin) only decides; this loop carries the decision out over
the chain from :func:`~modelwire._runtime.planning.chain_for`. Retries before
any text are invisible. After text reached the caller, a retry or a switch
is announced with a :class:`Fallback` event first, so text from two attempts
is never spliced without a marker; with ``prefix`` and a target that has the
``prefill`` capability, the next model continues the partial answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import anyio

from .._errors import ModelError
from .._events import Event, Fallback, TextDelta, ToolCallDelta
from .._manifest.catalog import Catalog
from .._plugins.policies import Attempt, decide
from .planning import CallPlan, plan, resolve_model

__all__ = ["run_chain"]

Messages = list[dict[str, Any]]

#: one INFO record per retry (model, attempt, error kind and code, wait); the CLI prints them
retry_log = logging.getLogger("modelwire.retry")


async def run_chain(
    catalog: Catalog,
    chain: list[str],
    operator: str,
    needs: list[str],
    messages: Messages,
    *,
    policy_for: Callable[[CallPlan], Any],
    attempt: Callable[[CallPlan, Messages], AsyncGenerator[Event, None]],
    on_fallback: Callable[[Fallback], None],
) -> AsyncGenerator[Event, None]:
    """Events of the first attempt that succeeds along ``chain``, with markers where it switched."""
    idx = 0
    partial: list[str] = []
    msgs = messages
    while True:
        current = chain[idx]
        plan_ = plan(catalog, current, operator, needs)
        policy = policy_for(plan_)
        number = 0
        while True:
            number += 1
            started = False
            try:
                async with aclosing(attempt(plan_, msgs)) as events:
                    async for ev in events:
                        kind = type(ev)
                        if kind is TextDelta:
                            started = True
                            partial.append(ev.text)  # type: ignore[attr-defined]
                        elif kind is ToolCallDelta:
                            started = True
                        yield ev
                return
            except ModelError as err:
                nxt = chain[idx + 1] if idx + 1 < len(chain) else None
                decision = decide(policy, err, Attempt(current, number, started, plan_.spec.retry, nxt))
                if decision.action == "retry":
                    if started:  # the caller saw text: say it restarts
                        marker = Fallback(current, current, f"retry after {err.kind} ({err.code})")
                        on_fallback(marker)
                        yield marker
                        partial.clear()
                    retry_log.info(
                        "retry: %s attempt %d failed with %s (%s); next try in %.1f s",
                        current, number, err.kind, err.code, decision.delay,
                    )
                    await anyio.sleep(decision.delay)
                    continue
                if decision.action == "next" and nxt is not None:
                    target = resolve_model(catalog, nxt)[0]
                    continued = bool(decision.prefix and partial and "prefill" in target.capabilities)
                    marker = Fallback(current, nxt, f"{err.kind} ({err.code})", continued)
                    on_fallback(marker)
                    yield marker
                    if continued:
                        # Resend with the partial answer as the start of the reply.
                        msgs = [*msgs, {"role": "assistant", "content": "".join(partial)}]
                    else:
                        partial.clear()
                    idx += 1
                    break
                raise
