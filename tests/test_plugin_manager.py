"""The plugin manager: real entry points, direct registration, isolation, errors."""

from __future__ import annotations

import pickle
from importlib import metadata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelwire
from modelwire import Frame, NotFoundError, PluginError, Plugins, hookimpl

from core_helpers import BROKEN, CLASH, UPPER
from strategies import chunkings

# -- throwaway plugin objects, registered directly ---------------------------------


class ParserPlugin:
    """Registers the parsers given as ``name -> media types``; each yields one frame per feed."""

    def __init__(self, **parsers: list[str]) -> None:
        self.parsers = parsers

    @hookimpl
    def register_parsers(self, register: Any) -> None:
        for name, media_types in self.parsers.items():
            register(name.replace("_", "-"), lambda **_: Echo(), media_types=media_types)


class Echo:
    def feed(self, data: bytes) -> list[Frame]:
        return [Frame(data=data.decode())] if data else []

    def close(self) -> list[Frame]:
        return []


class AuthPlugin:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_auth_injectors(self, register: Any) -> None:
        for name in self.names:
            register(name, lambda request, auth: None)


class RaisingPlugin:
    @hookimpl
    def register_parsers(self, register: Any) -> None:
        raise RuntimeError("this plugin has a bug")


# -- discovery through real entry points ----------------------------------------------------


def test_third_party_plugin_is_installed_as_a_real_distribution() -> None:
    eps = {ep.name: ep for ep in metadata.entry_points(group="modelwire")}
    assert eps["upper-lines"].value == "modelwire_upper_lines"
    assert eps["upper-lines"].dist is not None
    assert eps["upper-lines"].dist.name == UPPER


def test_entry_point_plugin_is_discovered_with_distribution_and_version(
    upper_plugins: Plugins,
) -> None:
    reg = upper_plugins.get("parser", "upper-lines")
    assert reg.plugin == "upper-lines"
    assert reg.distribution == UPPER
    assert reg.version == metadata.version(UPPER) == "0.1.0"
    assert reg.media_types == ("text/x-upper-lines",)
    assert reg.origin() == f"{UPPER} 0.1.0"
    assert reg.to_dict() == {
        "kind": "parser",
        "name": "upper-lines",
        "plugin": "upper-lines",
        "distribution": UPPER,
        "version": "0.1.0",
        "media_types": ["text/x-upper-lines"],
    }


def test_entry_point_parser_parses(upper_plugins: Plugins) -> None:
    parser = upper_plugins.get_parser("upper-lines")
    frames = parser.feed(b"hello\nwor") + parser.feed(b"ld\nend") + parser.close()
    assert frames == [Frame("HELLO"), Frame("WORLD"), Frame("END")]


def test_parser_instances_are_fresh(upper_plugins: Plugins) -> None:
    first = upper_plugins.get_parser("upper-lines")
    first.feed(b"half a line")
    second = upper_plugins.get_parser("upper-lines")
    assert second is not first
    assert second.close() == []


def test_parser_options_reach_the_factory(upper_plugins: Plugins) -> None:
    parser = upper_plugins.get_parser("upper-lines", max_line=4)
    with pytest.raises(modelwire.ParseError) as info:
        parser.feed(b"abcdefgh")
    assert info.value.offset == 0


UPPER_INPUT = "first line\nsecond\n\nmulti-byte: \u00e9\u00df\u20ac\nno newline at end".encode()
UPPER_FRAMES = [
    Frame("FIRST LINE"),
    Frame("SECOND"),
    Frame(""),
    Frame("MULTI-BYTE: \u00c9SS\u20ac"),
    Frame("NO NEWLINE AT END"),
]


def _run(parser: modelwire.Parser, chunks: list[bytes]) -> list[Frame]:
    frames: list[Frame] = []
    for chunk in chunks:
        frames += parser.feed(chunk)
    return frames + parser.close()


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([UPPER_INPUT], id="whole"),
        pytest.param([bytes([b]) for b in UPPER_INPUT], id="byte-by-byte"),
        *[
            pytest.param([UPPER_INPUT[:i], UPPER_INPUT[i:]], id=f"split-{i}")
            for i in range(0, len(UPPER_INPUT) + 1, 7)
        ],
    ],
)
def test_third_party_parser_at_every_chunking(upper_plugins: Plugins, chunks: list[bytes]) -> None:
    assert _run(upper_plugins.get_parser("upper-lines"), chunks) == UPPER_FRAMES


