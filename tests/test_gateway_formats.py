"""The gateway's wire formats, sans-IO: hostile bodies give BodyError naming a field, never another exception.

And the event writers: what ChatStream / MessageStream write parses back, with
the official SDKs' own decoders, into the text and tool calls that went in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelwire import Done, Finish, TextDelta, ToolCallDelta, Usage
from modelwire.gateway._anthropic import MessageStream, parse_messages
from modelwire.gateway._call import BodyError
from modelwire.gateway._openai import ChatStream, parse_chat, parse_embeddings

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["model", "messages", "tools", "tool_choice", "max_tokens", "temperature", "stop", "stream",
          "stream_options", "system", "stop_sequences", "role", "content", "tool_calls", "function", "type",
          "text", "image_url", "tool_use_id", "input", "name", "id", "source"]
BODIES = st.recursive(
    JSON,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6),
    max_leaves=30,
)


@pytest.mark.parametrize("parse", [parse_chat, parse_messages, parse_embeddings], ids=["chat", "messages", "embeddings"])
@given(body=BODIES)
def test_any_body_parses_or_names_its_bad_field(parse: Any, body: Any) -> None:
    try:
        parse(body)
    except BodyError as exc:
        assert exc.message
        assert exc.status == 400


@given(pieces=st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=20),
       args=st.lists(st.text(max_size=12), max_size=6))
def test_openai_chunks_carry_every_piece(pieces: list[str], args: list[str]) -> None:
    w = ChatStream("m", include_usage=True)
    events = [TextDelta(p) for p in pieces] + [ToolCallDelta(0, "c1", "f", "")]
    events += [ToolCallDelta(0, None, None, a) for a in args] + [Finish("stop"), Usage(3, 4), Done()]
    raw = w.start() + b"".join(w.event(e) or b"" for e in events) + w.done()
    datas = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert text == "".join(pieces)
    assert "".join(tc["function"]["arguments"] for tc in calls) == "".join(args)
    assert calls[0]["id"] == "c1" and all("id" not in tc for tc in calls[1:])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == ["tool_calls"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


@given(pieces=st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=20))
def test_anthropic_events_carry_every_piece(pieces: list[str]) -> None:
    w = MessageStream("m")
    events = [TextDelta(p) for p in pieces] + [Finish("length"), Usage(3, 4), Done()]
    raw = w.start() + b"".join(w.event(e) or b"" for e in events) + w.done(usage_sent=True)
    blocks = [b for b in raw.decode().split("\n\n") if b]
    names = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    datas = [json.loads(b.split("\n")[1].removeprefix("data: ")) for b in blocks]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("content_block_start") == names.count("content_block_stop") == 1
    assert "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta") == "".join(pieces)
    [delta] = [d for d in datas if d["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "max_tokens" and delta["usage"]["output_tokens"] == 4
