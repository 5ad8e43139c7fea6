"""modelwire's pytest plugin (``modelwire.pytest_plugin``, entry point ``pytest11``).

The fixtures are used here directly, as any test suite in an environment with
modelwire installed gets them, and through ``pytester`` to see what a user's
run reports: a fresh pytest process finding the plugin by its entry point,
per-test resets, and the failure messages of ``modelwire_feed`` and of a
runtime left open.
"""

from __future__ import annotations

import functools
import sys
from importlib import metadata
from typing import Any

import anyio
import pytest

import modelwire
from modelwire import Frame, ParseError, Plugins
from modelwire.pytest_plugin import (
    ChunkingFeeder,
    FeedResult,
    PluginsFactory,
    ReplayFactory,
    RuntimeFactory,
    chunkings,
    joined_text,
)
from modelwire.testing import ReplayServer, Reply, Script

from core_helpers import PARSER_DISTS, UPPER

pytest_plugins = ["pytester"]

SSE_MANIFEST = """\
version: 1
providers:
  p:
    base_url: ${BASE_URL}
    auth: {type: bearer, env: KEY, optional: true}
    operators:
      generate:
        path: /chat/completions
        parser: sse
        request: "{model: model, messages: messages, stream: `true`}"
        events:
          - data: "[DONE]"
            stop: true
          - each: "choices[].delta.content"
            emit: {type: text, text: "@"}
models:
  m: {provider: p}
"""


# -- the plugin is registered ------------------------------------------------------------------


def test_registered_through_the_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    eps = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "modelwire"]
    assert [ep.value for ep in eps] == ["modelwire.pytest_plugin"]
    assert eps[0].dist is not None and eps[0].dist.name == "modelwire"
    assert pytestconfig.pluginmanager.has_plugin("modelwire")