@given(st.data())
def test_third_party_parser_at_random_chunkings(data: st.DataObject) -> None:
    chunks = data.draw(chunkings(UPPER_INPUT))
    assert _run(Plugins(only=[UPPER]).get_parser("upper-lines"), chunks) == UPPER_FRAMES


@pytest.mark.parametrize(
    "only",
    [
        pytest.param([UPPER], id="by-distribution"),
        pytest.param(["upper-lines"], id="by-entry-point"),
    ],
)
def test_only_selects_by_distribution_or_entry_point_name(only: list[str]) -> None:
    plugins = Plugins(only=only)
    assert plugins.names("parser") == ["upper-lines"]
    assert plugins.errors() == []


def test_builtin_auth_injectors_come_from_the_core(bare_plugins: Plugins) -> None:
    assert {"bearer", "header", "none", "query"} <= set(bare_plugins.names("auth_injector"))
    reg = bare_plugins.get("auth_injector", "bearer")
    assert (reg.plugin, reg.distribution, reg.version) == (
        "modelwire",
        "modelwire",
        modelwire.__version__,
    )
    assert "media_types" not in reg.to_dict()


def test_without_builtins_nothing_is_registered() -> None:
    plugins = Plugins(entry_points=False, builtins=False)
    assert [plugins.names(kind) for kind in ("parser", "auth_injector")] == [[], []]


# -- MODELWIRE_LOAD_PLUGINS -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsers"),
    [
        pytest.param(UPPER, ["upper-lines"], id="one-distribution"),
        pytest.param(f" {UPPER} , ", ["upper-lines"], id="spaces-and-trailing-comma"),
        pytest.param("upper-lines", ["upper-lines"], id="entry-point-name"),
        pytest.param(f"{CLASH}", ["lower-lines", "upper-lines"], id="the-clash-alone-is-fine"),
        pytest.param("", [], id="empty-loads-none"),
        pytest.param("no-such-plugin", [], id="unknown-name-loads-none"),
    ],
)
def test_modelwire_load_plugins(
    monkeypatch: pytest.MonkeyPatch, value: str, parsers: list[str]
) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", value)
    plugins = Plugins()
    assert plugins.names("parser") == parsers
    assert plugins.errors() == []
    # The built-ins always load.
    assert "bearer" in plugins.names("auth_injector")


def test_only_argument_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", "")
    assert Plugins(only=[UPPER]).names("parser") == ["upper-lines"]


def test_entry_points_false_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", UPPER)
    assert Plugins(entry_points=False).names("parser") == []


# -- direct registration and isolation --------------------------------------------------------


def test_direct_registration(bare_plugins: Plugins) -> None:
    name = bare_plugins.register(ParserPlugin(mine=["text/x-mine"]), name="my-app")
    assert name == "my-app"
    reg = bare_plugins.get("parser", "mine")
    assert (reg.plugin, reg.distribution, reg.version) == ("my-app", None, None)
    assert reg.origin() == "plugin 'my-app'"
    assert _run(bare_plugins.get_parser("mine"), [b"a", b"b"]) == [Frame("a"), Frame("b")]


def test_direct_registration_with_a_distribution(bare_plugins: Plugins) -> None:
    bare_plugins.register(ParserPlugin(mine=[]), name="p", distribution="my-dist", version="2.0")
    assert bare_plugins.get("parser", "mine").origin() == "my-dist 2.0"


def test_unregister_by_object_and_by_name(bare_plugins: Plugins) -> None:
    one, two = ParserPlugin(one=[]), ParserPlugin(two=[])
    bare_plugins.register(one, name="one")
    bare_plugins.register(two, name="two")
    assert bare_plugins.names("parser") == ["one", "two"]
    bare_plugins.unregister(one)
    assert bare_plugins.names("parser") == ["two"]
    bare_plugins.unregister(name="two")
    assert bare_plugins.names("parser") == []


def test_a_module_can_be_registered(bare_plugins: Plugins) -> None:
    import modelwire_upper_lines

    bare_plugins.register(modelwire_upper_lines)
    assert bare_plugins.get("parser", "upper-lines").distribution is None


def test_isolated_managers_do_not_see_each_other() -> None:
    a = Plugins(entry_points=False)
    b = Plugins(entry_points=False)
    a.register(ParserPlugin(only_in_a=[]), name="a")
    b.register(ParserPlugin(only_in_b=[]), name="b")
    assert a.names("parser") == ["only-in-a"]
    assert b.names("parser") == ["only-in-b"]
    with pytest.raises(NotFoundError):
        b.get_parser("only-in-a")
    # ... and the process-wide default sees neither.
    assert "only-in-a" not in modelwire.get_plugins().registry("parser")


