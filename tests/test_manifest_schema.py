"""The JSON Schema generated from the manifest classes, and the copy committed in docs/."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
import yaml

from modelwire._manifest.model import Manifest
from modelwire._manifest.schema import manifest_schema
from modelwire._manifest.sources import builtin_names
from modelwire._manifest.structure import parse_manifest

from core_helpers import ROOT

COMMITTED = ROOT / "docs" / "manifest.schema.json"
SAMPLES = sorted((ROOT / "tests" / "fixtures" / "manifests").iterdir())
BUILTINS = [ROOT / "manifests" / f"{name}.yaml" for name in builtin_names()]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_up_to_date() -> None:
    expected = json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"
    assert COMMITTED.read_text(encoding="utf-8") == expected, (
        "docs/manifest.schema.json is stale; regenerate it with "
        "`modelwire schema -o docs/manifest.schema.json`"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text(encoding="utf-8")))


def _classes(cls: type, seen: dict[str, type]) -> dict[str, type]:
    for field in attrs.fields(cls):
        for t in [
            typing.get_type_hints(cls)[field.name],
            *_args(typing.get_type_hints(cls)[field.name]),
        ]:
            if attrs.has(t) and t.__name__ not in seen:
                seen[t.__name__] = t
                _classes(t, seen)
    return seen


def _args(t: Any) -> list[Any]:
    out = []
    for a in typing.get_args(t):
        out += [a, *_args(a)]
    return out


def test_schema_covers_every_class_and_field_with_its_doc() -> None:
    schema = manifest_schema()
    classes = _classes(Manifest, {})
    assert sorted(schema["$defs"]) == sorted(classes)
    for name, cls in [("Manifest", Manifest), *classes.items()]:
        node = schema if cls is Manifest else schema["$defs"][name]
        assert node["additionalProperties"] is False, name
        assert list(node["properties"]) == [f.name for f in attrs.fields(cls)], name
        for field in attrs.fields(cls):
            assert node["properties"][field.name]["description"] == field.metadata["doc"]
        required = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
        assert node.get("required", []) == required, name


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in SAMPLES + BUILTINS])
def test_valid_manifests_validate_against_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(document)) == []


@pytest.mark.parametrize(
    ("document", "schema_error", "loader_path"),
    [
        pytest.param({}, ("", "required"), None, id="no-version"),
        pytest.param({"version": 2}, ("version", "const"), "version", id="version-2"),
        pytest.param(
            {"version": 1, "model": {}},
            ("", "additionalProperties"),
            "model",
            id="unknown-top-level-key",
        ),
        pytest.param(
            {"version": 1, "models": {"m": {}}},
            ("models.m", "required"),
            "models.m.provider",
            id="model-without-provider",
        ),
        pytest.param(
            {"version": 1, "models": {"m": {"provider": "p", "limits": {"rpm": "fast"}}}},
            ("models.m.limits.rpm", "anyOf"),  # int | None
            "models.m.limits.rpm",
            id="rpm-not-an-integer",
        ),
        pytest.param(
            {"version": 1, "models": {"m": {"provider": "p", "limits": {"rpm": True}}}},
            ("models.m.limits.rpm", "anyOf"),  # int | None
            "models.m.limits.rpm",
            id="rpm-boolean",
        ),
        pytest.param(
            {"version": 1, "models": {"m": {"provider": "p", "limits": {"mode": "later"}}}},
            ("models.m.limits.mode", "enum"),
            "models.m.limits.mode",
            id="literal",
        ),
        pytest.param(
            {
                "version": 1,
                "providers": {
                    "p": {"base_url": "http://x", "operators": {"g": {"path": "/x", "strem": True}}}
                },
            },
            ("providers.p.operators.g", "additionalProperties"),
            "providers.p.operators.g.strem",
            id="unknown-operator-key",
        ),
    ],
)
def test_schema_and_loader_reject_the_same_documents(
    validator: jsonschema.Draft202012Validator,
    document: dict[str, Any],
    schema_error: tuple[str, str],
    loader_path: str | None,
) -> None:
    errors = {
        (".".join(map(str, e.absolute_path)), e.validator) for e in validator.iter_errors(document)
    }
    assert schema_error in errors
    _m, _d, issues = parse_manifest(json.dumps(document), "m.json", env={})
    assert loader_path in [i.path for i in issues]


def test_schema_command_prints_the_committed_schema(cli: Any) -> None:
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")


def test_schema_command_writes_a_file(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = cli("schema", "-o", str(out))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert json.loads(out.read_text(encoding="utf-8")) == manifest_schema()
