"""Manifests from elsewhere: what a URL or git source may read, replace, and cost.

Each test replays an attack from a probe against a real loopback HTTP server,
a real git repository, a real file or the real console script.
"""

from __future__ import annotations

import gzip
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelwire._manifest.yaml as manifest_yaml
from modelwire import ManifestError, NotFoundError, load_manifests
from modelwire._manifest.sources import FetchLimits, builtin_names

SECRET = "s3cr3t-AKIA-do-not-leak"
ENV = {"SECRET_ACCESS_KEY": SECRET, "OPENAI_API_KEY": "sk-allowed", "HOME": "/home/someone"}


def messages(exc: ManifestError) -> list[str]:
    return [str(i) for i in exc.issues]


# -- sources that serve one text: a real HTTP server and a real git repository -----------------


@pytest.fixture(params=["http", "git"])
def remote(request: pytest.FixtureRequest, http_dir: tuple[str, Path]) -> Any:
    """``remote(text)`` -> a source (http:// or git+file://) serving ``text`` as m.yaml."""
    if request.param == "http":
        base, root = http_dir

        def serve(text: str) -> str:
            (root / "m.yaml").write_text(text, encoding="utf-8")
            return f"{base}/m.yaml"

        return serve
    if request.param == "git":
        request.applymarker(pytest.mark.git)
        bare_repo = request.getfixturevalue("bare_repo")

        def commit(text: str) -> str:
            bare, _sha = bare_repo({"m.yaml": text})
            return f"git+file://{bare}@main#m.yaml"

        return commit
    raise AssertionError(request.param)  # pragma: no cover


def provider(name: str = "p", base_url: str = "http://127.0.0.1:1", **fields: str) -> str:
    extra = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return f"version: 1\nproviders:\n  {name}:\n    base_url: {base_url}\n{extra}"


# -- 1. environment allow-list ------------------------------------------------------------------

DENIED = "is not in the allow-list for manifests from a URL or git"


@pytest.mark.parametrize(
    ("text", "kwargs", "path", "line"),
    [
        pytest.param(
            provider(headers="{x-leak: '${SECRET_ACCESS_KEY}'}"),
            {},
            "providers.p.headers.x-leak",
            5,
            id="header",
        ),
        pytest.param(
            provider(base_url="http://127.0.0.1:1/${SECRET_ACCESS_KEY}"),
            {"allow_env": ["OPENAI_API_KEY"]},
            "providers.p.base_url",
            4,
            id="url-other-name-allowed",
        ),
        pytest.param(
            provider(base_url="'${SECRET_ACCESS_KEY:-http://127.0.0.1:1}'"),
            {},
            "providers.p.base_url",
            4,
            id="even-with-a-default",
        ),
        pytest.param(
            provider(auth="{type: bearer, env: SECRET_ACCESS_KEY}"),
            {"allow_env": ["OPENAI_API_KEY"]},
            "providers.p.auth.env",
            5,
            id="auth-env",
        ),
    ],
)
def test_remote_manifest_reads_only_allowed_variables(
    remote: Any, text: str, kwargs: dict[str, Any], path: str, line: int
) -> None:
    source = remote(text)
    with pytest.raises(ManifestError) as info:
        load_manifests(source, env=ENV, **kwargs)
    [issue] = info.value.issues
    assert issue.file == source
    assert (issue.path, issue.line) == (path, line)
    assert "SECRET_ACCESS_KEY" in issue.message and DENIED in issue.message
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [
        pytest.param(ENV, {"allow_env": ["OPENAI_API_KEY"]}, id="allow_env"),
        pytest.param({**ENV, "MODELWIRE_REMOTE_ENV": "HOME, OPENAI_API_KEY"}, {}, id="env-variable"),
    ],
)
def test_allowed_variables_expand_in_remote_manifests(
    remote: Any, env: dict[str, str], kwargs: dict[str, Any]
) -> None:
    source = remote(
        provider(headers="{x-key: '${OPENAI_API_KEY}'}", auth="{type: bearer, env: OPENAI_API_KEY}")
    )
    catalog = load_manifests(source, env=env, **kwargs)
    assert catalog.providers["p"].headers == {"x-key": "sk-allowed"}
    assert catalog.providers["p"].auth.env == "OPENAI_API_KEY"


def test_local_manifests_still_read_any_variable(write) -> None:
    path = write("m.yaml", provider(headers="{x: '${SECRET_ACCESS_KEY}'}", auth="{type: bearer, env: ANY}"))
    assert load_manifests(path, env=ENV).providers["p"].headers == {"x": SECRET}


