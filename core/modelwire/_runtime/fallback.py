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
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import anyio

from .._errors import ModelError
from .._events import Event, Fallback, TextDelta, ToolCallDelta, Usage
from .._manifest.catalog import Catalog
from .._plugins.policies import Attempt, decide
from .planning import CallPlan, plan, resolve_model

__all__ = ["run_chain"]

Messages = list[dict[str, Any]]

#: one INFO record per retry (model, attempt, error kind and code, wait); the CLI prints them
retry_log = logging.getLogger("modelwire.retry")
#: one INFO record per call when it ends; silent unless the host configures logging
call_log = logging.getLogger("modelwire")


def _log_call(fields: dict[str, Any]) -> None:
    if call_log.isEnabledFor(logging.INFO):
        text = " ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items())
        call_log.info("call %s", text, extra={"modelwire": fields})


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
    """Events of the first attempt that succeeds along ``chain``, with markers where it switched.

    Logs one ``call`` record on the ``modelwire`` logger at INFO when it ends:
    model, operator, attempts, tokens, cost, latency and outcome (never a message
    text, header or key).
    """
    started_at = time.monotonic()
    fields: dict[str, Any] = {
        "model": chain[0], "operator": operator, "attempts": 0,
        "input_tokens": None, "output_tokens": None, "cost": None, "latency_ms": None, "outcome": "cancelled",
    }
    try:
        async with aclosing(_run_chain(
            catalog, chain, operator, needs, messages,
            policy_for=policy_for, attempt=attempt, on_fallback=on_fallback, fields=fields,
        )) as events:
            async for ev in events:
                if type(ev) is Usage:
                    fields["input_tokens"], fields["output_tokens"] = ev.input_tokens, ev.output_tokens
                    fields["cost"] = ev.cost
                yield ev
        fields["outcome"] = "ok"
    except ModelError as err:
        fields["outcome"] = f"{err.kind}:{err.code}"
        raise
    finally:
        fields["latency_ms"] = round((time.monotonic() - started_at) * 1000)
        _log_call(fields)


async def _run_chain(
    catalog: Catalog,
    chain: list[str],
    operator: str,
    needs: list[str],
    messages: Messages,
    *,
    policy_for: Callable[[CallPlan], Any],
    attempt: Callable[[CallPlan, Messages], AsyncGenerator[Event, None]],
    on_fallback: Callable[[Fallback], None],
    fields: dict[str, Any],
) -> AsyncGenerator[Event, None]:
    idx = 0
    # The answer a `prefix` switch continues: text carried in as the prefix, then this attempt's.
    partial: list[str] = []
    carried = 0  # len(partial) that came in as the prefix (a retry restarts after it)
    msgs = messages
    while True:
        current = chain[idx]
        plan_ = plan(catalog, current, operator, needs)
        policy = policy_for(plan_)
        number = 0
        fields["model"] = current
        while True:
            number += 1
            fields["attempts"] += 1
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
                        del partial[carried:]
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
                        # Resend with the whole partial answer (prefix included) as the start of the reply.
                        msgs = [*messages, {"role": "assistant", "content": "".join(partial)}]
                        carried = len(partial)
                    else:
                        # From scratch: no earlier prefix either.
                        msgs, carried = messages, 0
                        partial.clear()
                    idx += 1
                    break
                raise
