"""A string field keeps the text it was written with, even where YAML reads a
number or a boolean: ``id: 0E0`` (which ``yaml.safe_dump`` writes unquoted
for the string "0E0") is the model id "0E0", not the float 0.0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import modelwire

ENV = {"OPENAI_API_KEY": "k"}


def load_ids(path: Path, ids: dict[str, str]) -> dict[str, str]:
    doc = {"version": 1, "models": {name: {"provider": "openai", "id": i} for name, i in ids.items()}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    # Only the provider the models name: the property loads it once per example.
    catalog = modelwire.load_manifests("builtin:openai", path, env=ENV)
    return {name: catalog.models[name].id for name in ids}


@pytest.mark.parametrize("model_id", ["0E0", "1e5", "12", "0x1F", "1_000", "3.0", "true", "yes", "off", ".5", "-7"])
def test_a_string_that_looks_like_a_number_round_trips(tmp_path: Path, model_id: str) -> None:
    assert load_ids(tmp_path / "models.yaml", {"m": model_id}) == {"m": model_id}


def test_unquoted_scalars_keep_their_source_text(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "version: 1\nmodels:\n  a: {provider: openai, id: 0E0}\n  b: {provider: openai, id: 007}\n"
        "  c: {provider: openai, id: 1.50, retry: {attempts: 2}}\n",
        encoding="utf-8",
    )
    catalog = modelwire.load_manifests("builtin:*", path, env=ENV)
    assert [catalog.models[n].id for n in "abc"] == ["0E0", "007", "1.50"]
    assert catalog.models["c"].retry.attempts == 2  # a number field still reads a number


def test_a_number_in_a_number_field_is_not_turned_into_text(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("version: 1\nmodels:\n  a: {provider: openai, retry: {attempts: '2'}}\n", encoding="utf-8")
    with pytest.raises(modelwire.ManifestError, match=r"models\.a\.retry\.attempts: expected an integer"):
        modelwire.load_manifests("builtin:*", path, env=ENV)


@given(st.text(alphabet="0123456789eE+-._xXabcdefoOtTrRuUnNlLyYsS", min_size=1, max_size=8))
def test_any_model_id_survives_safe_dump(tmp_path_factory: pytest.TempPathFactory, model_id: str) -> None:
    path = tmp_path_factory.mktemp("ids") / "models.yaml"
    assert load_ids(path, {"m": model_id}) == {"m": model_id}
