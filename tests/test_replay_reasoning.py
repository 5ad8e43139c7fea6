"""The replay server's reasoning, server-tool, citation and cache-usage script
fields, in each format it serves: read back by modelwire and, where they
expose the field, by the official SDKs from the same bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import modelwire
from modelwire.testing import Citation, Reasoning, ReplayServer, Script, ServerTool, ToolCall

pytestmark = pytest.mark.timeout(60)

SCRIPT = Script(
    text=("The answer", " is 4."),
    reasoning=[Reasoning(("Two plus", " two..."), signature="EqQBCgIYAhIMsig"), Reasoning(redacted="EmwKAhgBEgy3")],
    server_tools=[ServerTool("srvtoolu_01", "web_search", '{"query": "2+2"}',
                             result=[{"type": "web_search_result", "url": "https://m.example/", "title": "Math",
                                      "encrypted_content": "Ev0D", "page_age": None}]),
                  ServerTool("mcptoolu_01", "echo", '{"x": 1}', result=[{"type": "text", "text": "1"}],
                             server_name="demo")],
    citations=[Citation("https://m.example/", "Math", "2+2=4")],
    tool_calls=[ToolCall("toolu_01", "record", '{"v": 4}')],
    usage=(18762, 503), cache_read=18639, cache_write=120, reasoning_tokens=300,
)
MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1", "gemini": "gemini-2.5-flash", "ollama": "llama3.2"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=21) as srv:
        yield srv


@pytest.fixture(scope="module")
def rt(server: ReplayServer) -> Iterator[modelwire.SyncRuntime]:
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": "k",
           "ANTHROPIC_BASE_URL": server.url_for("anthropic"), "ANTHROPIC_API_KEY": "k",
           "GEMINI_BASE_URL": server.url_for("gemini"), "GEMINI_API_KEY": "k",
           "OLLAMA_BASE_URL": server.url_for("ollama")}
    with modelwire.SyncRuntime.from_manifests("builtin:openai", "builtin:anthropic", "builtin:gemini",
                                              "builtin:ollama", env=env) as runtime:
        yield runtime


# What each format carries (docs/testing.md, "Reasoning, server tools, citations, cache usage").
EXPECTED: dict[str, dict[str, Any]] = {
    "anthropic": {"reasoning": "Two plus two...", "signatures": ["EqQBCgIYAhIMsig", None],
                  "redacted": [None, "EmwKAhgBEgy3"], "server_tools": [("srvtoolu_01", "web_search", {"query": "2+2"}),
                                                                      ("mcptoolu_01", "echo", {"x": 1})],
                  "citations": [("https://m.example/", "Math", "2+2=4")],
                  "usage": (18762, 503, 18639, 120, 300)},
    "openai": {"reasoning": "Two plus two...", "signatures": [None], "redacted": [None], "server_tools": [],
               "citations": [], "usage": (18762, 503, 18639, None, 300)},
    "gemini": {"reasoning": "Two plus two...", "signatures": [None], "redacted": [None], "server_tools": [],
               "citations": [("https://m.example/", "Math", None)], "usage": (18762, 503, 18639, None, 300)},
    "ollama": {"reasoning": "Two plus two...", "signatures": [None], "redacted": [None], "server_tools": [],
               "citations": [], "usage": (18762, 503, None, None, None)},
}


@pytest.mark.parametrize("fmt", sorted(MODELS))
def test_script_fields_read_back(fmt: str, server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    server.push(SCRIPT)
    resp = rt.generate(MODELS[fmt], "2+2?")
    want = EXPECTED[fmt]
    assert resp.text == SCRIPT.full_text()
    assert resp.reasoning == want["reasoning"] == SCRIPT.reasoning[0].full_text()
    assert [b.signature for b in resp.reasoning_blocks] == want["signatures"]
    assert [b.redacted for b in resp.reasoning_blocks] == want["redacted"]
    assert [(c.id, c.name, c.parsed_arguments()) for c in resp.server_tool_calls] == want["server_tools"]
    assert [(c.url, c.title, c.cited_text) for c in resp.citations] == want["citations"]
    assert [(c.name, c.parsed_arguments()) for c in resp.tool_calls] == [("record", {"v": 4})]
    u = resp.usage
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens,
            u.reasoning_tokens) == want["usage"]


def test_anthropic_sdk_reads_the_script(server: ReplayServer) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.push(SCRIPT)
    client = anthropic.Anthropic(base_url=server.url_for("anthropic"), api_key="k", max_retries=0)
    with client, client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as s:
        final = s.get_final_message()
    kinds = [b.type for b in final.content]
    assert kinds == ["thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result", "mcp_tool_use",
                     "mcp_tool_result", "text", "tool_use"]
    thinking = final.content[0]
    assert (thinking.thinking, thinking.signature) == ("Two plus two...", "EqQBCgIYAhIMsig")
    assert final.content[1].data == "EmwKAhgBEgy3"
    assert final.content[2].input == {"query": "2+2"}
    text = final.content[6]
    assert [(c.url, c.title, c.cited_text) for c in text.citations] == [("https://m.example/", "Math", "2+2=4")]
    u = final.usage
    assert (u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens, u.output_tokens,
            u.cache_read_input_tokens, u.cache_creation_input_tokens) == (18762, 503, 18639, 120)


def test_openai_sdk_reads_the_script(server: ReplayServer) -> None:
    openai = pytest.importorskip("openai")
    server.push(SCRIPT)
    with openai.OpenAI(base_url=server.url_for("openai"), api_key="k", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                     stream=True, stream_options={"include_usage": True}))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning == "Two plus two..."
    u = chunks[-1].usage
    assert (u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details.cached_tokens,
            u.completion_tokens_details.reasoning_tokens) == (18762, 503, 18639, 300)


def test_google_genai_reads_the_script(server: ReplayServer) -> None:
    genai = pytest.importorskip("google.genai")
    server.push(SCRIPT)
    client = genai.Client(api_key="k", http_options={"base_url": server.url_for("gemini")})
    try:
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    finally:
        client.close()  # an unclosed client's socket warns later, in another test
    parts = [p for c in chunks for p in c.candidates[0].content.parts]
    assert "".join(p.text for p in parts if p.thought) == "Two plus two..."
    assert "".join(c.text or "" for c in chunks) == SCRIPT.full_text()
    meta = chunks[-1].usage_metadata
    assert (meta.prompt_token_count, meta.candidates_token_count + meta.thoughts_token_count,
            meta.cached_content_token_count) == (18762, 503, 18639)
    web = chunks[-1].candidates[0].grounding_metadata.grounding_chunks[0].web
    assert (web.uri, web.title) == ("https://m.example/", "Math")


def test_plain_scripts_keep_their_old_shape(server: ReplayServer, rt: modelwire.SyncRuntime) -> None:
    # No reasoning, cache or server tools: Anthropic's message_delta keeps the output-only usage.
    server.push(Script(text="hi", usage=(5, 2)))
    resp = rt.generate("claude-sonnet-4-5", "x")
    assert (resp.reasoning, resp.server_tool_calls, resp.citations) == ("", (), ())
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (5, 2)
