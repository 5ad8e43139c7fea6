"""The one error tree: kinds, codes, pickling, redaction, manifest issues."""

from __future__ import annotations

import pickle

import pytest

import modelwire
from modelwire import (
    AuthError,
    InternalError,
    InvalidRequestError,
    LimitExceededError,
    ManifestError,
    ManifestIssue,
    ModelError,
    NetworkError,
    NotFoundError,
    ParseError,
    PluginError,
    ProviderDownError,
    RateLimitError,
    RequestTimeout,
    error_class,
)
from modelwire._errors import KINDS, redact

TREE = [
    pytest.param(NetworkError, "network", "NETWORK", ModelError, id="network"),
    pytest.param(RequestTimeout, "timeout", "TIMEOUT", ModelError, id="timeout"),
    pytest.param(RateLimitError, "rate_limit", "RATE_LIMITED", ModelError, id="rate_limit"),
    pytest.param(
        ProviderDownError, "provider_down", "PROVIDER_DOWN", ModelError, id="provider_down"
    ),
    pytest.param(
        InvalidRequestError, "invalid_request", "INVALID_REQUEST", ModelError, id="invalid_request"
    ),
    pytest.param(
        ManifestError, "invalid_request", "MANIFEST_INVALID", InvalidRequestError, id="manifest"
    ),
    pytest.param(AuthError, "auth", "AUTH", ModelError, id="auth"),
    pytest.param(ParseError, "parse", "PARSE", ModelError, id="parse"),
    pytest.param(
        LimitExceededError, "limit_exceeded", "LIMIT_EXCEEDED", ModelError, id="limit_exceeded"
    ),
    pytest.param(NotFoundError, "not_found", "NOT_FOUND", ModelError, id="not_found"),
    pytest.param(InternalError, "internal", "INTERNAL", ModelError, id="internal"),
    pytest.param(PluginError, "internal", "PLUGIN_ERROR", InternalError, id="plugin"),
]


@pytest.mark.parametrize(("cls", "kind", "code", "parent"), TREE)
def test_tree(cls: type[ModelError], kind: str, code: str, parent: type[ModelError]) -> None:
    assert cls.__bases__ == (parent,)
    assert issubclass(cls, ModelError) and issubclass(ModelError, Exception)
    err = cls("boom")
    assert (err.kind, err.code, err.message, str(err)) == (kind, code, "boom", "boom")
    assert repr(err) == f"{cls.__name__}(code={code!r}, message='boom')"
    assert err.to_dict() == {"type": "error", "kind": kind, "code": code, "message": "boom"}


def test_module_docstring_draws_every_class() -> None:
    doc = modelwire._errors.__doc__ or ""
    for param in TREE:
        cls, kind = param.values[0], param.values[1]
        assert any(cls.__name__ in line and kind in line for line in doc.splitlines()), cls


@pytest.mark.parametrize(
    "kind",
    [
        "network",
        "timeout",
        "rate_limit",
        "provider_down",
        "invalid_request",
        "auth",
        "parse",
        "limit_exceeded",
        "not_found",
        "internal",
    ],
)
def test_error_class_maps_every_design_kind(kind: str) -> None:
    cls = error_class(kind)
    assert cls.kind == kind
    assert KINDS[kind] is cls
    assert cls not in (ManifestError, PluginError)  # the kind's own class, not a subclass


def test_error_class_unknown_kind() -> None:
    with pytest.raises(InvalidRequestError) as info:
        error_class("ratelimit")
    assert info.value.code == "UNKNOWN_ERROR_KIND"
    assert info.value.message.startswith("unknown error kind 'ratelimit'; known: auth, internal, ")


def test_where_fields_are_shown() -> None:
    err = RateLimitError(
        "slow down",
        code="RATE_LIMITED",
        provider="openai",
        model="gpt-4.1",
        endpoint="generate",
        status=429,
        retry_after=2.5,
    )
    assert str(err) == "slow down (model=gpt-4.1 provider=openai endpoint=generate status=429)"
    assert err.retry_after == 2.5
    assert err.message == "slow down"


def test_parse_error_names_line_and_offset() -> None:
    err = ParseError("invalid JSON", line=3, offset=41, model="m")
    assert (err.line, err.offset) == (3, 41)
    assert str(err) == "invalid JSON (model=m line=3 offset=41)"
    assert str(ParseError("x")) == "x"


def test_extra_fields_become_attributes() -> None:
    err = NotFoundError("no parser", code="PARSER_NOT_FOUND", name="sse")
    assert err.name == "sse"


