"""Manifests: structure, every kind of error with its file, path and line, all at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from modelwire import (
    ManifestError,
    ManifestIssue,
    NotFoundError,
    PluginError,
    Plugins,
    load_manifests,
)
from modelwire._manifest.catalog import check_plugin_names, plugin_name_errors
from modelwire._manifest.model import (
    Auth,
    Detection,
    ErrorRule,
    EventRule,
    Limits,
    Manifest,
    Model,
    Operator,
    Pricing,
    Provider,
    Timeout,
    UrlRule,
)
from modelwire._manifest.structure import converter, parse_manifest

from core_helpers import ROOT
from strategies import manifest_documents

SAMPLES = ROOT / "tests" / "fixtures" / "manifests"


def issues_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    manifest, _doc, issues = parse_manifest(textwrap.dedent(text), "m.yaml", env or {})
    assert (manifest is None) == bool(issues)
    return [str(i) for i in issues]


# -- good manifests ------------------------------------------------------------------


def test_design_sketch_loads_into_attrs_classes() -> None:
    catalog = load_manifests(SAMPLES / "design-sketch.yaml", env={})
    openai = catalog.providers["openai"]
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai.auth == Auth(type="bearer", env="OPENAI_API_KEY")
    assert openai.timeout == Timeout()
    op = openai.operators["generate"]
    assert (op.path, op.method, op.stream, op.parser) == ("/chat/completions", "POST", True, "sse")
    assert op.request is not None and op.request.startswith("{model: model")
    assert op.events[0] == EventRule(stop_when="data == '[DONE]'")
    assert op.events[1] == EventRule(
        each="choices[].delta.content", emit={"type": "text", "text": "@"}
    )
    assert op.errors == [
        ErrorRule(kind="rate_limit", status=429),
        ErrorRule(kind="provider_down", status="5xx"),
        ErrorRule(kind="auth", status=[401, 403]),
    ]
    model = catalog.models["gpt-4.1"]
    assert model == Model(
        provider="openai",
        capabilities=["generate", "tools", "stream"],
        limits=Limits(context_window=1047576, max_tokens=32768, rpm=500),
        pricing=Pricing(input_per_mtok=2.0, output_per_mtok=8.0),
        fallback=["gpt-4.1-mini", "anthropic/claude-sonnet-4-5"],
    )
    mini = catalog.models["gpt-4.1-mini"]
    assert mini.limits.mode == "wait"
    assert mini.capabilities == ["generate", "stream"]
    assert mini.pricing is None
    assert catalog.protocol == Detection()
    assert catalog.origins[("models", "gpt-4.1")] == str(SAMPLES / "design-sketch.yaml")


def test_json_manifest_loads() -> None:
    catalog = load_manifests(SAMPLES / "json-style.json")
    local = catalog.providers["local"]
    assert local.timeout == Timeout(connect=1.0, total=60.0)
    assert isinstance(local.timeout.connect, float)
    assert local.operators["generate"].parser_options == {"max_line": 65536}
    assert catalog.models["llama3"].params == {"temperature": 0}
    assert catalog.protocol.detect == "warn"
    assert catalog.protocol.url_rules == [UrlRule(contains="/api/", parser="jsonchunk")]


def test_minimal_manifest() -> None:
    manifest, _doc, issues = parse_manifest("version: 1\n")
    assert issues == []
    assert manifest == Manifest(version=1)


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        pytest.param("off", "off", id="bare-off-is-yaml-false"),
        pytest.param("on", "on", id="bare-on-is-yaml-true"),
        pytest.param("strict", "strict", id="strict"),
        pytest.param("'warn'", "warn", id="quoted"),
    ],
)
def test_protocol_detect_accepts_yaml_booleans_for_on_off(yaml_value: str, expected: str) -> None:
    manifest, _doc, issues = parse_manifest(f"version: 1\nprotocol: {{detect: {yaml_value}}}\n")
    assert issues == []
    assert manifest is not None and manifest.protocol is not None
    assert manifest.protocol.detect == expected


def test_non_string_mapping_keys_keep_their_spelling() -> None:
    manifest, _doc, issues = parse_manifest(
        "version: 1\nproviders: {p: {base_url: 'http://x'}}\n"
        "models:\n  1.5: {provider: p}\n  null: {provider: p}\n  true: {provider: p}\n"
    )
    assert issues == []
    assert manifest is not None and sorted(manifest.models) == ["1.5", "null", "true"]


def test_classes_are_frozen() -> None:
    import attrs

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Operator(path="/x").path = "/y"  # type: ignore[misc]
    assert Provider(base_url="http://x").default_capabilities == ["generate", "stream"]


# -- every kind of error, exactly ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """\
            version: 1
            models:
              gpt-4.1:
                provider: openai
                limits: {rpm: fast}
            """,
            ["m.yaml:5: models.gpt-4.1.limits.rpm: expected an integer, got 'fast'"],
            id="wrong-scalar-type",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m:
                provider: p
                capabilities: generate
            """,
            ["m.yaml:5: models.m.capabilities: expected a list, got 'generate'"],
            id="scalar-for-list",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m: [provider, p]
            """,
            ["m.yaml:3: models.m: expected a mapping, got a list"],
            id="list-for-mapping",
        ),
        pytest.param(
            """\
            version: 1
            providers:
            """,
            ["m.yaml:2: providers: expected a mapping, got null"],
            id="null-section",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m:
                provider: p
                pricing: {input_per_mtok: 1, output_per_mtok: true}
            """,
            ["m.yaml:5: models.m.pricing.output_per_mtok: expected a number, got a boolean"],
            id="bool-is-not-a-number",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m: {provider: p, limits: {rpm: 1.5}}
            """,
            ["m.yaml:3: models.m.limits.rpm: expected an integer, got 1.5"],
            id="float-is-not-an-integer",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m: {provider: [7]}
            """,
            # (an unquoted 7 is the string "7" there: a string field keeps its text)
            ["m.yaml:3: models.m.provider: expected a string, got a list"],
            id="list-is-not-a-string",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m:
                id: x
            """,
            ["m.yaml:3: models.m.provider: required field is missing"],
            id="required-field-missing",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: http://x
                operators:
                  g:
                    path: /x
                    strem: true
            """,
            [
                "m.yaml:8: providers.p.operators.g.strem: unknown field 'strem' (did you mean 'stream'?)"
            ],
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m:
                provider: p
                colour: blue
            """,
            [
                "m.yaml:5: models.m.colour: unknown field 'colour'; allowed: "
                + ", ".join(f.name for f in attrs.fields(Model))
            ],
            id="unknown-key-lists-allowed",
        ),
        pytest.param(
            """\
            version: 1
            model: {}
            """,
            ["m.yaml:2: model: unknown field 'model' (did you mean 'models'?)"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            """\
            version: 1
            models:
              m: {provider: p, limits: {mode: later}}
            """,
            ["m.yaml:3: models.m.limits.mode: expected one of 'reject', 'wait', got 'later'"],
            id="literal",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: http://x
                operators:
                  g:
                    path: /x
                    errors:
                      - {status: [429, x], kind: rate_limit}
                      - {status: 4.5, kind: rate_limit}
            """,
            [
                "m.yaml:9: providers.p.operators.g.errors[0].status[1]: expected an integer, got 'x'",
                "m.yaml:10: providers.p.operators.g.errors[1].status: "
                "expected an integer or a list or a string or null, got 4.5",
            ],
            id="union",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: ftp://example.com
            """,
            ["m.yaml:4: providers.p.base_url: expected an http(s) URL, got 'ftp://example.com'"],
            id="base-url-scheme",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: http://x
                operators:
                  g:
                    path: /x
                    request: "{model: "
                    events:
                      - when: "a ^ b"
                        stop: true
                      - each: "foo.\\"bar"
                        emit: {type: text, text: "a b"}
            """,
            [
                "m.yaml:8: providers.p.operators.g.request: invalid expression '{model: ': "
                "incomplete expression at character 8",
                "m.yaml:10: providers.p.operators.g.events[0].when: invalid expression 'a ^ b': "
                "Unknown token ^ at character 2",
                "m.yaml:12: providers.p.operators.g.events[1].each: invalid expression 'foo.\"bar': "
                'Unclosed " delimiter at character 4',
                "m.yaml:13: providers.p.operators.g.events[1].emit.text: invalid expression 'a b': "
                "unexpected 'b' at character 2",
            ],
            id="bad-expressions",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: http://x
                operators:
                  g:
                    path: /x
                    events:
                      - emit: {type: txt, text: "@"}
                      - emit: {text: "@"}
                      - emit: {type: text, text: 5}
                      - when: usage
            """,
            [
                "m.yaml:9: providers.p.operators.g.events[0].emit.type: emit needs a type, one of "
                "text, tool_call, usage, finish, done, embedding, data, reasoning, server_tool_call, "
                "server_tool_result, citation; got 'txt'",
                "m.yaml:10: providers.p.operators.g.events[1].emit.type: emit needs a type, one of "
                "text, tool_call, usage, finish, done, embedding, data, reasoning, server_tool_call, "
                "server_tool_result, citation; got null",
                "m.yaml:11: providers.p.operators.g.events[2].emit.text: "
                "expected an expression string, got 5",
                "m.yaml:12: providers.p.operators.g.events[3]: "
                "a rule needs `emit`, `error`, `remember`, `stop` or `stop_when`",
            ],
            id="event-rules",
        ),
        pytest.param(
            """\
            version: 1
            providers:
              p:
                base_url: http://x
                operators:
                  g:
                    path: /x
                    events:
                      - error: {kind: ratelimit, kinds: {overloaded: provider_down, x: nope}}
                    errors:
                      - {status: 6xx, kind: auth}
                      - {status: 500, kind: boom}
            """,
            [
                "m.yaml:9: providers.p.operators.g.events[0].error.kind: "
                "unknown error kind 'ratelimit' (did you mean 'rate_limit'?)",
                "m.yaml:9: providers.p.operators.g.events[0].error.kinds.x: unknown error kind "
                "'nope'; known: network, timeout, rate_limit, provider_down, invalid_request, "
                "auth, parse, limit_exceeded, not_found, internal",
                "m.yaml:11: providers.p.operators.g.errors[0].status: "
                "status class must look like 4xx or 5xx, got '6xx'",
                "m.yaml:12: providers.p.operators.g.errors[1].kind: unknown error kind 'boom'; "
                "known: network, timeout, rate_limit, provider_down, invalid_request, auth, parse, "
                "limit_exceeded, not_found, internal",
            ],
            id="error-kinds",
        ),
        pytest.param(
            "- just\n- a list\n",
            ["m.yaml:1: a manifest must be a mapping, got a list"],
            id="not-a-mapping",
        ),
        pytest.param("", ["m.yaml: the document is empty"], id="empty"),
        pytest.param("# only a comment\n", ["m.yaml: the document is empty"], id="only-comment"),
        pytest.param(
            "version: 1\nmodels: [1, 2\n",
            [
                "m.yaml:3: invalid YAML: while parsing a flow sequence, did not find expected ',' or ']'"
            ],
            id="yaml-syntax",
        ),
        pytest.param(
            "version: 1\n---\nversion: 1\n",
            [
                "m.yaml:2: invalid YAML: expected a single document in the stream, but found another document"
            ],
            id="two-documents",
        ),
        pytest.param(
            "version: 1\nmodels:\n  a: {provider: p}\n  b: {provider: p}\n  a: {provider: q}\n",
            ["m.yaml:5: invalid YAML: duplicate key 'a' (first on line 3)"],
            id="duplicate-key",
        ),
        pytest.param(
            "version: 1\nmodels: !!python/object:os.system {}\n",
            ["m.yaml:2: invalid YAML: unsupported tag 'tag:yaml.org,2002:python/object:os.system'"],
            id="python-tag-on-a-mapping",
        ),
        pytest.param(
            "version: !!python/name:os.system ''\n",
            [
                "m.yaml:1: invalid YAML: could not determine a constructor for the tag "
                "'tag:yaml.org,2002:python/name:os.system'"
            ],
            id="python-tag-on-a-scalar",
        ),
    ],
)
def test_manifest_error(text: str, expected: list[str]) -> None:
    assert issues_of(text) == expected


# -- version --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 2\n",
            "m.yaml:1: version: unsupported manifest version 2; this modelwire reads 1",
            id="future",
        ),
        pytest.param(
            "version: 0\n",
            "m.yaml:1: version: unsupported manifest version 0; this modelwire reads 1",
            id="zero",
        ),
        pytest.param(
            "version: '1'\n",
            "m.yaml:1: version: unsupported manifest version '1'; this modelwire reads 1",
            id="string",
        ),
        pytest.param(
            "version: true\n",
            "m.yaml:1: version: unsupported manifest version True; this modelwire reads 1",
            id="boolean",
        ),
        pytest.param(
            "models: {}\n",
            "m.yaml:1: field 'version' is required (use `version: 1`)",
            id="missing",
        ),
    ],
)
def test_version(text: str, expected: str) -> None:
    assert issues_of(text) == [expected]


def test_unsupported_version_stops_checking_the_rest() -> None:
    # Other fields may mean something else in another version: do not guess.
    assert issues_of("version: 2\nmodels: {m: {colour: blue}}\n") == [
        "m.yaml:1: version: unsupported manifest version 2; this modelwire reads 1"
    ]


def test_missing_version_still_reports_the_other_errors() -> None:
    assert issues_of("models:\n  m: {provider: p, limits: {rpm: x}}\n") == [
        "m.yaml:1: field 'version' is required (use `version: 1`)",
        "m.yaml:2: models.m.limits.rpm: expected an integer, got 'x'",
    ]


# -- all errors at once ----------------------------------------------------------------------------


def test_every_error_of_a_file_is_reported_in_line_order() -> None:
    text = """\
    version: 1
    providers:
      p:
        base_url: http://x
        auth: {type: bearer, envv: KEY}
        operators:
          g:
            path: /x
            errors:
              - {status: 429, knd: rate_limit}
    models:
      m:
        provider: p
        limits: {rpm: lots, tpm: "many"}
        fallback: m2
    """
    assert issues_of(text) == [
        "m.yaml:5: providers.p.auth.envv: unknown field 'envv' (did you mean 'env'?)",
        "m.yaml:10: providers.p.operators.g.errors[0].kind: required field is missing",
        "m.yaml:10: providers.p.operators.g.errors[0].knd: unknown field 'knd' (did you mean 'kind'?)",
        "m.yaml:14: models.m.limits.rpm: expected an integer, got 'lots'",
        "m.yaml:14: models.m.limits.tpm: expected an integer, got 'many'",
        "m.yaml:15: models.m.fallback: expected a list, got 'm2'",
    ]


def test_load_manifests_raises_one_error_with_every_issue(write) -> None:
    path = write(
        "bad.yaml",
        "version: 1\nmodels:\n  a: {provider: p, limits: {rpm: x}}\n  b: {provider: [5]}\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifests(path)
    err = info.value
    assert err.code == "MANIFEST_INVALID"
    assert err.kind == "invalid_request"
    assert err.issues == (
        ManifestIssue(
            "expected an integer, got 'x'", file=str(path), path="models.a.limits.rpm", line=3
        ),
        ManifestIssue("expected a string, got a list", file=str(path), path="models.b.provider", line=4),
    )
    assert str(err) == "\n".join(str(i) for i in err.issues)


def test_references_are_checked_across_the_catalog(write) -> None:
    path = write(
        "refs.yaml",
        "version: 1\nproviders: {p: {base_url: 'http://x'}}\nmodels:\n"
        "  a: {provider: q, fallback: [b, c, other/model]}\n  b: {provider: p}\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifests(path)
    assert [str(i) for i in info.value.issues] == [
        f"{path}:4: models.a.provider: unknown provider 'q'; known: p",
        f"{path}:4: models.a.fallback[1]: fallback model 'c' is not defined",
    ]


# -- plugin names are checked at load time -----------------------------------------------------------


def test_manifest_selects_the_third_party_parser_by_name(upper_plugins: Plugins) -> None:
    catalog = load_manifests(SAMPLES / "upper-lines.yaml")
    check_plugin_names(catalog, upper_plugins)
    name = catalog.providers["shouty"].operators["generate"].parser
    assert name == "upper-lines"
    parser = upper_plugins.get_parser(name)
    assert [f.data for f in parser.feed(b"hi\nthere\n")] == ["HI", "THERE"]


def test_unknown_parser_fails_at_load_time_naming_the_place(bare_plugins: Plugins) -> None:
    catalog = load_manifests(SAMPLES / "upper-lines.yaml")
    with pytest.raises(NotFoundError) as info:
        check_plugin_names(catalog, bare_plugins)
    assert info.value.code == "PARSER_NOT_FOUND"
    assert info.value.provider == "shouty"
    assert info.value.message == (
        f"{SAMPLES / 'upper-lines.yaml'}:9: providers.shouty.operators.generate.parser: "
        "no parser named 'upper-lines'; installed: none"
    )


def test_a_clashing_parser_name_fails_at_load_time() -> None:
    from core_helpers import CLASH, UPPER

    catalog = load_manifests(SAMPLES / "upper-lines.yaml")
    with pytest.raises(PluginError) as info:
        check_plugin_names(catalog, Plugins(only=[UPPER, CLASH]))
    assert info.value.code == "PLUGIN_CONFLICT"
    assert ":9: providers.shouty.operators.generate.parser: parser name 'upper-lines'" in str(
        info.value
    )


def test_every_unknown_plugin_name_is_listed(write, bare_plugins: Plugins) -> None:
    path = write(
        "names.yaml",
        """\