def test_importing_the_plugin_starts_and_imports_nothing_heavy() -> None:
    import subprocess

    code = (
        "import sys, threading, modelwire.pytest_plugin; "
        "heavy = {'httpx', 'anyio', 'yaml', 'cattrs', 'modelwire.testing', 'modelwire._runtime.client'}; "
        "print(sorted(heavy & set(sys.modules)), threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] 1"


# -- modelwire_replay ----------------------------------------------------------------------------


def test_replay_is_running_and_clean(modelwire_replay: ReplayServer) -> None:
    assert modelwire_replay.url_for("openai").startswith("http://127.0.0.1:")
    assert (modelwire_replay.pending, modelwire_replay.requests, modelwire_replay.seed) == (0, [], 0)


def test_replay_factory_starts_separate_servers(
    modelwire_replay_factory: ReplayFactory, modelwire_replay: ReplayServer
) -> None:
    srv = modelwire_replay_factory(seed=7, default=Reply(body=b"{}"))
    assert srv.seed == 7 and srv.port != modelwire_replay.port
    assert isinstance(srv.default, Reply)


def test_replay_factory_close_stops_its_servers() -> None:
    factory = ReplayFactory()
    srv = factory()
    port = srv.port
    factory.close()
    factory.close()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        srv.port  # noqa: B018
    assert port > 0


# -- modelwire_plugins ---------------------------------------------------------------------------


class _Shout:
    """A throwaway plugin object."""

    @modelwire.hookimpl
    def register_tokenizers(self, register: Any) -> None:
        register("shout", self)

    name = "shout"

    def count(self, text: str) -> int:
        return len(text)


def test_plugins_with_an_object_load_no_entry_points(modelwire_plugins: PluginsFactory) -> None:
    plugins = modelwire_plugins(_Shout())
    assert plugins.names("tokenizer") == ["approx", "shout"]
    assert plugins.names("parser") == []
    assert plugins is not modelwire.get_plugins()
    assert "shout" not in modelwire.get_plugins().names("tokenizer")


def test_plugins_by_name_load_those_entry_points(modelwire_plugins: PluginsFactory) -> None:
    plugins = modelwire_plugins("modelwire-sse", _Shout())
    assert plugins.names("parser") == ["sse"]
    assert plugins.get("parser", "sse").distribution == "modelwire-sse"
    assert "shout" in plugins.names("tokenizer")


def test_plugins_entry_points_true_loads_everything_installed(
    modelwire_plugins: PluginsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", ",".join(PARSER_DISTS))
    plugins = modelwire_plugins(entry_points=True)
    assert plugins.names("parser") == ["jsonchunk", "sse", "text"]


def test_plugins_modules_register_under_their_name(modelwire_plugins: PluginsFactory) -> None:
    import modelwire_text

    plugins = modelwire_plugins(modelwire_text)
    reg = plugins.get("parser", "text")
    assert (reg.plugin, reg.distribution) == ("modelwire_text", None)


# -- modelwire_runtime ---------------------------------------------------------------------------


def test_runtime_sync_from_yaml_text(modelwire_runtime: RuntimeFactory, modelwire_replay: ReplayServer) -> None:
    modelwire_replay.push(Script(text="Hi there"))
    rt = modelwire_runtime.sync(SSE_MANIFEST, env={"BASE_URL": modelwire_replay.url_for("openai")})
    assert isinstance(rt, modelwire.SyncRuntime)
    assert rt.generate("m", "Hello").text == "Hi there"
    assert modelwire_replay.requests[0].json["messages"][-1]["content"] == "Hello"


def test_runtime_async_closed_in_its_loop(
    modelwire_runtime: RuntimeFactory, modelwire_replay: ReplayServer
) -> None:
    modelwire_replay.push(Script(text="async"))
    rt = modelwire_runtime(SSE_MANIFEST, env={"BASE_URL": modelwire_replay.url_for("openai")})
    assert isinstance(rt, modelwire.Runtime)

    async def main() -> str:
        async with rt:
            return (await rt.generate("m", "Hello")).text

    assert anyio.run(main) == "async"


def test_runtime_from_a_mapping_and_a_plugin_list(
    modelwire_runtime: RuntimeFactory, modelwire_replay: ReplayServer
) -> None:
    manifest = {
        "version": 1,
        "providers": {
            "p": {
                "base_url": modelwire_replay.base_url,
                "operators": {
                    "generate": {
                        "path": "/x",
                        "parser": "text",
                        "events": [{"raw": True, "emit": {"type": "text", "text": "@"}}],
                    }
                },
            }
        },
        "models": {"m": {"provider": "p"}},
    }
    modelwire_replay.push(Reply(body="plain ünïcode".encode(), content_type="text/plain", stream=True))
    rt = modelwire_runtime.sync(manifest, plugins=["modelwire-text"])
    assert rt.runtime.plugins.names("parser") == ["text"]
    assert rt.generate("m", "x").text == "plain ünïcode"


def test_runtime_gets_its_own_plugins_and_an_empty_environment(
    modelwire_runtime: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", ",".join(PARSER_DISTS))
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(modelwire.ManifestError, match="BASE_URL"):
        modelwire_runtime(SSE_MANIFEST)  # the process environment is not read
    rt = modelwire_runtime(SSE_MANIFEST, env={"BASE_URL": "http://127.0.0.1:9"})
    assert rt.plugins is not modelwire.get_plugins()
    assert rt.env == {"BASE_URL": "http://127.0.0.1:9"}
    mine = Plugins(only=["modelwire-sse"])
    env = {"BASE_URL": "http://127.0.0.1:9"}
    assert modelwire_runtime(SSE_MANIFEST, env=env, plugins=mine).plugins is mine


def test_runtime_argument_errors(modelwire_runtime: RuntimeFactory) -> None:
    with pytest.raises(TypeError, match="at least one manifest"):
        modelwire_runtime()
    with pytest.raises(TypeError, match="wrap one name in a list"):
        modelwire_runtime(SSE_MANIFEST, env={"BASE_URL": "http://127.0.0.1:9"}, plugins="modelwire-sse")  # type: ignore[arg-type]


def test_runtime_unknown_parser_fails_when_built(modelwire_runtime: RuntimeFactory) -> None:
    with pytest.raises(modelwire.NotFoundError) as info:
        modelwire_runtime(SSE_MANIFEST, env={"BASE_URL": "http://127.0.0.1:9"}, plugins=[UPPER])
    assert info.value.code == "PARSER_NOT_FOUND"


# -- modelwire_feed: the chunkings ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"x", b"hello, world\n" * 5], ids=["empty", "one-byte", "lines"])
def test_chunkings_cover_the_data(data: bytes) -> None:
    ways = chunkings(data, splits=12, seed=3)
    assert all(b"".join(chunks) == data for _, chunks in ways)
    labels = [label for label, _ in ways]
    assert labels[0] == "whole" and "with empty chunks" in labels
    if len(data) > 1:
        assert ("byte by byte", [bytes([b]) for b in data]) in ways
        assert len(ways) == 3 + 12
    assert ways == chunkings(data, splits=12, seed=3)  # reproducible
    if len(data) > 10:
        assert ways != chunkings(data, splits=12, seed=4)


# -- modelwire_feed: real parsers ------------------------------------------------------------------


def test_feed_sse_by_name(modelwire_feed: ChunkingFeeder) -> None:
    data = "event: delta\ndata: {\"t\": \"h\u00e9\"}\r\n\r\n: ping\n\ndata: [DONE]\n\n".encode()
    assert modelwire_feed("sse", data) == [
        Frame('{"t": "h\u00e9"}', event="delta"),
        Frame("[DONE]", event="message"),
    ]


def test_feed_jsonchunk_error_is_raised_the_same_at_every_chunking(modelwire_feed: ChunkingFeeder) -> None:
    with pytest.raises(ParseError) as info:
        modelwire_feed("jsonchunk", b'{"a": 1}\n{bad}\n{"b": 2}\n')
    assert (info.value.code, info.value.offset, info.value.line) == ("JSON_INVALID", 9, 2)
    frames, error = modelwire_feed.run("jsonchunk", b'{"a": 1}\n{bad}\n')
    assert frames == [Frame({"a": 1})] and error is not None


def test_feed_text_needs_normalize(modelwire_feed: ChunkingFeeder) -> None:
    data = "h\u00e9llo w\u00f6rld \U0001f600".encode()
    with pytest.raises(AssertionError, match="depends on the chunking"):
        modelwire_feed("text", data)
    frames = modelwire_feed("text", data, normalize=joined_text)
    assert frames == [Frame("h\u00e9llo w\u00f6rld \U0001f600")]
    with pytest.raises(ParseError) as info:
        modelwire_feed("text", b"ok \xff", normalize=joined_text)
    assert info.value.offset == 3


def test_feed_passes_options_to_the_factory(modelwire_feed: ChunkingFeeder) -> None:
    assert modelwire_feed("text", b"a\xffb", normalize=joined_text, errors="replace") == [Frame("a\ufffdb")]
    with pytest.raises(ValueError, match="errors must be one of"):
        modelwire_feed("text", b"x", errors="bogus")


def test_feed_unknown_parser_name(modelwire_feed: ChunkingFeeder) -> None:
    with pytest.raises(modelwire.NotFoundError, match="no parser named 'nope'"):
        modelwire_feed("nope", b"x")


def test_feed_with_its_own_plugins() -> None:
    feed = ChunkingFeeder(Plugins(only=[UPPER]), splits=3, seed=1)
    assert feed("upper-lines", b"ab\ncd") == [Frame("AB"), Frame("CD")]
    with pytest.raises(modelwire.NotFoundError):
        feed("sse", b"data: x\n\n")


def test_feed_takes_bytes_only(modelwire_feed: ChunkingFeeder) -> None:
    with pytest.raises(TypeError, match="takes bytes"):
        modelwire_feed("sse", "data: x\n\n")  # type: ignore[arg-type]
    assert modelwire_feed("sse", bytearray(b"data: x\n\n")) == [Frame("x", event="message")]


# -- modelwire_feed: parsers that break the contract -------------------------------------------------


class _PerChunk:
    """Wrong: one frame per chunk, so the frames follow the chunking."""

    def feed(self, data: bytes) -> list[Frame]:
        return [Frame(data.decode("latin-1"))] if data else []

    def close(self) -> list[Frame]:
        return []


class _RaisesValueError:
    """Wrong: a bare ValueError instead of ParseError."""

    def feed(self, data: bytes) -> list[Frame]:
        if b"!" in data:
            raise ValueError("bang")
        return []

    def close(self) -> list[Frame]:
        return []


class _ForgetsItsError:
    """Wrong: raises ParseError once, then carries on as if nothing happened."""

    def __init__(self) -> None:
        self.seen = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.seen += len(data)
        if self.seen >= 3 and self.seen - len(data) < 3:
            raise ParseError("third byte", offset=2)
        return []

    def close(self) -> list[Frame]:
        return []


class _ReturnsTuple:
    def feed(self, data: bytes) -> Any:
        return ()

    def close(self) -> list[Frame]:
        return []


class _ChunkDependentError:
    """Wrong: names the offset within the chunk, not within the stream."""

    def __init__(self) -> None:
        self.error: ParseError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        if self.error is not None:
            raise self.error
        at = data.find(b"\xff")
        if at >= 0:
            self.error = ParseError("bad byte", offset=at)
            raise self.error
        return []

    def close(self) -> list[Frame]:
        if self.error is not None:
            raise self.error
        return []


@pytest.mark.parametrize(
    ("factory", "data", "message"),
    [
        pytest.param(_PerChunk, b"abcdef", r"depends on the chunking: 1 frames whole, 6 byte by byte; "
                     r"first difference at frame 0", id="frames-follow-chunks"),
        pytest.param(_RaisesValueError, b"ab!", r"raised ValueError from feed\(<3 bytes>\) \(whole\): bang; "
                     r"a parser must raise modelwire.ParseError", id="bare-exception"),
        pytest.param(_ForgetsItsError, b"abcd", r"close\(\) returned normally; once a parser failed",
                     id="error-not-sticky"),
        pytest.param(_ReturnsTuple, b"ab", r"feed\(<2 bytes>\) returned \(\) \(whole\); feed\(\) and close\(\) "
                     r"must return a list", id="not-a-list"),
        pytest.param(_ChunkDependentError, b"abc\xff", r"the error differs\n  whole: ParseError\(code='PARSE', "
                     r"offset=3, line=None\): bad byte\n  byte by byte: ParseError\(code='PARSE', offset=0",
                     id="offset-within-chunk"),
    ],
)
def test_feed_reports_contract_breaches(
    modelwire_feed: ChunkingFeeder, factory: Any, data: bytes, message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        modelwire_feed(factory, data)


def test_feed_accepts_partial_for_clashing_option_names(modelwire_feed: ChunkingFeeder) -> None:
    class Opt:
        def __init__(self, *, seed: str) -> None:
            self.seed = seed

        def feed(self, data: bytes) -> list[Frame]:
            return []

        def close(self) -> list[Frame]:
            return [Frame(self.seed)]

    assert modelwire_feed(functools.partial(Opt, seed="mine"), b"xyz", seed=5) == [Frame("mine")]


def test_feed_result_is_a_named_tuple(modelwire_feed: ChunkingFeeder) -> None:
    result = modelwire_feed.run("sse", b"data: a\n\n")
    assert result == FeedResult([Frame("a", event="message")], None)


# -- what a user's pytest run shows ----------------------------------------------------------------

USER_TESTS = '''
import anyio
import pytest

import modelwire
from modelwire import Frame
from modelwire.testing import Script

MANIFEST = """{manifest}"""


def test_feed(modelwire_feed):
    assert modelwire_feed("sse", b"data: a\\n\\ndata: b\\n\\n") == [
        Frame("a", event="message"), Frame("b", event="message")
    ]


def test_replay_and_sync_runtime(modelwire_replay, modelwire_runtime):
    modelwire_replay.push(Script(text="first"))
    rt = modelwire_runtime.sync(MANIFEST, env={{"BASE_URL": modelwire_replay.url_for("openai")}})
    assert rt.generate("m", "hi").text == "first"
    modelwire_replay.seed = 99
    modelwire_replay.default = Script(text="changed")
    modelwire_replay.push(Script(text="never taken"))


def test_replay_was_reset(modelwire_replay):
    assert (modelwire_replay.pending, modelwire_replay.requests, modelwire_replay.seed) == (0, [], 0)
    assert modelwire_replay.default == Script()


def test_async_runtime(modelwire_replay, modelwire_runtime):
    modelwire_replay.push(Script(text="async"))
    rt = modelwire_runtime(MANIFEST, env={{"BASE_URL": modelwire_replay.url_for("openai")}})

    async def main():
        async with rt:
            return (await rt.generate("m", "hi")).text

    assert anyio.run(main) == "async"


def test_plugins(modelwire_plugins):
    assert modelwire_plugins("modelwire-sse").names("parser") == ["sse"]
'''


def _user_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_user=USER_TESTS.format(manifest=SSE_MANIFEST))


def test_a_fresh_pytest_process_finds_the_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", ",".join(PARSER_DISTS))
    _user_file(pytester)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=5)


def test_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_empty="def test_nothing(): pass\n")
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for name in ("modelwire_replay", "modelwire_replay_factory", "modelwire_plugins", "modelwire_runtime",
                 "modelwire_feed"):
        assert f"{name} " in out or f"{name} [session scope]" in out, name
    assert "-> frames, the same at every chunking." in out


def test_a_runtime_left_open_after_its_loop_ended_fails_the_teardown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", ",".join(PARSER_DISTS))
    pytester.makepyfile(
        test_leak=f'''
import anyio
from modelwire.testing import Script

MANIFEST = """{SSE_MANIFEST}"""


def test_leaks(modelwire_replay, modelwire_runtime):
    rt = modelwire_runtime(MANIFEST, env={{"BASE_URL": modelwire_replay.url_for("openai")}})

    async def main():
        return (await rt.generate("m", "hi")).text

    assert anyio.run(main)


def test_unused_runtime_is_fine(modelwire_runtime):
    modelwire_runtime(MANIFEST, env={{"BASE_URL": "http://127.0.0.1:9"}})
'''
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-W", "ignore::ResourceWarning",
                                           "-W", "ignore::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*modelwire_runtime: 1 runtime(s) sent requests from an event loop that ended*"
                                 "async with rt:*"])
