"""Planner: model name -> provider -> operator endpoint, with capability checks,
and the unified request that manifest expressions map to a provider body.

Pure: no I/O. Everything here fails before any HTTP is sent.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs

from .._errors import InvalidRequestError, NotFoundError
from .._manifest.loader import Catalog
from .._manifest.model import Model, Operator, Provider

__all__ = ["CallPlan", "build_request", "drop_nulls", "normalize_messages", "normalize_tools", "plan"]


@attrs.frozen
class CallPlan:
    """Where one call goes."""

    model: str
    model_id: str
    spec: Model
    provider_name: str
    provider: Provider
    operator_name: str
    operator: Operator
    url: str

    def context(self) -> dict[str, Any]:
        """The model / provider / endpoint every error of this call carries."""
        return {"model": self.model, "provider": self.provider_name, "endpoint": self.url}


def resolve_model(catalog: Catalog, model: str) -> tuple[Model, str]:
    """A declared model, or ``provider/model`` of a known provider."""
    spec = catalog.models.get(model)
    if spec is not None:
        return spec, spec.id or model
    provider, sep, model_id = model.partition("/")
    if sep and provider in catalog.providers and model_id:
        prov = catalog.providers[provider]
        return Model(provider=provider, id=model_id, capabilities=list(prov.default_capabilities)), model_id
    known = sorted(catalog.models)
    msg = f"unknown model {model!r}"
    close = difflib.get_close_matches(model, known, n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    if sep and provider not in catalog.providers:
        msg += f"; unknown provider {provider!r}, known: {', '.join(sorted(catalog.providers)) or 'none'}"
    else:
        msg += f"; declared models: {', '.join(known) or 'none'}"
        msg += "; any model of a known provider works as provider/model"
    raise NotFoundError(msg, code="MODEL_NOT_FOUND", model=model)


def plan(catalog: Catalog, model: str, operator: str, needs: Iterable[str] = ()) -> CallPlan:
    """Resolve a call and check capabilities, before any HTTP."""
    spec, model_id = resolve_model(catalog, model)
    provider = catalog.providers[spec.provider]
    op = provider.operators.get(operator)
    if op is None:
        raise NotFoundError(
            f"provider {spec.provider!r} has no {operator!r} operator; it has: "
            f"{', '.join(sorted(provider.operators)) or 'none'}",
            code="OPERATOR_NOT_FOUND", model=model, provider=spec.provider,
        )
    missing = [n for n in needs if n not in spec.capabilities]
    if missing:
        raise InvalidRequestError(
            f"model {model!r} lacks capability {', '.join(missing)} "
            f"(it has: {', '.join(spec.capabilities) or 'none'})",
            code="CAPABILITY_MISSING", model=model, provider=spec.provider,
        )
    path = op.path.replace("{model}", quote(model_id, safe=""))
    url = provider.base_url.rstrip("/") + "/" + path.lstrip("/")
    return CallPlan(model, model_id, spec, spec.provider, provider, operator, op, url)


def drop_nulls(value: Any) -> Any:
    """Remove null members of objects, recursively (lists keep their shape)."""
    if type(value) is dict:
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [drop_nulls(v) for v in value]
    return value


def normalize_messages(
    prompt: str | None, messages: Sequence[Mapping[str, Any]] | None, system: str | None
) -> list[dict[str, Any]]:
    """The unified message list: ``{role, content, tool_calls?, tool_call_id?}``.

    Roles: system, user, assistant, tool. Content: text or a list of parts
    (``{type: text, text}``, ``{type: image_url, url}``).
    """
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": system})
    for i, msg in enumerate(messages or ()):
        if not isinstance(msg, Mapping):
            raise InvalidRequestError(f"messages[{i}] must be a mapping, got {type(msg).__name__}", code="BAD_MESSAGE")
        role = msg.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise InvalidRequestError(
                f"messages[{i}].role must be system, user, assistant or tool; got {role!r}", code="BAD_MESSAGE"
            )
        item = dict(msg)
        calls = item.get("tool_calls")
        if calls:
            item["tool_calls"] = [_flat_call(c) for c in calls]
        out.append(item)
    if prompt is not None:
        out.append({"role": "user", "content": prompt})
    if not out:
        raise InvalidRequestError("nothing to send: give a prompt or messages", code="BAD_MESSAGE")
    return out


def _flat_call(call: Any) -> dict[str, Any]:
    if hasattr(call, "arguments") and hasattr(call, "name"):  # a ToolCall
        return {"id": call.id, "name": call.name, "arguments": call.arguments}
    call = dict(call)
    fn = call.get("function")
    if isinstance(fn, Mapping):  # the {type: function, function: {...}} shape too
        return {"id": call.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")}
    return {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("arguments")}


def normalize_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Unified tools: ``{name, description, parameters}`` (JSON Schema)."""
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        t = dict(tool)
        if isinstance(t.get("function"), Mapping):
            t = dict(t["function"])
        if not isinstance(t.get("name"), str):
            raise InvalidRequestError(f"tools[{i}] needs a name", code="BAD_TOOL")
        out.append(
            {
                "name": t["name"],
                "description": t.get("description"),
                "parameters": t.get("parameters") or t.get("input_schema") or {"type": "object", "properties": {}},
            }
        )
    return out


def build_request(
    plan_: CallPlan,
    *,
    messages: list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] | str | None = None,
    input: Sequence[str] | None = None,
    stream: bool = True,
) -> dict[str, Any]:
    """The unified request, the data every ``request:`` expression reads."""
    limit = plan_.spec.limits.max_tokens
    if max_tokens is not None and limit is not None and max_tokens > limit:
        from .._errors import LimitExceededError

        raise LimitExceededError(
            f"max_tokens {max_tokens} exceeds the model's limit of {limit}",
            code="MAX_TOKENS_EXCEEDED", **plan_.context(),
        )
    return {
        "model": plan_.model_id,
        "messages": messages,
        "tools": tools,
        "tool_choice": tool_choice,
        "max_tokens": max_tokens,
        "max_tokens_limit": limit,
        "temperature": temperature,
        "stop": [stop] if isinstance(stop, str) else list(stop) if stop else None,
        "input": list(input) if input is not None else None,
        "stream": stream,
    }