# -- 1. no silent replacement ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overridable", "allow", "replaced"),
    [
        pytest.param(["builtin:openai"], False, False, id="overridable-builtin-is-kept"),
        pytest.param([], False, False, id="plain-earlier-source-is-kept"),
        pytest.param(["builtin:openai"], True, True, id="caller-opts-in"),
    ],
)
def test_remote_manifest_never_silently_replaces_a_provider(
    remote: Any, overridable: list[str], allow: bool, replaced: bool
) -> None:
    source = remote(provider("openai", base_url="http://127.0.0.1:9/steal"))
    kwargs = {"overridable": overridable, "allow_remote_override": allow}
    if replaced:
        catalog = load_manifests("builtin:openai", source, env=ENV, **kwargs)
        assert catalog.providers["openai"].base_url == "http://127.0.0.1:9/steal"
        return
    with pytest.raises(ManifestError) as info:
        load_manifests("builtin:openai", source, env=ENV, **kwargs)
    [issue] = info.value.issues
    assert (issue.file, issue.path, issue.line) == (source, "providers.openai", 3)
    assert "would replace the one in builtin:openai" in issue.message or "defined twice" in issue.message


def test_remote_model_is_not_replaced_either(remote: Any, write) -> None:
    local = write("m.yaml", provider() + "models:\n  m: {provider: p}\n")
    source = remote("version: 1\nmodels:\n  m: {provider: p}\n")
    with pytest.raises(ManifestError) as info:
        load_manifests(local, source, env=ENV, overridable=[local])
    assert [(i.path, "would replace" in i.message) for i in info.value.issues] == [("models.m", True)]


def test_local_override_of_a_builtin_still_works(write) -> None:
    mine = write("mine.yaml", provider("openai", base_url="http://127.0.0.1:9/v1"))
    catalog = load_manifests("builtin:openai", mine, env=ENV, overridable=["builtin:openai"])
    assert catalog.providers["openai"].base_url == "http://127.0.0.1:9/v1"


# -- 2. builtin: takes a name, not a path ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../../x", "../manifests/openai", "{abs}", "openai/../openai", "OpenAI", "open ai", ".openai", "-x"],
)
def test_builtin_source_is_a_name_not_a_path(name: str, write) -> None:
    target = write("x.yaml", provider("stolen"))
    name = name.replace("{abs}", str(target.with_suffix("")))
    with pytest.raises(NotFoundError) as info:
        load_manifests(f"builtin:{name}", env=ENV)
    assert info.value.code == "MANIFEST_NOT_FOUND"
    assert "bad built-in manifest name" in info.value.message
    assert ", ".join(builtin_names()) in info.value.message


# -- 3. URL limits: a hostile loopback server ---------------------------------------------------

OK_YAML = provider().encode()
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 KiB on the wire, 64 MiB inflated


class _Hostile(http.server.BaseHTTPRequestHandler):
    stop: threading.Event
    port: int

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        other = f"http://localhost:{self.port}"
        routes: dict[str, tuple[int, bytes, dict[str, str]]] = {
            "/ok.yaml": (200, OK_YAML, {}),
            "/ok.gz": (200, gzip.compress(OK_YAML), {"Content_Encoding": "gzip"}),
            "/same-host": (302, b"", {"Location": "/ok.yaml"}),
            "/other-host": (302, b"", {"Location": f"{other}/ok.yaml"}),
            "/loop": (302, b"", {"Location": "/loop"}),
            "/bomb": (200, BOMB, {"Content_Encoding": "gzip"}),
            "/secret-page": (200, f"aws_secret_access_key: {SECRET}\n".encode(), {}),
            "/secret-json": (200, f'{{"version": 1, "Token": "{SECRET}"}}'.encode(), {}),
            "/secret-broken": (200, f"key: {SECRET}\n  - [\n".encode(), {}),
            "/secret-500": (500, f"internal: {SECRET}".encode(), {}),
        }
        if self.path == "/drip":
            self.send_response(200)
            self.end_headers()
            try:
                while not self.stop.wait(0.3):
                    self.wfile.write(b"#")
                    self.wfile.flush()
            except OSError:
                pass
            return
        status, body, headers = routes.get(self.path, (404, b"", {}))
        self._send(status, body, **headers)


@pytest.fixture
def hostile() -> Iterator[str]:
    stop = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    _Hostile.stop, _Hostile.port = stop, server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


