"""``extends``: a provider that starts from another one's fields (JSON Merge Patch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelwire import ManifestError, load_manifests
from modelwire._manifest.structure import merge_patch

PARENT = """\
version: 1
providers:
  base:
    base_url: http://127.0.0.1:1/v1
    auth: {type: bearer, env: BASE_KEY}
    headers: {x-a: a, x-b: b}
    operators:
      generate: {path: /chat, parser: sse, events: [{data: "[DONE]", stop: true}]}
      embed: {path: /embed, parser: jsonchunk, stream: false}
models:
  base-model: {provider: base}
"""


def child(body: str, name: str = "kid") -> str:
    return f"version: 1\nproviders:\n  {name}:\n" + "".join(f"    {line}\n" for line in body.splitlines())


# RFC 7386, Appendix A: the standard's own examples are the oracle for merge_patch.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386, ids=[json.dumps(p) for _, p, _ in RFC7386])
def test_merge_patch_is_rfc7386(target: Any, patch: Any, result: Any) -> None:
    before = json.dumps(target)
    assert merge_patch(target, patch) == result
    assert json.dumps(target) == before  # the parent is never modified


@pytest.mark.parametrize("order", ["parent-first", "child-first"])
def test_child_starts_from_parent_across_files(write: Any, order: str) -> None:
    parent = write("base.yaml", PARENT)
    kid = write("kid.yaml", child(
        "extends: base\nbase_url: http://127.0.0.1:2\nauth: {env: KID_KEY}\n"
        "headers: {x-b: null, x-c: c}\noperators:\n  embed: null\n  generate: {path: /v2/chat}"
    ))
    catalog = load_manifests(*((parent, kid) if order == "parent-first" else (kid, parent)), env={})
    p = catalog.providers["kid"]
    assert p.extends == "base"
    assert p.base_url == "http://127.0.0.1:2"
    assert (p.auth.type, p.auth.env) == ("bearer", "KID_KEY")
    assert p.headers == {"x-a": "a", "x-c": "c"}
    assert list(p.operators) == ["generate"]
    assert (p.operators["generate"].path, p.operators["generate"].parser) == ("/v2/chat", "sse")
    assert p.operators["generate"].events == catalog.providers["base"].operators["generate"].events
    assert catalog.origins[("providers", "kid")] == str(kid)


def test_chains_resolve_in_order(write: Any) -> None:
    chain = "  mid:\n    extends: base\n    headers: {x-a: mid}\n  top:\n    extends: mid\n    base_url: http://127.0.0.1:3\n"
    path = write("m.yaml", PARENT.replace("models:", chain + "models:"))
    catalog = load_manifests(path, env={})
    assert catalog.providers["top"].headers == {"x-a": "mid", "x-b": "b"}
    assert catalog.providers["top"].base_url == "http://127.0.0.1:3"
    assert catalog.providers["mid"].base_url == "http://127.0.0.1:1/v1"


def test_a_builtin_parent_needs_no_loading_and_adds_nothing(write: Any) -> None:
    path = write("m.yaml", child("extends: openai\nbase_url: http://127.0.0.1:4/v1\nauth: {env: MINE}"))
    catalog = load_manifests(path, env={})
    assert sorted(catalog.providers) == ["kid"]
    assert catalog.models == {}
    assert catalog.providers["kid"].operators["generate"].path == "/chat/completions"


@pytest.mark.parametrize(
    ("text", "path", "line", "message"),
    [
        pytest.param(child("extends: nope"), "providers.kid.extends", 4,
                     "extends unknown provider 'nope'; known: ", id="unknown"),
        pytest.param(child("extends: kid"), "providers.kid.extends", 4,
                     "cycle: kid -> kid", id="itself"),
        pytest.param(child("extends: b") + "  b:\n    extends: c\n  c:\n    extends: kid\n",
                     "providers.c.extends", 8, "cycle: kid -> b -> c -> kid", id="cycle"),
        pytest.param(child("extends: [base]"), "providers.kid.extends", 4,
                     "expected a provider name, got a list", id="not-a-name"),
        pytest.param(child("extends: openai\noperators: {generate: {parser: [sse]}}"),
                     "providers.kid.operators.generate.parser", 5, "expected a string, got a list",
                     id="bad-field-after-merge"),
        pytest.param(child("extends: openai\nbase_url: ftp://x"), "providers.kid.base_url", 5,
                     "expected an http(s) URL", id="checks-after-merge"),
        pytest.param(child("extends: openai\noperators: {generate: {events: [{when: 'a[', stop: true}]}}"),
                     "providers.kid.operators.generate.events[0].when", 5, "invalid expression",
                     id="expression-after-merge"),
        pytest.param(child("extends: openai\nbase_url: null"), "providers.kid.base_url", 5,
                     "required field is missing", id="null-removes-required"),
    ],
)
def test_errors_name_file_field_and_line(write: Any, text: str, path: str, line: int, message: str) -> None:
    file = write("m.yaml", text)
    with pytest.raises(ManifestError) as info:
        load_manifests(file, env={})
    [issue] = info.value.issues
    assert (issue.file, issue.path, issue.line) == (str(file), path, line)
    assert message in issue.message


def test_remote_child_cannot_inherit_a_local_key(http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    (root / "m.yaml").write_text(child("extends: openai\nbase_url: http://127.0.0.1:5/v1"), encoding="utf-8")
    source = f"{base}/m.yaml"
    with pytest.raises(ManifestError) as info:
        load_manifests(source, env={"OPENAI_API_KEY": "sk-secret"})
    [issue] = info.value.issues
    assert (issue.path, issue.file) == ("providers.kid.auth.env", source)
    assert "OPENAI_API_KEY (inherited through extends) is not in the allow-list" in issue.message
    assert "sk-secret" not in str(info.value)
    allowed = load_manifests(source, env={}, allow_env=["OPENAI_API_KEY"])
    assert allowed.providers["kid"].auth.env == "OPENAI_API_KEY"


def test_a_later_plain_definition_replaces_an_extending_one(write: Any) -> None:
    first = write("a.yaml", child("extends: openai"))
    second = write("b.yaml", child("base_url: http://127.0.0.1:6"))
    catalog = load_manifests(first, second, env={}, overridable=[first])
    assert catalog.providers["kid"].extends is None
    assert catalog.providers["kid"].operators == {}


def test_builtins_extend_builtins_even_when_the_caller_replaces_the_parent(write: Any) -> None:
    mine = write("mine.yaml", "version: 1\nproviders:\n  openai: {base_url: 'http://127.0.0.1:7/v1'}\n")
    catalog = load_manifests("builtin:*", mine, env={}, overridable=["builtin:*"])
    assert catalog.providers["openai"].operators == {}
    assert catalog.providers["groq"].operators["generate"].path == "/chat/completions"
    assert catalog.providers["groq"].base_url == "https://api.groq.com/openai/v1"


def test_remote_child_never_extends_a_local_provider(http_dir: tuple[str, Path], write: Any) -> None:
    local = write("local.yaml", "version: 1\nproviders:\n  mine:\n    base_url: http://127.0.0.1:8\n"
                  "    headers: {x-secret: '${SECRET}'}\n")
    base, root = http_dir
    (root / "m.yaml").write_text(child("extends: mine\nbase_url: http://127.0.0.1:9"), encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        load_manifests(local, f"{base}/m.yaml", env={"SECRET": "hunter2"})
    [issue] = info.value.issues
    assert issue.path == "providers.kid.extends"
    assert issue.message == f"a manifest from a URL or git extends only built-in or remote providers; 'mine' is defined in {local}"
    assert "hunter2" not in str(info.value)