version: 1
providers:
  p:
    base_url: http://x
    auth: {type: oauth}
    operators:
      a: {path: /a, parser: protobuf}
      b: {path: /b, parser: sse}
models:
  m: {provider: p, tokenizer: tiktoken}
""",
    )
    errors = plugin_name_errors(load_manifests(path), bare_plugins)
    auth = ", ".join(bare_plugins.names("auth_injector"))
    tokenizers = ", ".join(bare_plugins.names("tokenizer")) or "none"
    assert [(e.code, e.message) for e in errors] == [
        (
            "AUTH_INJECTOR_NOT_FOUND",
            f"{path}:5: providers.p.auth.type: no auth injector named 'oauth'; installed: {auth}",
        ),
        (
            "PARSER_NOT_FOUND",
            f"{path}:7: providers.p.operators.a.parser: no parser named 'protobuf'; installed: none",
        ),
        (
            "PARSER_NOT_FOUND",
            f"{path}:8: providers.p.operators.b.parser: no parser named 'sse'; installed: none",
        ),
        (
            "TOKENIZER_NOT_FOUND",
            f"{path}:10: models.m.tokenizer: no tokenizer named 'tiktoken'; installed: {tokenizers}",
        ),
    ]


def test_samples_are_all_valid() -> None:
    for path in sorted(Path(SAMPLES).iterdir()):
        _manifest, _doc, issues = parse_manifest(path.read_bytes(), str(path), {})
        assert issues == [], path


# -- properties ----------------------------------------------------------------------------


@given(manifest_documents(), st.sampled_from(["yaml-block", "yaml-flow", "json"]))
def test_any_valid_document_loads_to_the_same_values(document: dict[str, Any], style: str) -> None:
    if style == "json":
        text = json.dumps(document)
    else:
        text = yaml.safe_dump(document, default_flow_style=style == "yaml-flow", allow_unicode=True)
    manifest, _doc, issues = parse_manifest(text, "m.yaml", env={})
    assert issues == []
    assert manifest is not None
    assert cattrs.Converter().unstructure(manifest) == cattrs.Converter().unstructure(
        converter().structure(document, Manifest)
    )
    for name, model in document["models"].items():
        loaded = manifest.models[name]
        assert loaded.provider == model["provider"]
        for key, value in model.get("limits", {}).items():
            assert getattr(loaded.limits, key) == value


@given(manifest_documents(), st.data())
def test_an_unknown_key_anywhere_is_reported_at_its_path(
    document: dict[str, Any], data: st.DataObject
) -> None:
    places: list[tuple[str, ...]] = [()]
    places += [("providers", p) for p in document["providers"]]
    places += [("models", m) for m in document["models"]]
    places += [("models", m, "limits") for m, v in document["models"].items() if "limits" in v]
    place = data.draw(st.sampled_from(places))
    target = document
    for step in place:
        target = target[step]
    target["zzz_unknown"] = 1
    _m, _d, issues = parse_manifest(yaml.safe_dump(document), "m.yaml", env={})
    assert [i.path for i in issues] == [".".join((*place, "zzz_unknown"))]
    assert issues[0].message.startswith("unknown field 'zzz_unknown'")
    assert issues[0].line is not None