@pytest.mark.parametrize(
    ("path", "limits", "error"),
    [
        pytest.param("/ok.gz", FetchLimits(), None, id="gzip-manifest-loads"),
        pytest.param("/same-host", FetchLimits(), None, id="same-host-redirect"),
        pytest.param("/other-host", FetchLimits(), "redirect to another host refused", id="other-host"),
        pytest.param(
            "/other-host", FetchLimits(redirect_hosts={"localhost"}), None, id="other-host-allowed"
        ),
        pytest.param("/loop", FetchLimits(), "more than 5 redirects", id="redirect-loop"),
        pytest.param("/bomb", FetchLimits(), "larger than 4194304 bytes once decompressed", id="gzip-bomb"),
        pytest.param(
            "/ok.yaml", FetchLimits(max_bytes=10), "larger than 10 bytes", id="plain-body-over-cap"
        ),
        pytest.param("/drip", FetchLimits(deadline=1.0), "no complete response within 1 s", id="slow-drip"),
    ],
)
def test_url_fetch_limits(hostile: str, path: str, limits: FetchLimits, error: str | None) -> None:
    start = time.monotonic()
    if error is None:
        assert load_manifests(hostile + path, env=ENV, limits=limits).providers.keys() == {"p"}
        return
    with pytest.raises(ManifestError) as info:
        load_manifests(hostile + path, env=ENV, limits=limits)
    [issue] = info.value.issues
    assert issue.file == hostile + path
    assert issue.message.startswith("cannot read manifest: fetching failed: ")
    assert error in issue.message
    assert time.monotonic() - start < 20  # the drip stops at the 1 s deadline, not never


@pytest.mark.parametrize("path", ["/secret-page", "/secret-json", "/secret-broken", "/secret-500"])
def test_errors_never_echo_a_fetched_body(hostile: str, path: str) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(hostile + path, env=ENV)
    text = "\n".join(messages(info.value))
    assert SECRET not in text
    assert "Token" not in text and "aws_secret" not in text


def test_git_file_over_the_cap_is_refused(bare_repo) -> None:
    bare, _sha = bare_repo({"m.yaml": provider() + "# " + "x" * 100 + "\n"})
    source = f"git+file://{bare}@main#m.yaml"
    with pytest.raises(ManifestError) as info:
        load_manifests(source, env=ENV, limits=FetchLimits(max_bytes=64))
    [issue] = info.value.issues
    assert "bytes; the limit is 64" in issue.message


# -- 4. ${VAR} expansion is bounded -------------------------------------------------------------


def anchor_bomb(refs: int, per_string: int = 100) -> str:
    """One header holding ``per_string`` x ``${HOME}``, reused by ``refs`` more headers."""
    return (
        "version: 1\nproviders:\n  p:\n    base_url: http://127.0.0.1:1\n    headers:\n"
        + '      h0: &a "'
        + "${HOME}" * per_string
        + '"\n'
        + "".join(f"      h{i}: *a\n" for i in range(1, refs + 1))
    )


@pytest.mark.parametrize(
    ("refs", "refused"),
    [pytest.param(10, False, id="under-the-bound"), pytest.param(2000, True, id="anchor-bomb")],
)
def test_expansion_is_bounded(
    write, monkeypatch: pytest.MonkeyPatch, refs: int, refused: bool
) -> None:
    # 2,000 uses of 100 x ${HOME} (13 chars) expand to 2.6 M characters from a 40 kB file.
    monkeypatch.setattr(manifest_yaml, "MAX_EXPANDED_CHARS", 1_000_000)
    path = write("bomb.yaml", anchor_bomb(refs))
    if not refused:
        headers = load_manifests(path, env=ENV).providers["p"].headers
        assert len(headers) == refs + 1 and headers["h3"] == "/home/someone" * 100
        return
    with pytest.raises(ManifestError) as info:
        load_manifests(path, env=ENV)
    [issue] = info.value.issues
    assert (issue.file, issue.line) == (str(path), 1)
    assert "expansion produces more than 1000000 characters" in issue.message


def test_expansion_bound_default_is_real() -> None:
    assert manifest_yaml.MAX_EXPANDED_CHARS == 16 * 1024 * 1024


# -- 5. a huge integer is a typed error at its line, also from the console script --------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("version: 1\nmodels:\n  m: {provider: p, limits: {rpm: " + "9" * 5000 + "}}\n", 3, id="value"),
        pytest.param("version: 1\nproviders:\n  ? " + "7" * 5000 + "\n  : {base_url: x}\n", 3, id="key"),
        pytest.param("version: " + "1" * 4301 + "\n", 1, id="version"),
    ],
)
def test_huge_integer_is_a_manifest_error_from_the_cli(write, text: str, line: int) -> None:
    path = write("big.yaml", text)
    script = Path(sys.executable).with_name("modelwire")
    proc = subprocess.run(
        [str(script), "check", "--no-plugins", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {path}:{line}: ")
    assert "cannot read this integer" in proc.stderr
    with pytest.raises(ManifestError) as info:
        load_manifests(path, env=ENV)
    assert info.value.issues[0].line == line
