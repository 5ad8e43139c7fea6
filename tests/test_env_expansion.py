"""``${VAR}`` / ``${VAR:-default}`` expansion in manifest strings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelwire import load_manifests
from modelwire._manifest.structure import parse_manifest
from modelwire._manifest.yaml import Located, expand_env

from strategies import env_values, templates, var_names


def expand(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    doc = Located({"field": text}, {("field",): 3}, "m.yaml")
    issues = expand_env(doc, env)
    return doc.value["field"], [str(i) for i in issues]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        pytest.param("${A}", {"A": "x"}, "x", id="plain"),
        pytest.param("pre-${A}-post", {"A": "x"}, "pre-x-post", id="inside-text"),
        pytest.param("${A}${B}", {"A": "1", "B": "2"}, "12", id="adjacent"),
        pytest.param("${A}", {"A": ""}, "", id="set-but-empty"),
        pytest.param("${A:-d}", {}, "d", id="default-unset"),
        pytest.param("${A:-d}", {"A": ""}, "d", id="default-empty"),
        pytest.param("${A:-d}", {"A": "v"}, "v", id="default-unused"),
        pytest.param("${A:-}", {}, "", id="empty-default"),
        pytest.param("${A:-${B}}", {"B": "b"}, "b", id="nested-default"),
        pytest.param("${A:-${B:-${C:-deep}}}", {}, "deep", id="deeply-nested"),
        pytest.param("${A:-x${B}y}", {"B": "b"}, "xby", id="default-with-text"),
        pytest.param("${A:-${B}}", {"A": "a"}, "a", id="unused-default-may-name-unset-var"),
        pytest.param("${A:-http://h:8080/v1}", {}, "http://h:8080/v1", id="default-with-colons"),
        pytest.param("${A:-a:-b}", {}, "a:-b", id="default-with-colon-dash"),
        pytest.param("$${A}", {}, "${A}", id="escape"),
        pytest.param("$$$${A}", {}, "$${A}", id="double-escape"),
        pytest.param("$$${A}", {"A": "x"}, "$x", id="escape-then-var"),
        pytest.param("cost: $5", {}, "cost: $5", id="lone-dollar"),
        pytest.param("$", {}, "$", id="dollar-at-end"),
        pytest.param("a}b", {}, "a}b", id="brace-outside-default"),
        pytest.param("${A}", {"A": "${B}"}, "${B}", id="values-are-not-re-expanded"),
        pytest.param("no vars", {}, "no vars", id="no-dollar"),
    ],
)
def test_expansion(text: str, env: dict[str, str], expected: str) -> None:
    assert expand(text, env) == (expected, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("${OPENAI_KEY}", "environment variable OPENAI_KEY is not set", id="unset"),
        pytest.param(
            "x-${A:-${MISSING}}",
            "environment variable MISSING is not set",
            id="unset-in-used-default",
        ),
        pytest.param(
            "${}",
            "bad variable reference at character 0: '${}' (write $$ for a literal $)",
            id="empty-name",
        ),
        pytest.param(
            "a ${1X}",
            "bad variable reference at character 2: '${1X}' (write $$ for a literal $)",
            id="name-starts-with-digit",
        ),
        pytest.param(
            "${A",
            "bad variable reference ${A...: expected '}' or ':-' (write $$ for a literal $)",
            id="unterminated",
        ),
        pytest.param(
            "${A-d}",
            "bad variable reference ${A...: expected '}' or ':-' (write $$ for a literal $)",
            id="shell-dash-form-unsupported",
        ),
        pytest.param("${A:-d", "unterminated ${A:-...}", id="unterminated-default"),
        pytest.param(
            "${A:-${}}",
            "bad variable reference at character 5: '${}}' (write $$ for a literal $)",
            id="bad-syntax-in-unused-default",
        ),
    ],
)
def test_expansion_error_names_variable_and_field(text: str, message: str) -> None:
    value, issues = expand(text, {"A": "set"} if "unused" in message else {})
    assert value == text  # left as written
    assert issues == [f"m.yaml:3: field: {message}"]


def test_unset_variable_in_a_manifest_names_the_field(write) -> None:
    path = write(
        "env.yaml",
        "version: 1\nproviders:\n  p:\n    base_url: ${BASE}\n    headers:\n      X-Org: ${ORG}\n",
    )
    _m, _d, issues = parse_manifest(path.read_bytes(), str(path), env={})
    assert [str(i) for i in issues] == [
        f"{path}:4: providers.p.base_url: environment variable BASE is not set",
        f"{path}:6: providers.p.headers.X-Org: environment variable ORG is not set",
    ]


def test_expansion_reaches_lists_and_nested_mappings() -> None:
    text = (
        "version: 1\nproviders:\n  p:\n    base_url: ${URL:-http://localhost}\n"
        "    auth: {type: header, value: '${KEY}'}\nmodels:\n  m:\n    provider: p\n"
        "    fallback: ['${FB}']\n    params: {user: '${USER_ID:-anon}'}\n"
    )
    manifest, _doc, issues = parse_manifest(text, "m.yaml", env={"KEY": "k", "FB": "m"})
    assert issues == []
    assert manifest is not None
    assert manifest.providers["p"].base_url == "http://localhost"
    assert manifest.providers["p"].auth.value == "k"
    assert manifest.models["m"].fallback == ["m"]
    assert manifest.models["m"].params == {"user": "anon"}


def test_keys_and_non_strings_are_not_expanded() -> None:
    text = "version: 1\nmodels:\n  ${NAME}: {provider: p, limits: {rpm: 5}}\nproviders: {p: {base_url: 'http://x'}}\n"
    manifest, _doc, issues = parse_manifest(text, "m.yaml", env={})
    assert issues == []
    assert manifest is not None and list(manifest.models) == ["${NAME}"]


def test_process_environment_is_the_default(write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_TEST_BASE_URL", "http://from-env:1")
    path = write("a.yaml", "version: 1\nproviders: {p: {base_url: '${MW_TEST_BASE_URL}'}}\n")
    assert load_manifests(path).providers["p"].base_url == "http://from-env:1"


def test_explicit_env_replaces_the_process_environment(
    write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MW_TEST_BASE_URL", "http://from-env:1")
    path = write(
        "a.yaml", "version: 1\nproviders: {p: {base_url: '${MW_TEST_BASE_URL:-http://d:2}'}}\n"
    )
    assert load_manifests(path, env={}).providers["p"].base_url == "http://d:2"


# -- properties ---------------------------------------------------------------------------------------


@given(
    st.dictionaries(var_names, env_values, max_size=4).flatmap(
        lambda env: st.tuples(st.just(env), templates(env))
    )
)
def test_templates_expand_to_their_meaning(case: tuple[dict[str, str], tuple[str, str]]) -> None:
    env, (template, expected) = case
    assert expand(template, env) == (expected, [])


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    text = text.replace("$", "")
    assert expand(text, {}) == (text, [])


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
def test_escaping_every_dollar_round_trips(text: str) -> None:
    assert expand(text.replace("$", "$$"), {}) == (text, [])


@given(var_names, env_values, env_values)
def test_default_is_used_only_when_unset_or_empty(name: str, value: str, default: str) -> None:
    default = default.replace("$", "$$").replace("}", "")
    literal = default.replace("$$", "$")
    assert expand(f"${{{name}:-{default}}}", {name: value}) == (value or literal, [])
    assert expand(f"${{{name}:-{default}}}", {}) == (literal, [])


@given(var_names, st.text(max_size=10).map(lambda t: t.replace("$", "")))
def test_unset_variable_is_always_named(name: str, around: str) -> None:
    _value, issues = expand(f"{around}${{{name}}}{around}", {})
    assert issues == [f"m.yaml:3: field: environment variable {name} is not set"]


def test_an_unexpanded_field_reports_only_the_missing_variable() -> None:
    text = "version: 1\nmodels: {m: {provider: p, limits: {rpm: '${RPM}', tpm: x}}}\nproviders: {p: {base_url: 'http://x'}}\n"
    _m, _d, issues = parse_manifest(text, "m.yaml", env={})
    assert [str(i) for i in issues] == [
        "m.yaml:2: models.m.limits.rpm: environment variable RPM is not set",
        "m.yaml:2: models.m.limits.tpm: expected an integer, got 'x'",
    ]
