"""The installed ``modelwire`` console script: plugins, check, schema, frames.

Every test runs the real script in a subprocess. Bad input must give readable
``error:`` lines and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import modelwire
from modelwire._manifest.model import Model
from modelwire._manifest.sources import builtin_names

from core_helpers import BROKEN, CLASH, CLEAN_PLUGINS, PARSER_DISTS, ROOT, UPPER

SAMPLES = ROOT / "tests" / "fixtures" / "manifests"
EXAMPLE_SSE = ROOT / "examples" / "openai-chat.sse"


def lines(text: str) -> list[str]:
    return text.splitlines()


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"modelwire {modelwire.__version__}\n")


def test_no_command_prints_usage(cli: Any) -> None:
    result = cli()
    assert result.returncode == 2
    assert "usage: modelwire" in result.stderr


def test_python_dash_m(cli: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelwire", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, f"modelwire {modelwire.__version__}\n")


# -- plugins ---------------------------------------------------------------------------------------


def test_plugins_lists_every_hook_with_distribution_and_version(cli: Any) -> None:
    result = cli("plugins")
    assert (result.returncode, result.stderr) == (0, "")
    out = lines(result.stdout)
    assert out[0] == "parsers:"
    # the name column is as wide as the longest parser name installed
    assert any(
        line.startswith("  upper-lines ")
        and line.split() == ["upper-lines", "modelwire-upper-lines", "0.1.0", "[text/x-upper-lines]"]
        for line in out
    )
    assert any(
        line.startswith("  sse ") and "modelwire-sse" in line and "[text/event-stream]" in line
        for line in out
    )
    assert "auth injectors:" in out
    version = modelwire.__version__
    for name in ("bearer", "header", "none", "query"):
        assert any(line.split() == [name, "modelwire", version] for line in out), name


def test_plugins_json(cli: Any) -> None:
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["errors"] == []
    rows = {(r["kind"], r["name"]): r for r in doc["registrations"]}
    assert rows[("parser", "upper-lines")] == {
        "kind": "parser",
        "name": "upper-lines",
        "plugin": "upper-lines",
        "distribution": UPPER,
        "version": "0.1.0",
        "media_types": ["text/x-upper-lines"],
        "conflict": False,
    }
    assert {name for kind, name in rows if kind == "parser"} >= {
        "sse",
        "jsonchunk",
        "text",
        "upper-lines",
    }
    assert rows[("auth_injector", "bearer")]["distribution"] == "modelwire"
    assert "media_types" not in rows[("auth_injector", "bearer")]


def test_plugins_respects_modelwire_load_plugins(cli: Any) -> None:
    result = cli("plugins", "--json", plugins=(UPPER,))
    names = [r["name"] for r in json.loads(result.stdout)["registrations"] if r["kind"] == "parser"]
    assert names == ["upper-lines"]


def test_plugins_reports_a_broken_plugin_and_a_clash_but_lists_the_rest(cli: Any) -> None:
    result = cli("plugins", plugins=None)  # everything installed in this venv
    no_traceback(result)
    assert result.returncode == 1
    errors = lines(result.stderr)
    assert len(errors) == 2
    assert errors[0].startswith(
        f"error: plugin 'broken' from distribution {BROKEN!r} failed to load: ImportError"
    )
    assert errors[1].startswith("error: parser name 'upper-lines' is claimed twice: by ")
    assert f"{UPPER} 0.1.0" in errors[1] and f"{CLASH} 0.2.0" in errors[1]
    out = lines(result.stdout)
    assert any(line.split()[:2] == ["lower-lines", CLASH] for line in out)
    assert sum(line.endswith("(conflict)") for line in out) == 2


def test_plugins_json_reports_errors(cli: Any) -> None:
    result = cli("plugins", "--json", plugins=(BROKEN, UPPER, CLASH))
    assert result.returncode == 1
    errors = json.loads(result.stdout)["errors"]
    assert [(e["code"], e["plugin"], e["distribution"]) for e in errors] == [
        ("PLUGIN_LOAD_FAILED", "broken", BROKEN),
        ("PLUGIN_CONFLICT", None, None),
    ]


# -- check -------------------------------------------------------------------------------------------


def test_check_good_manifest(cli: Any) -> None:
    path = SAMPLES / "design-sketch.yaml"
    result = cli("check", str(path))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"ok: {path}: 1 provider, 2 models\n"


def test_check_loads_all_sources_as_one_catalog(cli: Any, write: Any) -> None:
    providers = write("p.yaml", "version: 1\nproviders: {p: {base_url: 'http://x'}}\n")
    models = write("m.yaml", "version: 1\nmodels: {m: {provider: p}}\n")
    result = cli("check", str(models), str(providers))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"ok: {models}, {providers}: 1 provider, 1 model\n"


def test_check_prints_every_error_and_exits_1(cli: Any, write: Any) -> None:
    path = write(
        "bad.yaml",
        "version: 1\nmodels:\n  a:\n    provider: p\n    limits: {rpm: fast}\n    colour: red\n"
        "  b: {provider: [5]}\n",
    )
    result = cli("check", str(path))
    no_traceback(result)
    assert result.returncode == 1
    assert result.stdout == ""
    *found, reference = lines(result.stderr)
    assert found == [
        f"error: {path}:5: models.a.limits.rpm: expected an integer, got 'fast'",
        f"error: {path}:6: models.a.colour: unknown field 'colour'; allowed: "
        + ", ".join(f.name for f in attrs.fields(Model)),
        f"error: {path}:7: models.b.provider: expected a string, got a list",
    ]
    # The same run goes on past the bad fields to the references.
    assert reference.startswith(f"error: {path}:4: models.a.provider: unknown provider 'p'; known: ")


def test_check_good_and_bad_together_fails(cli: Any, write: Any) -> None:
    bad = write("bad.yaml", "version: 7\n")
    result = cli("check", str(SAMPLES / "design-sketch.yaml"), str(bad))
    assert result.returncode == 1
    assert lines(result.stderr) == [
        f"error: {bad}:1: version: unsupported manifest version 7; this modelwire reads 1"
    ]


def test_check_unset_variable(cli: Any, write: Any) -> None:
    path = write("env.yaml", "version: 1\nproviders:\n  p: {base_url: '${MW_CHECK_URL}'}\n")
    result = cli("check", str(path))
    assert result.returncode == 1
    assert lines(result.stderr) == [
        f"error: {path}:3: providers.p.base_url: environment variable MW_CHECK_URL is not set"
    ]
    result = cli("check", str(path), env={"MW_CHECK_URL": "http://from-env"})
    assert result.returncode == 0, result.stderr


def test_check_unknown_parser_names_the_place(cli: Any) -> None:
    path = SAMPLES / "upper-lines.yaml"
    result = cli("check", str(path), plugins=PARSER_DISTS)
    no_traceback(result)
    assert result.returncode == 1
    assert lines(result.stderr) == [
        f"error: {path}:9: providers.shouty.operators.generate.parser: no parser named 'upper-lines'; "
        "installed: jsonchunk, sse, text"
    ]


def test_check_with_the_third_party_parser_installed(cli: Any) -> None:
    result = cli("check", str(SAMPLES / "upper-lines.yaml"), plugins=(UPPER,))
    assert result.returncode == 0, result.stderr


def test_check_no_plugins_skips_plugin_names(cli: Any) -> None:
    result = cli("check", "--no-plugins", str(SAMPLES / "upper-lines.yaml"), plugins=())
    assert result.returncode == 0, result.stderr


def test_check_clashing_parser_name(cli: Any) -> None:
    result = cli("check", str(SAMPLES / "upper-lines.yaml"), plugins=(UPPER, CLASH))
    assert result.returncode == 1
    assert "parser name 'upper-lines' is claimed twice" in result.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "builtin:no-such",
            "error: no built-in manifest 'no-such'; built in: ",
            id="unknown-builtin",
        ),
        pytest.param(
            "/no/such/file.yaml",
            "error: /no/such/file.yaml: cannot read manifest: ",
            id="missing-file",
        ),
    ],
)
def test_check_bad_sources(cli: Any, source: str, message: str) -> None:
    result = cli("check", source)
    no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(lines(result.stderr)) == 1


@pytest.mark.parametrize(
    "name",
    builtin_names() or [pytest.param("none", marks=pytest.mark.skip("no built-in manifests yet"))],
)
def test_check_builtin_manifests(cli: Any, name: str) -> None:
    result = cli("check", f"builtin:{name}", plugins=CLEAN_PLUGINS)
    assert result.returncode == 0, result.stderr


# -- frames ------------------------------------------------------------------------------------------


def frames(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(result.stdout)]


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1024, 1 << 20])
def test_frames_sse_example_at_any_chunk_size(cli: Any, chunk_size: int) -> None:
    result = cli("frames", "--parser", "sse", "--chunk-size", str(chunk_size), str(EXAMPLE_SSE))
    assert (result.returncode, result.stderr) == (0, "")
    out = frames(result)
    assert out == frames(cli("frames", "--parser", "sse", str(EXAMPLE_SSE)))
    assert out[-1] == {"event": "message", "data": "[DONE]", "id": None, "retry": None}
    assert all(set(f) == {"event", "data", "id", "retry"} for f in out)


@pytest.mark.parametrize(
    ("parser", "data", "expected"),
    [
        pytest.param(
            "sse",
            b"retry: 250\nid: 7\nevent: delta\ndata: a\ndata: b\n\n: comment\ndata: c\n\n",
            [
                {"event": "delta", "data": "a\nb", "id": "7", "retry": 250},
                {"event": "message", "data": "c", "id": "7", "retry": 250},
            ],
            id="sse",
        ),
        pytest.param(
            "jsonchunk",
            b'{"a": 1}\r\n\n[1, "two"]\n"last"',
            [
                {"event": None, "data": {"a": 1}, "id": None, "retry": None},
                {"event": None, "data": [1, "two"], "id": None, "retry": None},
                {"event": None, "data": "last", "id": None, "retry": None},
            ],
            id="jsonchunk",
        ),
        pytest.param(
            "jsonchunk",
            b'{\n  "pretty": true,\n  "n": [1, 2]\n}\n',
            [{"event": None, "data": {"pretty": True, "n": [1, 2]}, "id": None, "retry": None}],
            id="jsonchunk-single-document",
        ),
        pytest.param(
            "upper-lines",
            b"one\ntwo",
            [
                {"event": None, "data": "ONE", "id": None, "retry": None},
                {"event": None, "data": "TWO", "id": None, "retry": None},
            ],
            id="upper-lines",
        ),
    ],
)
def test_frames_for_each_parser(
    cli: Any, parser: str, data: bytes, expected: list[dict[str, Any]]
) -> None:
    for chunk_size in (1, 3, 4096):
        result = cli("frames", "--parser", parser, "--chunk-size", str(chunk_size), "-", input=data)
        assert (result.returncode, result.stderr) == (0, ""), chunk_size
        assert frames(result) == expected, chunk_size


def test_frames_text_joins_to_the_input_at_any_chunk_size(cli: Any) -> None:
    text = "h\u00e9llo w\u00f6rld \u20ac \U0001f600\nline two"
    for chunk_size in (1, 2, 5, 4096):
        result = cli(
            "frames", "--parser", "text", "--chunk-size", str(chunk_size), input=text.encode()
        )
        assert result.returncode == 0, result.stderr
        out = frames(result)
        assert "".join(f["data"] for f in out) == text
        assert all(f["event"] is None and f["id"] is None for f in out)


@pytest.mark.parametrize(
    ("parser", "data", "printed", "error"),
    [
        pytest.param(
            "jsonchunk",
            b'{"a": 1}\n{"b": 2}\n{bad\n',
            2,
            "error: invalid JSON on line 3: Expecting property name enclosed in double quotes (line=3 offset=18)",
            id="jsonchunk-invalid-json",
        ),
        pytest.param(
            "text",
            b"caf\xc3\xa9 \xff tail",
            1,
            "error: invalid UTF-8 in text stream: invalid start byte (line=1 offset=6)",
            id="text-invalid-utf8",
        ),
        pytest.param(
            "text",
            b"ends inside \xe2\x82",
            1,
            "error: invalid UTF-8 in text stream: unexpected end of data (line=1 offset=12)",
            id="text-truncated",
        ),
        pytest.param(
            "upper-lines",
            b"ok\nbad \xff\n",
            1,
            "error: invalid UTF-8: invalid start byte (offset=7)",
            id="upper-lines-invalid-utf8",
        ),
    ],
)
def test_frames_parse_error_is_one_line_with_the_offset(
    cli: Any, parser: str, data: bytes, printed: int, error: str
) -> None:
    for chunk_size in (1, 4096):
        result = cli("frames", "--parser", parser, "--chunk-size", str(chunk_size), input=data)
        no_traceback(result)
        assert result.returncode == 1
        assert lines(result.stderr) == [error]
        if parser != "text":  # text frames follow the chunking; the others do not
            assert len(frames(result)) == printed


def test_frames_sse_line_over_the_limit(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "big.sse"
    path.write_bytes(b"data: ok\n\ndata: " + b"x" * (16 * 1024 * 1024 + 1) + b"\n\n")
    result = cli("frames", "--parser", "sse", "--chunk-size", str(1 << 20), str(path))
    no_traceback(result)
    assert result.returncode == 1
    assert frames(result) == [{"event": "message", "data": "ok", "id": None, "retry": None}]
    [error] = lines(result.stderr)
    assert error.startswith("error: SSE line is longer than max_line_size")
    assert error.endswith("(line=3 offset=10)")


def test_frames_unknown_parser_lists_installed(cli: Any) -> None:
    result = cli("frames", "--parser", "ssee", input=b"", plugins=(*PARSER_DISTS, UPPER))
    assert result.returncode == 1
    assert lines(result.stderr) == [
        "error: no parser named 'ssee'; installed: jsonchunk, sse, text, upper-lines (did you mean 'sse'?)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--chunk-size", "0"),
            "error: --chunk-size must be at least 1",
            id="chunk-size-0",
        ),
        pytest.param(
            ("/no/such.sse",),
            "error: cannot open /no/such.sse: No such file or directory",
            id="missing-file",
        ),
    ],
)
def test_frames_bad_arguments(cli: Any, args: tuple[str, ...], message: str) -> None:
    result = cli("frames", "--parser", "sse", *args, input=b"")
    no_traceback(result)
    assert result.returncode == 1
    assert lines(result.stderr) == [message]


def test_check_over_the_builtins_as_call_loads_them(cli: Any, write: Any) -> None:
    if "openai" not in builtin_names():
        pytest.skip("no built-in openai manifest")
    mine = write(
        "mine.yaml",
        "version: 1\nproviders:\n  openai: {base_url: 'http://127.0.0.1:1/v1'}\n"
        "models:\n  my-gpt: {provider: openai}\n",
    )
    assert cli("check", str(mine)).returncode == 0
    result = cli("check", "builtin:*", str(mine))
    assert result.returncode == 0, result.stderr
    # check sees what call sees: a model of a built-in provider checks alone.
    model_only = write("model-only.yaml", "version: 1\nmodels:\n  my-gpt: {provider: openai}\n")
    result = cli("check", str(model_only))
    assert (result.returncode, result.stdout) == (0, f"ok: {model_only}: 0 providers, 1 model\n")
    assert cli("check", "builtin:openai", str(model_only)).returncode == 0
