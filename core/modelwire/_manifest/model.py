"""The manifest language, as attrs classes.

A manifest is data: providers (base URL, auth, operators with their request
mapping, parser and event rules) and models (provider, capabilities, limits,
pricing, fallback chain). Loading and validation live in ``_loader``; the
JSON Schema for editors is generated from these classes by ``_schema``.
Field docs are the ``metadata={"doc": ...}`` strings, so the schema and the
reference page say the same thing.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = [
    "Auth",
    "Budget",
    "Detection",
    "ErrorRaise",
    "ErrorRule",
    "EventRule",
    "Limiter",
    "Limits",
    "Manifest",
    "Model",
    "Operator",
    "Pricing",
    "Provider",
    "Recall",
    "Remember",
    "Retry",
    "Timeout",
    "UrlRule",
    "doc",
]

SUPPORTED_VERSIONS = (1,)


def doc(text: str) -> dict[str, str]:
    """attrs field metadata carrying a field's doc string (``metadata=doc("...")``).

    The JSON Schema generator and the reference docs read it; the tool,
    pipeline and agent config classes use it too.
    """
    return {"doc": text}


@attrs.frozen
class Auth:
    """How credentials are added to each request (an auth-injector plugin)."""

    type: str = attrs.field(default="none", metadata=doc("auth injector name: none, bearer, header, query or a plugin's"))
    env: str | None = attrs.field(default=None, metadata=doc("environment variable holding the key"))
    value: str | None = attrs.field(default=None, repr=False, metadata=doc("a literal key (prefer env; may use ${VAR})"))
    name: str | None = attrs.field(default=None, metadata=doc("header or query parameter name"))
    prefix: str | None = attrs.field(default=None, metadata=doc("text put before the key in a header"))
    optional: bool = attrs.field(default=False, metadata=doc("send no credentials when the variable is unset (local servers)"))
    options: dict[str, str] = attrs.field(factory=dict, metadata=doc("settings of a plugin's injector (sigv4: service, region)"))


@attrs.frozen
class Timeout:
    """Timeouts in seconds; ``total`` bounds a whole call, stream included."""

    connect: float = attrs.field(default=10.0, metadata=doc("seconds to establish a connection"))
    read: float = attrs.field(default=120.0, metadata=doc("seconds between two reads"))
    write: float = attrs.field(default=30.0, metadata=doc("seconds to send the request"))
    total: float | None = attrs.field(default=600.0, metadata=doc("seconds for the whole call, stream included (null: no bound)"))


@attrs.frozen
class Budget:
    """What one response may cost to read; a stream past either bound fails with ``STREAM_TOO_LARGE``."""

    max_bytes: int | None = attrs.field(default=256 * 2**20, metadata=doc("bytes of one response body (null: no bound)"))
    max_events: int | None = attrs.field(default=1_000_000, metadata=doc("events of one response (null: no bound)"))


@attrs.frozen
class ErrorRaise:
    """An in-stream provider error turned into a typed error."""

    kind: str = attrs.field(default="provider_down", metadata=doc("error kind when `kinds` has no entry"))
    code: str | None = attrs.field(default=None, metadata=doc("expression: the provider's error code"))
    message: str | None = attrs.field(default=None, metadata=doc("expression: the error message"))
    kinds: dict[str, str] = attrs.field(factory=dict, metadata=doc("provider code -> error kind"))


@attrs.frozen
class Remember:
    """Keep a value from this frame for later frames of the same response."""

    key: str = attrs.field(metadata=doc("expression: the slot (a content block's `index`, a call id)"))
    value: str = attrs.field(metadata=doc("expression: what to keep (a string, number, boolean or null)"))


@attrs.frozen
class Recall:
    """Read a remembered value back into this frame before the rule's expressions run."""

    key: str = attrs.field(metadata=doc("expression: the slot to read"))
    into: str = attrs.field(metadata=doc("field name under which the rule's expressions see the value (null if never remembered)"))


@attrs.frozen
class EventRule:
    """Frame -> unified events. Every matching rule fires, in order."""

    event: str | None = attrs.field(default=None, metadata=doc("only frames with this SSE event name"))
    data: str | None = attrs.field(default=None, metadata=doc("only frames whose raw data equals this (no JSON decoding)"))
    raw: bool = attrs.field(default=False, metadata=doc("read the frame's data as it came (a string for SSE and text), without JSON decoding"))
    when: str | None = attrs.field(default=None, metadata=doc("expression over the decoded payload; fires when truthy"))
    each: str | None = attrs.field(default=None, metadata=doc("expression yielding a list; emit once per item (`@` is the item)"))
    emit: dict[str, Any] | None = attrs.field(default=None, metadata=doc("event to emit: `type` plus field expressions"))
    error: ErrorRaise | None = attrs.field(default=None, metadata=doc("raise a typed error for this frame"))
    stop: bool = attrs.field(default=False, metadata=doc("this frame is the stream's end marker"))
    stop_when: str | None = attrs.field(default=None, metadata=doc("shorthand for `when: X` + `stop: true`"))
    remember: Remember | None = attrs.field(default=None, metadata=doc("keep a value of this frame for later frames (runs when the rule fires)"))
    recall: Recall | None = attrs.field(default=None, metadata=doc("add a remembered value to the frame, as a field, before `when`"))