def test_set_plugins_replaces_the_default() -> None:
    mine = Plugins(entry_points=False)
    mine.register(ParserPlugin(app_parser=[]), name="app")
    previous = modelwire.set_plugins(mine)
    assert modelwire.get_plugins() is mine
    assert _run(modelwire.get_parser("app-parser"), [b"x"]) == [Frame("x")]
    assert modelwire.set_plugins(previous) is mine


def test_set_plugins_none_rediscovers_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWIRE_LOAD_PLUGINS", UPPER)
    modelwire.set_plugins(None)
    fresh = modelwire.get_plugins()
    assert fresh is modelwire.get_plugins()  # created once, then reused
    assert fresh.names("parser") == ["upper-lines"]


# -- not found -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "code", "message"),
    [
        pytest.param(
            "parser",
            "upper_lines",
            "PARSER_NOT_FOUND",
            "no parser named 'upper_lines'; installed: upper-lines (did you mean 'upper-lines'?)",
            id="parser-did-you-mean",
        ),
        pytest.param(
            "parser",
            "protobuf",
            "PARSER_NOT_FOUND",
            "no parser named 'protobuf'; installed: upper-lines",
            id="parser",
        ),
        pytest.param(
            "auth_injector",
            "oauth",
            "AUTH_INJECTOR_NOT_FOUND",
            "no auth injector named 'oauth'; installed: {installed}",
            id="auth-injector",
        ),
        pytest.param(
            "tokenizer",
            "tiktoken",
            "TOKENIZER_NOT_FOUND",
            "no tokenizer named 'tiktoken'; installed: {installed}",
            id="tokenizer",
        ),
        pytest.param(
            "fallback_policy",
            "retry",
            "FALLBACK_POLICY_NOT_FOUND",
            "no fallback policy named 'retry'; installed: {installed}",
            id="fallback-policy",
        ),
    ],
)
def test_not_found_lists_installed_names(
    upper_plugins: Plugins, kind: str, name: str, code: str, message: str
) -> None:
    with pytest.raises(NotFoundError) as info:
        upper_plugins.get(kind, name)
    assert info.value.code == code
    assert info.value.kind == "not_found"
    installed = ", ".join(upper_plugins.names(kind)) or "none"
    assert info.value.message == message.format(installed=installed)
    assert info.value.name == name


@pytest.mark.parametrize("kind", ["parser", "auth_injector", "tokenizer", "fallback_policy"])
def test_not_found_says_none_when_nothing_is_installed(kind: str) -> None:
    plugins = Plugins(entry_points=False, builtins=False)
    with pytest.raises(NotFoundError) as info:
        plugins.get(kind, "x")
    assert info.value.message == f"no {kind.replace('_', ' ')} named 'x'; installed: none"


def test_get_parser_not_found_through_the_public_function() -> None:
    modelwire.set_plugins(Plugins(only=[UPPER]))
    with pytest.raises(NotFoundError, match=r"installed: upper-lines$") as info:
        modelwire.get_parser("nope")
    assert info.value.code == "PARSER_NOT_FOUND"


@pytest.mark.parametrize(
    "getter",
    [
        pytest.param(lambda p: p.get_auth_injector("nope"), id="auth"),
        pytest.param(lambda p: p.get_tokenizer("nope"), id="tokenizer"),
        pytest.param(lambda p: p.get_fallback_policy("nope"), id="fallback"),
    ],
)
def test_typed_getters_raise_not_found(bare_plugins: Plugins, getter: Any) -> None:
    with pytest.raises(NotFoundError):
        getter(bare_plugins)


def test_typed_getters_return_the_object() -> None:
    plugins = Plugins(entry_points=False)
    injector = plugins.get_auth_injector("bearer")
    assert callable(injector)
    assert injector is plugins.get("auth_injector", "bearer").obj


# -- a plugin that fails to import -----------------------------------------------------------------