@pytest.mark.parametrize(
    "err",
    [
        pytest.param(
            NetworkError("down", provider="p", model="m", endpoint="e", status=None), id="network"
        ),
        pytest.param(RateLimitError("slow", status=429, retry_after=1.5), id="rate-limit"),
        pytest.param(ParseError("bad", offset=7, line=2, code="SSE_TOO_LONG"), id="parse"),
        pytest.param(NotFoundError("nope", code="MODEL_NOT_FOUND", name="x"), id="not-found-extra"),
        pytest.param(
            PluginError("clash", code="PLUGIN_CONFLICT", distributions=["a", "b"]), id="plugin"
        ),
        pytest.param(
            ManifestError(issues=[ManifestIssue("bad", file="m.yaml", path="models.m", line=3)]),
            id="manifest",
        ),
    ],
)
def test_pickle_round_trip(err: ModelError) -> None:
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert (again.message, again.code, str(again), repr(again)) == (
        err.message,
        err.code,
        str(err),
        repr(err),
    )
    assert again._fields() == err._fields()


def test_manifest_error_message_lists_every_issue() -> None:
    issues = [
        ManifestIssue(
            "expected an integer, got 'x'", file="m.yaml", path="models.m.limits.rpm", line=5
        ),
        ManifestIssue("the document is empty", file="e.yaml"),
    ]
    err = ManifestError(issues=issues)
    assert err.issues == tuple(issues)
    assert (
        str(err)
        == "m.yaml:5: models.m.limits.rpm: expected an integer, got 'x'\ne.yaml: the document is empty"
    )
    assert ManifestError().message == "invalid manifest"
    assert ManifestError("custom", issues=issues).message == "custom"


@pytest.mark.parametrize(
    ("issue", "text"),
    [
        pytest.param(
            ManifestIssue("m", file="f.yaml", path="a.b", line=3), "f.yaml:3: a.b: m", id="all"
        ),
        pytest.param(ManifestIssue("m", file="f.yaml", line=3), "f.yaml:3: m", id="no-path"),
        pytest.param(ManifestIssue("m", file="f.yaml", path="a"), "f.yaml: a: m", id="no-line"),
        pytest.param(
            ManifestIssue("m", path="a[0]", line=1), "<manifest>:1: a[0]: m", id="no-file"
        ),
        pytest.param(ManifestIssue("m"), "<manifest>: m", id="nothing"),
    ],
)
def test_manifest_issue_format(issue: ManifestIssue, text: str) -> None:
    assert str(issue) == text


SECRETS = [
    pytest.param("Authorization: Bearer abcdef123456789", "abcdef123456789", id="bearer"),
    pytest.param("sent api_key=sk-proj-AbCdEf0123456789", "AbCdEf0123456789", id="api_key-sk"),
    pytest.param('{"api-key": "k3y-v4lue-0123456789"}', "k3y-v4lue-0123456789", id="api-key-json"),
    pytest.param(
        "x-api-key: ant-api03-secretsecret", "ant-api03-secretsecret", id="x-api-key-header"
    ),
    pytest.param("GET /v1/models?key=AIzaSyExample_123456", "AIzaSyExample_123456", id="query-key"),
    pytest.param("token: ghp_abcdefghijklmnop", "ghp_abcdefghijklmnop", id="token"),
    pytest.param("bad key sk-ant-REDACTME0123456789", "REDACTME0123456789", id="bare-sk"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_never_appear_in_str_or_repr(text: str, secret: str) -> None:
    for cls in (AuthError, InvalidRequestError, ParseError, NotFoundError):
        err = cls(f"request failed: {text}")
        for rendered in (
            str(err),
            repr(err),
            err.message,
            str(err.to_dict()),
            str(pickle.loads(pickle.dumps(err))),
        ):
            assert secret not in rendered
            assert "***" in rendered


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_never_appear_in_manifest_issues(text: str, secret: str) -> None:
    issue = ManifestIssue(
        f"expected an integer, got {text!r}", file="m.yaml", path="limits.rpm", line=2
    )
    err = ManifestError(issues=[issue])
    for rendered in (str(issue), repr(issue), str(err), repr(err)):
        assert secret not in rendered


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "no parser named 'sse'; installed: jsonchunk, text (tokens: 12)"
    assert redact(text) == text
    assert redact(redact("Bearer abcdef123456")) == "Bearer ***"