@attrs.frozen
class ErrorRule:
    """HTTP error response -> error kind."""

    kind: str = attrs.field(metadata=doc("network, timeout, rate_limit, provider_down, invalid_request, auth, parse, limit_exceeded, not_found, internal"))
    status: int | list[int] | str | None = attrs.field(default=None, metadata=doc("status, list of statuses, or a class such as 5xx"))
    when: str | None = attrs.field(default=None, metadata=doc("expression over the JSON error body"))
    code: str | None = attrs.field(default=None, metadata=doc("expression: the provider's error code"))
    message: str | None = attrs.field(default=None, metadata=doc("expression: the error message"))


@attrs.frozen
class Operator:
    """One endpoint: how to build the request and read the response."""

    path: str = attrs.field(metadata=doc("path under base_url; {model} is the provider's model id"))
    method: str = attrs.field(default="POST", metadata=doc("HTTP method"))
    stream: bool = attrs.field(default=True, metadata=doc("the response is a stream"))
    parser: str | None = attrs.field(default=None, metadata=doc("parser plugin name; omitted -> auto-detect"))
    parser_options: dict[str, Any] = attrs.field(factory=dict, metadata=doc("keyword options for the parser"))
    request: str | None = attrs.field(default=None, metadata=doc("expression over the unified request -> JSON body"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=doc("extra headers"))
    query: dict[str, str] = attrs.field(factory=dict, metadata=doc("extra query parameters"))
    request_headers: str | None = attrs.field(default=None, metadata=doc("expression over the unified request -> object of headers (nulls dropped)"))
    request_query: str | None = attrs.field(default=None, metadata=doc("expression over the unified request -> object of query parameters (nulls dropped)"))
    events: list[EventRule] = attrs.field(factory=list, metadata=doc("frame -> event rules"))
    errors: list[ErrorRule] = attrs.field(factory=list, metadata=doc("HTTP error -> error kind rules"))


@attrs.frozen
class UrlRule:
    """Protocol detection heuristic: a URL containing ``contains`` uses ``parser``."""

    contains: str = attrs.field(metadata=doc("substring of the request URL"))
    parser: str = attrs.field(metadata=doc("parser plugin name"))


@attrs.frozen
class Detection:
    """How a parser is chosen when an operator names none."""

    detect: Literal["on", "off", "warn", "quiet", "strict"] = attrs.field(default="on", metadata=doc("on or warn (detect, log a warning naming the choice), quiet (detect, log at debug), off, or strict (any detection is an error)"))
    allow: list[str] = attrs.field(factory=list, metadata=doc("detect only for these providers or base-URL prefixes (empty: all)"))
    url_rules: list[UrlRule] = attrs.field(factory=list, metadata=doc("URL heuristics tried after Content-Type"))
    default: str | None = attrs.field(default="text", metadata=doc("parser when nothing matched (null: error)"))


@attrs.frozen
class Provider:
    """A service: where it is, how to authenticate, what it can do."""

    base_url: str = attrs.field(metadata=doc("URL prefix of every operator path"))
    extends: str | None = attrs.field(default=None, metadata=doc("a provider this one starts from: its fields with these merged over them (JSON Merge Patch: mappings merge, null removes, anything else replaces)"))
    auth: Auth = attrs.field(factory=Auth, metadata=doc("credentials"))
    headers: dict[str, str] = attrs.field(factory=dict, metadata=doc("headers sent with every request"))
    timeout: Timeout = attrs.field(factory=Timeout, metadata=doc("timeouts"))
    budget: Budget = attrs.field(factory=Budget, metadata=doc("bounds on one response: bytes and events"))
    operators: dict[str, Operator] = attrs.field(factory=dict, metadata=doc("generate, embed, or any name (rerank, ...) callable with rt.call"))
    default_capabilities: list[str] = attrs.field(factory=lambda: ["generate", "stream"], metadata=doc("capabilities of an undeclared `provider/model`"))
    requires: list[str] = attrs.field(factory=list, metadata=doc("plugin distributions that provide this provider's parser and auth; while one is missing the manifest loads and a call fails naming it"))


@attrs.frozen
class Limits:
    """Local limits, enforced before any HTTP."""

    context_window: int | None = attrs.field(default=None, metadata=doc("tokens of prompt plus completion"))
    max_tokens: int | None = attrs.field(default=None, metadata=doc("largest completion"))
    rpm: int | None = attrs.field(default=None, metadata=doc("requests per minute"))
    tpm: int | None = attrs.field(default=None, metadata=doc("tokens per minute"))
    concurrency: int | None = attrs.field(default=None, metadata=doc("requests in flight"))
    mode: Literal["reject", "wait"] = attrs.field(default="reject", metadata=doc("reject at once, or wait for capacity"))
    wait_timeout: float | None = attrs.field(default=None, metadata=doc("seconds to wait in mode wait"))


@attrs.frozen
class Pricing:
    """Prices in currency units per million tokens."""

    input_per_mtok: float = attrs.field(default=0.0, metadata=doc("price of a million input tokens"))
    output_per_mtok: float = attrs.field(default=0.0, metadata=doc("price of a million output tokens"))
    cached_input_per_mtok: float | None = attrs.field(default=None, metadata=doc("price of a million input tokens read from the prompt cache (default: the input price)"))
    cache_write_per_mtok: float | None = attrs.field(default=None, metadata=doc("price of a million input tokens written to the prompt cache (default: the input price)"))
    cache_write_1h_per_mtok: float | None = attrs.field(default=None, metadata=doc("price of a million input tokens written to the prompt cache for an hour, where that costs more (default: the cache write price)"))
    currency: str = attrs.field(default="USD", metadata=doc("ISO 4217 code of the prices (totals never add two currencies)"))


@attrs.frozen
class Retry:
    """Retries and fallback for one model (read by the fallback policy)."""

    attempts: int = attrs.field(default=3, metadata=doc("tries on this model before moving on (1: no retry)"))
    base_delay: float = attrs.field(default=0.5, metadata=doc("first backoff ceiling in seconds (full jitter, doubling)"))
    max_delay: float = attrs.field(default=20.0, metadata=doc("largest backoff in seconds"))
    retry_after_cap: float = attrs.field(default=60.0, metadata=doc("largest Retry-After honoured, in seconds"))
    fallback_on: list[str] = attrs.field(factory=lambda: ["rate_limit", "provider_down", "timeout"], metadata=doc("error kinds that move to the next model"))
    on_midstream: Literal["raise", "next", "prefix"] = attrs.field(default="raise", metadata=doc("after text was emitted: raise, continue with the next model, or continue with the partial answer as an assistant prefix"))


@attrs.frozen
class Model:
    """A model name users call, bound to a provider."""

    provider: str = attrs.field(metadata=doc("provider name"))
    id: str | None = attrs.field(default=None, metadata=doc("the provider's model id (default: the key)"))
    capabilities: list[str] = attrs.field(factory=lambda: ["generate", "stream"], metadata=doc("generate, stream, tools, vision, embed, json_mode, or an operator's name (rerank, ...)"))
    limits: Limits = attrs.field(factory=Limits, metadata=doc("local limits"))
    pricing: Pricing | None = attrs.field(default=None, metadata=doc("prices for cost"))
    fallback: list[str] = attrs.field(factory=list, metadata=doc("models to try next, in order"))
    tokenizer: str | None = attrs.field(default=None, metadata=doc("tokenizer plugin name (default: approx)"))
    policy: str = attrs.field(default="default", metadata=doc("fallback policy plugin name"))
    retry: Retry = attrs.field(factory=Retry, metadata=doc("retry and fallback settings"))
    params: dict[str, Any] = attrs.field(factory=dict, metadata=doc("default request parameters"))


@attrs.frozen
class Limiter:
    """Where rpm / tpm are counted: ``local`` (this process) or a plugin such as ``redis``."""

    backend: str = attrs.field(default="local", metadata=doc("limiter plugin name"))
    options: dict[str, Any] = attrs.field(factory=dict, metadata=doc("keyword options for the backend (e.g. url)"))


@attrs.frozen
class Manifest:
    """One manifest document."""

    version: int = attrs.field(metadata=doc("manifest language version; 1"))
    providers: dict[str, Provider] = attrs.field(factory=dict, metadata=doc("providers by name"))
    models: dict[str, Model] = attrs.field(factory=dict, metadata=doc("models by name"))
    protocol: Detection | None = attrs.field(default=None, metadata=doc("parser auto-detection"))
    limiter: Limiter | None = attrs.field(default=None, metadata=doc("rate-limit backend"))