def test_failing_plugin_is_reported_and_the_others_still_load() -> None:
    plugins = Plugins(only=[BROKEN, UPPER])
    assert plugins.names("parser") == ["upper-lines"]
    [err] = plugins.load_errors
    assert isinstance(err, PluginError)
    assert err.code == "PLUGIN_LOAD_FAILED"
    assert (err.plugin, err.distribution) == ("broken", BROKEN)
    assert err.message == (
        f"plugin 'broken' from distribution {BROKEN!r} failed to load: "
        "ImportError: modelwire_broken_plugin needs a module that is not installed"
    )
    assert isinstance(err.__cause__, ImportError)
    assert plugins.errors() == [err]


def test_not_found_mentions_the_plugin_that_failed() -> None:
    plugins = Plugins(only=[BROKEN])
    with pytest.raises(NotFoundError) as info:
        plugins.get_parser("broken-parser")
    assert info.value.message.startswith("no parser named 'broken-parser'; installed: none; note: ")
    assert f"plugin 'broken' from distribution {BROKEN!r} failed to load" in info.value.message


def test_default_manager_survives_every_broken_test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELWIRE_LOAD_PLUGINS", raising=False)
    modelwire.set_plugins(None)
    plugins = modelwire.get_plugins()
    codes = sorted(e.code for e in plugins.errors())
    assert codes == ["PLUGIN_CONFLICT", "PLUGIN_LOAD_FAILED"]
    # Names nobody disputes still work, from both of the clashing distributions' neighbours.
    assert _run(plugins.get_parser("lower-lines"), [b"A\nB"]) == [Frame("a"), Frame("b")]
    assert plugins.get_auth_injector("bearer") is not None


def test_a_hook_that_raises_is_reported_and_the_others_still_register(
    upper_plugins: Plugins,
) -> None:
    upper_plugins.register(RaisingPlugin(), name="buggy")
    assert upper_plugins.names("parser") == ["upper-lines"]
    [err] = upper_plugins.errors()
    assert err.code == "PLUGIN_HOOK_FAILED"
    assert err.message == (
        "plugin 'buggy' (no distribution) failed in register_parsers: "
        "RuntimeError: this plugin has a bug"
    )
    assert isinstance(err.__cause__, RuntimeError)


@pytest.mark.parametrize("bad_name", [pytest.param("", id="empty"), pytest.param(3, id="int")])
def test_register_rejects_a_bad_name(bare_plugins: Plugins, bad_name: Any) -> None:
    class BadName:
        @hookimpl
        def register_parsers(self, register: Any) -> None:
            register(bad_name, Echo)

    bare_plugins.register(BadName(), name="bad")
    [err] = bare_plugins.errors()
    assert "a parser name must be a non-empty string" in err.message


# -- two plugins claiming one name ------------------------------------------------------------------


def test_collision_between_real_distributions_names_both() -> None:
    plugins = Plugins(only=[UPPER, CLASH])
    with pytest.raises(PluginError) as info:
        plugins.get_parser("upper-lines")
    err = info.value
    assert err.code == "PLUGIN_CONFLICT"
    assert f"{UPPER} 0.1.0" in err.message
    assert f"{CLASH} 0.2.0" in err.message
    assert err.message.startswith("parser name 'upper-lines' is claimed twice: by ")
    assert sorted(err.distributions) == [UPPER, CLASH]
    assert [str(e) for e in plugins.conflicts()] == [str(err)]


def test_collision_leaves_the_other_names_usable() -> None:
    plugins = Plugins(only=[UPPER, CLASH])
    assert plugins.names("parser") == ["lower-lines"]
    assert "upper-lines" not in plugins.registry("parser")
    assert _run(plugins.get_parser("lower-lines"), [b"X\n"]) == [Frame("x")]
    assert plugins.parser_for_media_type("text/x-lower-lines").name == "lower-lines"


def test_collision_is_raised_by_media_type_detection_too() -> None:
    plugins = Plugins(only=[UPPER, CLASH])
    with pytest.raises(PluginError, match="claimed twice"):
        plugins.parser_for_media_type("text/x-upper-lines")


