"""The one error tree of modelwire.

Every failure a caller can see is a :class:`ModelError`. Foreign exceptions
(httpx, yaml, json) are translated at the boundary with the cause chained, so
``except modelwire.ModelError`` is the only handler an application needs::

    ModelError                      kind
    ├── NetworkError                network
    ├── RequestTimeout              timeout
    ├── RateLimitError              rate_limit
    ├── ProviderDownError           provider_down
    ├── InvalidRequestError         invalid_request
    │   └── ManifestError           invalid_request  (bad manifest: file, field, line)
    ├── AuthError                   auth
    ├── ParseError                  parse            (byte offset, line)
    │   └── OutputSchemaError       parse            (structured output: JSON pointer, raw text)
    ├── LimitExceededError          limit_exceeded
    ├── NotFoundError               not_found        (PARSER_NOT_FOUND, MODEL_NOT_FOUND, ...)
    ├── InternalError               internal
    │   └── PluginError             internal         (a plugin failed to load, or clashed)
    └── ToolError                   invalid_request  (tool, port, JSON path; pipeline step, attempts)
        └── ToolTimeout             timeout

Manifests map HTTP statuses and in-stream errors to the ``kind`` strings; use
:func:`error_class` to go from a kind to its class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

__all__ = [
    "KINDS",
    "AuthError",
    "InternalError",
    "InvalidRequestError",
    "LimitExceededError",
    "ManifestError",
    "ManifestIssue",
    "ModelError",
    "NetworkError",
    "NotFoundError",
    "OutputSchemaError",
    "ParseError",
    "PluginError",
    "ProviderDownError",
    "RateLimitError",
    "RequestTimeout",
    "error_class",
    "redact",
]

# Values that look like credentials are masked wherever an error is rendered.
# A value is masked only when it looks like a key (a digit, ``_`` or ``-`` in
# it, or 16 characters or more), so the words around it survive:
# "api_key: environment variable X is not set" stays as it is.
_SECRET_RE = re.compile(
    r"(?i)(bearer\s+|api[-_]?key[\"'=: ]+|key=|token[\"'=: ]+|sk-)"
    r"(?=[A-Za-z.]*[0-9_\-]|[A-Za-z0-9._\-]{16})[A-Za-z0-9._\-]{6,}"
    r"|()(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{20,}"
)


def redact(text: str) -> str:
    """Mask anything that looks like an API key or bearer token (injected keys are scrubbed exactly too)."""
    return _SECRET_RE.sub(lambda m: (m.group(1) or "") + "***", text)


class ModelError(Exception):
    """Base of every modelwire error.

    ``kind`` is the coarse class a manifest or a fallback policy reasons about;
    ``code`` is a stable, more specific identifier (``PARSER_NOT_FOUND``).
    """

    kind: ClassVar[str] = "internal"
    default_code: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.provider = provider
        self.model = model
        self.endpoint = endpoint
        self.status = status
        self.retry_after = retry_after
        for key, value in extra.items():
            setattr(self, key, value)
        self._extra = tuple(extra)

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "code": self.code,
            "provider": self.provider,
            "model": self.model,
            "endpoint": self.endpoint,
            "status": self.status,
            "retry_after": self.retry_after,
        }
        for key in self._extra:
            fields[key] = getattr(self, key)
        return fields

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def where(self) -> str:
        """Where the error came from: ``model=... provider=... endpoint=...``."""
        parts = [
            f"{name}={value}"
            for name, value in (
                ("model", self.model),
                ("provider", self.provider),
                ("endpoint", self.endpoint),
                ("status", self.status),
            )
            if value is not None
        ]
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{self.message} ({where})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``modelwire call --json`` prints it."""
        return {"type": "error", "kind": self.kind, "code": self.code, "message": str(self)}


def _rebuild(cls: type[ModelError], message: str, fields: dict[str, Any]) -> ModelError:
    return cls(message, **fields)


class NetworkError(ModelError):
    """The connection failed or broke."""

    kind = "network"
    default_code = "NETWORK"


class RequestTimeout(ModelError):
    """A connect, read or total timeout expired."""

    kind = "timeout"
    default_code = "TIMEOUT"


