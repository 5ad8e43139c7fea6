"""Failure behaviour: invisible fallback before the first byte, never a silent splice after, disconnects cancel.

Providers that reset mid-stream are ReplayServer scripts with
``disconnect_after``; a provider that holds its stream open and reports the
client's close is tests/servers/held.py.
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelwire
from modelwire.gateway import GatewayConfig, hash_key
from modelwire.testing import ReplayServer, Script

from gateway_helpers import TIMEOUT, running_gateway
from servers.held import held_server

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
pytest.importorskip("uvicorn")

PIECES = [f"piece{i:02d} " for i in range(12)]
TEXT = "".join(PIECES)
#: a reset after the role chunk and a few text chunks (one write per frame)
RESET = Script(text=PIECES, chunk_size=None, disconnect_after=700)

CHAINS = """\
    version: 1
    models:
      flaky-prefix:
        provider: openai
        id: gpt-4.1-mini
        fallback: [claude-haiku-4-5]
        retry: {attempts: 1, on_midstream: prefix}
      flaky-next:
        provider: openai
        id: gpt-4.1-mini
        fallback: [gemini-2.5-flash]
        retry: {attempts: 1, on_midstream: next}
      flaky-before:
        provider: openai
        id: gpt-4.1-mini
        fallback: [claude-haiku-4-5]
        retry: {attempts: 1}
    """


@pytest.fixture(scope="module")
def srv() -> Iterator[ReplayServer]:
    with ReplayServer(seed=3) as server:
        yield server


@pytest.fixture(scope="module")
def url(srv: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chains = tmp_path_factory.mktemp("manifests") / "chains.yaml"
    chains.write_text(textwrap.dedent(CHAINS))
    with running_gateway(srv, manifests=["builtin:*", str(chains)]) as (base, _gw):
        yield base


@pytest.fixture
def client(url: str, srv: ReplayServer) -> Iterator[Any]:
    srv.reset()
    with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def stream_text(client: Any, model: str) -> tuple[str, Exception | None]:
    """The text a client received, and the error that ended the stream (if any)."""
    got: list[str] = []
    try:
        for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], stream=True):
            if chunk.choices:
                got.append(chunk.choices[0].delta.content or "")
    except openai.APIError as exc:
        return "".join(got), exc
    return "".join(got), None


def test_a_reset_mid_stream_ends_with_an_error_event_never_a_silent_short_answer(client: Any, srv: ReplayServer) -> None:
    srv.push(RESET)
    text, error = stream_text(client, "gpt-4.1-mini")
    assert isinstance(error, openai.APIError) and isinstance(error.body, dict)
    assert error.body["type"] == "api_error" and "provider openai" in error.body["message"]
    assert text and TEXT.startswith(text) and text != TEXT
    assert len(srv.requests) == 1


def test_anthropic_clients_get_the_error_in_their_format(url: str, srv: ReplayServer) -> None:
    srv.reset()
    srv.push(RESET)
    got = []
    with anthropic.Anthropic(base_url=url, api_key="x", max_retries=0) as c, pytest.raises(anthropic.APIStatusError), \
            c.messages.stream(model="gpt-4.1-mini", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as s:
        got.extend(s.text_stream)
    assert got and TEXT.startswith("".join(got))


def test_fallback_before_the_first_byte_is_invisible(client: Any, srv: ReplayServer) -> None:
    srv.push(Script(status=503), Script(text=["Claude ", "answers."]))
    text, error = stream_text(client, "flaky-before")
    assert (text, error) == ("Claude answers.", None)
    assert [r.fmt for r in srv.requests] == ["openai", "anthropic"]


def test_after_text_a_prefix_continuation_streams_on(client: Any, srv: ReplayServer) -> None:
    srv.push(RESET, Script(text=["and ", "the rest."]))
    text, error = stream_text(client, "flaky-prefix")
    assert error is None
    [_first, second] = srv.requests
    partial = text.removesuffix("and the rest.")
    assert partial and TEXT.startswith(partial) and partial != TEXT
    # the target continued the partial answer: it was sent as the start of the reply
    last = second.json["messages"][-1]
    assert last["role"] == "assistant" and partial.rstrip() in json.dumps(last["content"])


def test_after_text_another_model_is_never_spliced_in(client: Any, srv: ReplayServer) -> None:
    srv.push(RESET, Script(text="Gemini would say something else."))
    text, error = stream_text(client, "flaky-next")
    assert isinstance(error, openai.APIError) and isinstance(error.body, dict)
    assert error.body["code"] == "upstream_failed_midstream"
    assert "Gemini" not in text and TEXT.startswith(text)
    assert len(srv.requests) == 1  # the next model was never called


def test_a_client_disconnect_cancels_the_upstream_call_and_bills_what_was_produced(tmp_path: Path) -> None:
    config = GatewayConfig(keys={"k": modelwire.gateway.VirtualKey(hash=hash_key("sk-k"), admin=True, rpm=100)})
    with held_server(first="Hello there") as held, ReplayServer() as srv, running_gateway(
        srv, config, env={"OPENAI_BASE_URL": held.url}
    ) as (base, gw):
        with openai.OpenAI(base_url=base + "/v1", api_key="sk-k", max_retries=0) as c:
            stream = c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}],
                                               stream=True)
            chunks = iter(stream)
            next(chunks)
            assert next(chunks).choices[0].delta.content == "Hello there"
            stream.close()  # the client goes away mid-answer
        assert held.closed.wait(TIMEOUT)  # the provider saw its connection closed
        assert not held.finished.is_set()
        usage = httpx.get(base + "/v1/usage", headers={"authorization": "Bearer sk-k"}).json()
        spent = usage["keys"]["k"]["models"]["gpt-4.1-mini"]
        assert gw.runtime is not None
        approx = gw.runtime.plugins.get_tokenizer("approx")
        assert spent["requests"] == 1
        assert spent["output_tokens"] == approx.count("Hello there")  # only what was produced
        assert spent["input_tokens"] > 0


# -- hostile request heads: bounded under either HTTP implementation ------------------------


@pytest.mark.parametrize("impl", ["default", "h11"])
def test_an_endless_request_head_is_refused_not_buffered(impl: str) -> None:
    """httptools keeps a header value until it ends and uvicorn bounds it only under h11:
    the gateway's protocol counts head bytes itself, so the limit holds with both."""
    from modelwire.gateway import GatewayServer
    from modelwire.gateway._serve import uvicorn_config

    config = GatewayConfig(server=GatewayServer(h11_max_incomplete_event_size=4096))
    chosen = uvicorn_config(None, "127.0.0.1", 0, config)["http"]
    if impl == "default":
        # httptools is installed with the test extra, as with the gateway extra: it is the one used
        assert getattr(chosen, "__name__", chosen) == "BoundedHttpToolsProtocol"
    with ReplayServer(default=Script(text="fine")) as srv, running_gateway(
        srv, config, http=None if impl == "default" else "h11"
    ) as (url, _gw):
        port = int(url.rsplit(":", 1)[1])
        sent = 0
        answer = b""
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                while sent < 64 * 2**20:  # 64 MB: far past any buffer that is not bounded
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:
                pass  # the server closed the connection: what is asserted below
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except OSError:
                pass  # a reset after the answer
        # the kernel's socket buffers take about 3.5 MB on loopback (4 MB send buffer at most)
        assert sent < 16 * 2**20, f"the server read {sent} bytes of one header"
        assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:80]
        # a request with a small head and a 1 MB body is not counted as head
        big = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x" * 2**20}]}
        assert httpx.post(url + "/v1/chat/completions", json=big, timeout=TIMEOUT).status_code == 200