def test_collision_is_listed_by_describe() -> None:
    rows = Plugins(only=[UPPER, CLASH]).describe()
    upper = [r for r in rows if r["name"] == "upper-lines"]
    assert sorted(r["distribution"] for r in upper) == [UPPER, CLASH]
    assert all(r["conflict"] for r in upper)
    assert not any(r["conflict"] for r in rows if r["name"] != "upper-lines")


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        pytest.param(
            [("a", ParserPlugin(same=[])), ("b", ParserPlugin(same=[]))],
            "parser name 'same' is claimed twice: by plugin 'a' and by plugin 'b'",
            id="two-direct",
        ),
        pytest.param(
            [
                ("a", ParserPlugin(same=[])),
                ("b", ParserPlugin(same=[])),
                ("c", ParserPlugin(same=[])),
            ],
            "parser name 'same' is claimed 3 times: by plugin 'a', by plugin 'b' and by plugin 'c'",
            id="three-direct",
        ),
    ],
)
def test_collision_message_lists_every_claim_in_registration_order(
    bare_plugins: Plugins, plugins: list[tuple[str, object]], message: str
) -> None:
    for name, plugin in plugins:
        bare_plugins.register(plugin, name=name)
    with pytest.raises(PluginError) as info:
        bare_plugins.get("parser", "same")
    assert info.value.message == (
        message + "; uninstall one of them, or choose which load with MODELWIRE_LOAD_PLUGINS"
    )


def test_collision_with_a_builtin_auth_injector(bare_plugins: Plugins) -> None:
    bare_plugins.register(AuthPlugin("bearer", "oauth"), name="auth-plugin")
    with pytest.raises(PluginError) as info:
        bare_plugins.get_auth_injector("bearer")
    assert info.value.message.startswith(
        f"auth injector name 'bearer' is claimed twice: by modelwire {modelwire.__version__} "
        "and by plugin 'auth-plugin'"
    )
    assert bare_plugins.get_auth_injector("oauth") is not None
    assert bare_plugins.get_auth_injector("query") is not None


def test_unregistering_one_side_resolves_a_collision(bare_plugins: Plugins) -> None:
    bare_plugins.register(ParserPlugin(same=[]), name="a")
    bare_plugins.register(ParserPlugin(same=[]), name="b")
    assert bare_plugins.conflicts()
    bare_plugins.unregister(name="b")
    assert bare_plugins.conflicts() == []
    assert bare_plugins.get("parser", "same").plugin == "a"


def test_same_name_in_different_kinds_is_no_collision(bare_plugins: Plugins) -> None:
    bare_plugins.register(ParserPlugin(bearer=[]), name="p")
    assert bare_plugins.get("parser", "bearer").plugin == "p"
    assert bare_plugins.get("auth_injector", "bearer").plugin == "modelwire"


def test_plugin_errors_pickle() -> None:
    err = Plugins(only=[UPPER, CLASH]).conflicts()[0]
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.code, again.message) == (PluginError, err.code, err.message)
    assert again.distributions == err.distributions


# -- media-type detection ------------------------------------------------------------------------------


@pytest.fixture
def detect() -> Plugins:
    plugins = Plugins(entry_points=False, builtins=False)
    plugins.register(ParserPlugin(exact=["text/event-stream"]), name="1")
    plugins.register(ParserPlugin(any_text=["text/*"]), name="2")
    plugins.register(
        ParserPlugin(json=["application/json; charset=utf-8", "Application/X-NDJSON"]), name="3"
    )
    plugins.register(ParserPlugin(json_too=["application/json"]), name="4")
    plugins.register(ParserPlugin(anything=["*/*"]), name="5")
    return plugins


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param("text/event-stream", "exact", id="exact"),
        pytest.param("Text/Event-Stream; charset=utf-8", "exact", id="case-and-parameters"),
        pytest.param("text/plain", "any-text", id="major-wildcard"),
        pytest.param("text/html;charset=utf-8", "any-text", id="major-wildcard-parameters"),
        pytest.param("application/json", "json", id="first-registered-wins-a-tie"),
        pytest.param("application/x-ndjson", "json", id="declared-type-is-normalised"),
        pytest.param("image/png", "anything", id="catch-all"),
        pytest.param("", None, id="empty"),
        pytest.param(" ; charset=utf-8", None, id="parameters-only"),
    ],
)
def test_parser_for_media_type_precedence(
    detect: Plugins, content_type: str, expected: str | None
) -> None:
    reg = detect.parser_for_media_type(content_type)
    assert (reg.name if reg else None) == expected


def test_parser_for_media_type_without_catch_all() -> None:
    plugins = Plugins(entry_points=False)
    plugins.register(ParserPlugin(exact=["text/event-stream"]), name="1")
    assert plugins.parser_for_media_type("image/png") is None


def test_parser_for_media_type_of_the_third_party_plugin(upper_plugins: Plugins) -> None:
    reg = upper_plugins.parser_for_media_type("text/x-upper-lines; charset=utf-8")
    assert reg is not None and reg.distribution == UPPER