class RateLimitError(ModelError):
    """The provider (or a local limiter) refused for rate."""

    kind = "rate_limit"
    default_code = "RATE_LIMITED"


class ProviderDownError(ModelError):
    """The provider is failing (5xx, overloaded)."""

    kind = "provider_down"
    default_code = "PROVIDER_DOWN"


class InvalidRequestError(ModelError):
    """The request can never succeed as written: fix it, do not retry it."""

    kind = "invalid_request"
    default_code = "INVALID_REQUEST"


class AuthError(ModelError):
    """Credentials are missing or refused."""

    kind = "auth"
    default_code = "AUTH"


class ParseError(ModelError):
    """Bytes that do not follow the wire format; names the byte offset and line."""

    kind = "parse"
    default_code = "PARSE"

    offset: int | None
    line: int | None

    def __init__(
        self, message: str, *, offset: int | None = None, line: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, offset=offset, line=line, **kw)

    def where(self) -> str:
        parts = [p for p in (super().where(),) if p]
        if self.line is not None:
            parts.append(f"line={self.line}")
        if self.offset is not None:
            parts.append(f"offset={self.offset}")
        return " ".join(parts)


class OutputSchemaError(ParseError):
    """A structured answer that is not JSON, or not valid against the requested schema.

    ``pointer`` is the JSON pointer (RFC 6901) of the first value that failed
    (``""`` for the whole document), ``schema_path`` the schema keyword that
    refused it, and ``text`` the raw answer, kept so it can be logged or repaired.
    """

    default_code = "OUTPUT_SCHEMA_MISMATCH"

    pointer: str | None
    schema_path: str | None
    text: str

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        pointer: str | None = None,
        schema_path: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, text=text, pointer=pointer, schema_path=schema_path, **kw)

    def where(self) -> str:
        parts = [p for p in (super().where(),) if p]
        if self.pointer is not None:
            parts.append(f"at={self.pointer or '/'}")
        return " ".join(parts)


class LimitExceededError(ModelError):
    """A local limit (context window, max_tokens, rpm, tpm) refused the call."""

    kind = "limit_exceeded"
    default_code = "LIMIT_EXCEEDED"


class NotFoundError(ModelError):
    """A name (model, provider, parser, ...) is unknown; lists the known ones."""

    kind = "not_found"
    default_code = "NOT_FOUND"


class InternalError(ModelError):
    """A bug, in modelwire or in a plugin."""

    kind = "internal"
    default_code = "INTERNAL"


class PluginError(InternalError):
    """A plugin failed to load, or two plugins claimed one name."""

    default_code = "PLUGIN_ERROR"


@attrs.frozen
class ManifestIssue:
    """One problem in one manifest: the file, the field path, the line.

    The message is redacted like every error message: a key pasted into the
    wrong field never reaches a terminal or a log.
    """

    message: str = attrs.field(converter=redact)
    file: str | None = None
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<manifest>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ManifestError(InvalidRequestError):
    """A manifest (or several) failed to load; ``issues`` holds every problem found."""

    default_code = "MANIFEST_INVALID"

    issues: tuple[ManifestIssue, ...]

    def __init__(
        self, message: str | None = None, *, issues: Sequence[ManifestIssue] = (), **kw: Any
    ) -> None:
        issues = tuple(issues)
        if message is None:
            message = "\n".join(str(i) for i in issues) or "invalid manifest"
        super().__init__(message, issues=issues, **kw)


KINDS: dict[str, type[ModelError]] = {
    cls.kind: cls
    for cls in (
        NetworkError,
        RequestTimeout,
        RateLimitError,
        ProviderDownError,
        InvalidRequestError,
        AuthError,
        ParseError,
        LimitExceededError,
        NotFoundError,
        InternalError,
    )
}


def error_class(kind: str) -> type[ModelError]:
    """The error class for a manifest ``kind`` string."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidRequestError(
            f"unknown error kind {kind!r}; known: {', '.join(sorted(KINDS))}",
            code="UNKNOWN_ERROR_KIND",
        ) from None
