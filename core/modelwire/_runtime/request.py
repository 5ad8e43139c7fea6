"""Request building: the unified request, then the provider's HTTP request from manifest expressions.

Two steps, both pure: :func:`build_request` makes the unified request (the
data every ``request:`` expression reads), and :func:`build_outgoing` maps it
to the provider's method, URL, headers, query and JSON body through the
operator's compiled expressions, then lets the auth injector plugin add
credentials. Whatever the injector added is recorded as a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import AuthError, InvalidRequestError, LimitExceededError, ModelError
from .._manifest.expr import Expr, compile_expr
from .._manifest.model import Operator
from .._plugins.manager import Plugins
from .._plugins.request import OutgoingRequest
from .._version import __version__
from .mapping import ErrorMapper, Rule, compile_rules
from .planning import CallPlan
from .structured import check_schema

__all__ = [
    "CompiledOperator",
    "build_outgoing",
    "build_request",
    "drop_nulls",
    "normalize_messages",
    "normalize_response_format",
    "normalize_tools",
    "with_context",
]


#: sent with every request unless a manifest's headers say otherwise
USER_AGENT = f"modelwire/{__version__}"

#: what h11 accepts in a header value: visible Latin-1 and inner spaces or tabs, no CR, LF or NUL
_HEADER_VALUE = re.compile(r"[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?|")


class CompiledOperator:
    """An operator's expressions and rules, compiled once per runtime."""

    __slots__ = ("errors", "headers", "query", "request", "rules")

    def __init__(self, op: Operator) -> None:
        self.request: Expr | None = compile_expr(op.request) if op.request else None
        self.headers: Expr | None = compile_expr(op.request_headers) if op.request_headers else None
        self.query: Expr | None = compile_expr(op.request_query) if op.request_query else None
        self.rules: list[Rule] = compile_rules(op)
        self.errors = ErrorMapper(op.errors)


def with_context(exc: ModelError, context: Mapping[str, Any]) -> ModelError:
    """Fill the model / provider / endpoint an error does not name yet."""
    for key, value in context.items():
        if getattr(exc, key, None) is None:
            setattr(exc, key, value)
    return exc


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
        flat = {"id": call.id, "name": call.name, "arguments": call.arguments}
        signature = getattr(call, "signature", None)
    else:
        call = dict(call)
        fn = call.get("function")
        src = fn if isinstance(fn, Mapping) else call  # the {type: function, function: {...}} shape too
        flat = {"id": call.get("id"), "name": src.get("name"), "arguments": src.get("arguments")}
        signature = call.get("signature")
    if isinstance(signature, str):  # the provider's token for the call, sent back unchanged
        flat["signature"] = signature
    return flat


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


def normalize_response_format(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The unified structured-output request: ``{name, schema, strict}``.

    Takes a JSON Schema, or ``{name?, schema, strict?}`` around one (a schema
    never has a ``schema`` keyword, so the two cannot be confused), or
    OpenAI's ``{type: json_schema, json_schema: {...}}``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"response_format must be a JSON Schema object, got {type(value).__name__}",
            code="BAD_RESPONSE_FORMAT",
        )
    if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), Mapping):
        value = value["json_schema"]
    if isinstance(value.get("schema"), Mapping):
        schema, name, strict = dict(value["schema"]), value.get("name"), value.get("strict")
    elif "schema" in value:
        raise InvalidRequestError(
            f"response_format.schema must be a JSON Schema object, got {type(value['schema']).__name__}",
            code="BAD_RESPONSE_FORMAT",
        )
    else:
        schema, name, strict = dict(value), None, None
    if name is not None and not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)):
        raise InvalidRequestError(
            f"response_format.name must be 1-64 letters, digits, _ or -, got {name!r}",
            code="BAD_RESPONSE_FORMAT",
        )
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequestError(
            f"response_format.strict must be true or false, got {strict!r}", code="BAD_RESPONSE_FORMAT"
        )
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequestError(
            f"response_format: the schema cannot be sent as JSON: {exc}", code="BAD_RESPONSE_FORMAT"
        ) from None
    check_schema(schema)
    return {"name": name or "response", "schema": schema, "strict": strict}


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
    response_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The unified request, the data every ``request:`` expression reads."""
    limit = plan_.spec.limits.max_tokens
    if max_tokens is not None and limit is not None and max_tokens > limit:
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
        "response_format": response_format,
    }


def build_outgoing(
    plan_: CallPlan,
    compiled: CompiledOperator,
    request: dict[str, Any],
    extra: Mapping[str, Any] | None,
    plugins: Plugins,
    env: Mapping[str, str] | None,
) -> OutgoingRequest:
    """The provider's HTTP request for one attempt, with credentials from the auth plugin."""
    op, provider = plan_.operator, plan_.provider
    context = plan_.context()
    body: Any = None
    if compiled.request is not None:
        try:
            body = drop_nulls(compiled.request(request))
        except ModelError as exc:
            with_context(exc, context)
            raise
        except Exception as exc:  # a JMESPath type error in the manifest mapping
            raise InvalidRequestError(
                f"request mapping failed: {exc}", code="REQUEST_MAPPING_FAILED", **context
            ) from exc
        passthrough = {**plan_.spec.params, **(extra or {})}
        if passthrough:
            if not isinstance(body, dict):
                raise InvalidRequestError(
                    "extra parameters need a JSON object body", code="BAD_EXTRA", **context
                )
            body = {**body, **passthrough}
    headers = {"User-Agent": USER_AGENT, **provider.headers, **op.headers}
    params = dict(op.query)
    for expr, target, what in ((compiled.headers, headers, "headers"), (compiled.query, params, "query")):
        if expr is None:
            continue
        try:
            mapped = expr(request)
        except Exception as exc:
            raise InvalidRequestError(
                f"request_{what} mapping failed: {exc}", code="REQUEST_MAPPING_FAILED", **context
            ) from exc
        if mapped is not None and not isinstance(mapped, dict):
            raise InvalidRequestError(
                f"request_{what} must give an object, got {type(mapped).__name__}",
                code="REQUEST_MAPPING_FAILED", **context,
            )
        for key, value in (mapped or {}).items():
            if value is not None:
                target[str(key)] = value if isinstance(value, str) else json.dumps(value)
    out = OutgoingRequest(
        method=op.method,
        url=plan_.url,
        headers=headers,
        params=params,
        json=body,
        provider=plan_.provider_name,
        model=plan_.model,
        env=env,
    )
    injector = plugins.get_auth_injector(provider.auth.type)
    headers_before, params_before = dict(out.headers), dict(out.params)
    injector(out, provider.auth)
    # Whatever the injector added is a secret: scrub it from every error text.
    added_headers = {k: v for k, v in out.headers.items() if headers_before.get(k) != v}
    added_params = {k: v for k, v in out.params.items() if params_before.get(k) != v}
    out.secret_params.extend(added_params)
    for value in [*added_headers.values(), *added_params.values()]:
        out.secrets.extend(p for p in (value, value.rpartition(" ")[2], value.strip()) if len(p) >= 4)
    for key, value in added_headers.items():
        if not _HEADER_VALUE.fullmatch(value):
            # h11 would refuse it with the value in its message: refuse first, naming the variable only.
            where = f"the variable {provider.auth.env}" if provider.auth.env else "auth.value"
            raise AuthError(
                f"the key from {where} cannot be sent in the {key!r} header: it holds a control "
                "character or a non-Latin-1 character (a trailing newline from `echo > file` is common)",
                code="AUTH_KEY_INVALID", variable=provider.auth.env, **context,
            )
    return out
