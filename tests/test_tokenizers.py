"""Tokenizers: the built-in ``approx`` estimate, ``count_messages``, the protocols,
and approx's error measured against the exact cl100k_base / o200k_base counts
(when the ``modelwire-tiktoken`` plugin is installed)."""

# ruff: noqa: RUF001  (sample texts in Greek, Cyrillic, ... on purpose)
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelwire
from modelwire import InvalidRequestError, Plugins, ToolCall
from modelwire._plugins import builtins as builtins_module
from modelwire._plugins.tokenizers import (
    APPROX,
    FUNC_END,
    FUNC_INIT,
    NON_TEXT_PART_TOKENS,
    REPLY_PRIMER,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOKENS_PER_TOOL_CALL,
    ApproxTokenizer,
    EncodingTokenizer,
    Tokenizer,
    count_messages,
)

# -- approx ---------------------------------------------------------------------------

APPROX_CASES = [
    pytest.param("", 0, id="empty"),
    pytest.param(" ", 1, id="one-space"),
    pytest.param("a", 1, id="one-letter"),
    pytest.param("hello world", 2, id="two-words"),
    pytest.param("Hello, world!", 3, id="punctuation"),
    pytest.param("internationalization", 5, id="long-word"),  # 1 + 14 x 1/4, rounded
    pytest.param("getUserNameFromDatabase", 6, id="camel-case"),  # get User Name From Database(+2/4)
    pytest.param("HTTPServer", 2, id="acronym-then-word"),
    pytest.param("SELECT", 1, id="upper-case-word"),
    pytest.param("1234567890", 6, id="digits"),
    pytest.param("    \n\n", 1, id="whitespace"),
    pytest.param("你好", 2, id="cjk"),
    pytest.param("こんにちは世界", 6, id="kana-and-kanji"),
    pytest.param("Привет, мир", 4, id="cyrillic"),
    pytest.param("café", 1, id="accented-latin"),
    pytest.param("👍", 2, id="emoji"),
    pytest.param("👨‍👩‍👧‍👦", 11, id="emoji-zwj-family"),  # 4 x 2 + 3 joiners x 0.9
    pytest.param("\ud800", 1, id="lone-surrogate"),
    pytest.param("word " * 1000, 1125, id="long-text"),
    pytest.param("语言模型" * 1000, 3600, id="long-cjk"),
]


@pytest.mark.parametrize(("text", "expected"), APPROX_CASES)
def test_approx_table(text: str, expected: int) -> None:
    assert APPROX.count(text) == expected


def test_approx_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="takes a str, got bytes"):
        APPROX.count(b"hello")  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_approx_is_bounded(text: str) -> None:
    n = APPROX.count(text)
    assert (n == 0) == (text == "")
    # No code point weighs more than 2 (an astral one); rounding adds at most 1.
    assert n <= 2 * len(text) + 1
    assert n == APPROX.count(text)


@given(st.text(max_size=80), st.text(max_size=80))
def test_approx_of_a_join_is_at_most_the_sum_plus_rounding(a: str, b: str) -> None:
    """Joining texts can merge words (fewer tokens), never split them (more)."""
    assert APPROX.count(a + b) <= APPROX.count(a) + APPROX.count(b) + 1


# -- registration and protocols ------------------------------------------------------


def test_approx_is_a_builtin() -> None:
    """Needs ``register_tokenizers`` in the built-in plugin (``_plugins.builtins``)."""
    plugins = Plugins(entry_points=False)
    assert plugins.get_tokenizer("approx") is APPROX
    assert plugins.get("tokenizer", "approx").distribution == "modelwire"


def test_hookimpl_registers_approx() -> None:
    plugins = Plugins(entry_points=False, builtins=False)
    plugins.register(builtins_module, name="builtins")
    assert plugins.names("tokenizer") == ["approx"]
    assert plugins.get_tokenizer("approx") is APPROX


class WordTokenizer:
    """A throwaway tokenizer: one token per whitespace-separated word."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())

    def encode(self, text: str) -> list[int]:
        return [len(word) for word in text.split()]


class CountOnly:
    """The least the hook asks for: no name, no encode."""

    def count(self, text: str) -> int:
        return len(text)


def test_protocol_conformance() -> None:
    assert isinstance(APPROX, Tokenizer)
    assert not isinstance(APPROX, EncodingTokenizer)  # approx cannot give ids
    assert isinstance(WordTokenizer(), Tokenizer)
    assert isinstance(WordTokenizer(), EncodingTokenizer)
    assert not isinstance(CountOnly(), Tokenizer)
    assert not isinstance("approx", Tokenizer)
    assert APPROX.name == "approx"
    assert repr(APPROX) == "ApproxTokenizer()"
    assert isinstance(ApproxTokenizer(), Tokenizer)


def test_a_third_party_tokenizer_registered_by_a_plugin() -> None:
    class Plugin:
        @modelwire.hookimpl
        def register_tokenizers(self, register: Any) -> None:
            register("words", WordTokenizer())

    plugins = Plugins(entry_points=False, builtins=False)
    plugins.register(Plugin(), name="words-plugin")
    tok = plugins.get_tokenizer("words")
    assert tok.count("one two three") == 3
    assert count_messages(tok, [{"role": "user", "content": "one two"}]) == 3 + 1 + 2 + 3


# -- count_messages ---------------------------------------------------------------------

W = WordTokenizer()
MSG = TOKENS_PER_MESSAGE
END = REPLY_PRIMER
CALL = TOKENS_PER_TOOL_CALL

MESSAGE_CASES = [
    pytest.param([], END, id="no-messages"),
    pytest.param([{"role": "user", "content": "hello world"}], MSG + 1 + 2 + END, id="one-user"),
    pytest.param(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there you"}],
        (MSG + 1 + 2) + (MSG + 1 + 3) + END,
        id="system-and-user",
    ),
    pytest.param(
        [{"role": "user", "content": "hi", "name": "ann lee"}],
        MSG + 1 + 1 + 2 + TOKENS_PER_NAME + END,
        id="name",
    ),
    pytest.param(
        [{"role": "user", "content": [{"type": "text", "text": "look at"}, {"type": "text", "text": "this"}]}],
        MSG + 1 + 3 + END,
        id="text-parts",
    ),
    pytest.param(
        [{"role": "user", "content": [{"type": "text", "text": "what is it"},
                                      {"type": "image_url", "url": "https://example.org/a.png"}]}],
        MSG + 1 + 3 + NON_TEXT_PART_TOKENS + END,
        id="image-part",
    ),
    pytest.param(
        [{"role": "user", "content": ["bare string part", {"text": "untyped part"}]}],
        MSG + 1 + 3 + 2 + END,
        id="lenient-parts",
    ),
    pytest.param(
        [{"role": "assistant", "content": None,
          "tool_calls": [{"id": "call_1", "name": "get weather", "arguments": '{"city": "Paris"}'}]}],
        MSG + 1 + (CALL + 2 + 2) + END,
        id="tool-call",
    ),
    pytest.param(
        [{"role": "assistant", "content": "",
          "tool_calls": [{"id": "c", "type": "function",
                          "function": {"name": "lookup", "arguments": {"q": "a b"}}}]}],
        MSG + 1 + (CALL + 1 + 2) + END,
        id="openai-shaped-call-with-mapping-arguments",
    ),
    pytest.param(
        [{"role": "assistant", "tool_calls": [ToolCall(id="c", name="lookup", arguments='{"q": 1}')]}],
        MSG + 1 + (CALL + 1 + 2) + END,
        id="toolcall-object",
    ),
    pytest.param(
        [{"role": "tool", "tool_call_id": "call_1 not counted", "content": "18 degrees"}],
        MSG + 1 + 2 + END,
        id="tool-result",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), MESSAGE_CASES)
def test_count_messages_table(messages: list[Mapping[str, Any]], expected: int) -> None:
    assert count_messages(W, messages) == expected


WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}
WEATHER_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def test_tools_follow_the_cookbook_formula() -> None:
    # name:description, then per property key:type:description, enum items.
    expected_tool = (
        FUNC_INIT
        + W.count("get_current_weather:Get the current weather in a given location")
        + 3  # PROP_INIT
        + 3 + W.count("location:string:The city and state, e.g. San Francisco, CA")
        + 3 + (-3) + (3 + 1) + (3 + 1) + W.count("unit:string:The unit of temperature to return")
    )
    without = count_messages(W, WEATHER_MESSAGES)
    assert count_messages(W, WEATHER_MESSAGES, [WEATHER_TOOL]) == without + expected_tool + FUNC_END
    # The unified {name, description, parameters} shape counts the same.
    unified = dict(WEATHER_TOOL["function"])
    assert count_messages(W, WEATHER_MESSAGES, [unified]) == without + expected_tool + FUNC_END
    assert count_messages(W, WEATHER_MESSAGES, []) == without


def test_nested_tool_schemas_are_counted() -> None:
    flat = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}}}}
    nested = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {
        "q": {"type": "string"},
        "filters": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": ["string", "null"], "description": "which field."}}}}}}}
    grown = count_messages(W, [], [nested]) - count_messages(W, [], [flat])
    # filters: key + line; then the items' block: PROP_INIT + key + "field:string|null:which field"
    assert grown == (3 + 1) + (3 + 3 + 2)


BAD_CASES = [
    pytest.param(["not a mapping"], None, "BAD_MESSAGE", r"messages\[0\] must be a mapping", id="message-not-mapping"),
    pytest.param([{"role": "user", "content": 42}], None, "BAD_MESSAGE", r"messages\[0\]\.content must be", id="content-int"),
    pytest.param([{"role": "user", "content": [7]}], None, "BAD_MESSAGE", r"messages\[0\]\.content\[0\] must be a mapping", id="part-int"),
    pytest.param([{"role": 3, "content": "x"}], None, "BAD_MESSAGE", r"messages\[0\]\.role must be a string", id="role-int"),
    pytest.param([{"role": "user", "content": "x", "name": 5}], None, "BAD_MESSAGE", r"messages\[0\]\.name", id="name-int"),
    pytest.param([{"role": "assistant", "tool_calls": "nope"}], None, "BAD_MESSAGE", r"tool_calls must be a list", id="calls-str"),
    pytest.param([{"role": "assistant", "tool_calls": [{"name": "f", "arguments": 3}]}], None, "BAD_MESSAGE",
                 r"messages\[0\]\.tool_calls\[0\]\.arguments must be a string", id="arguments-int"),
    pytest.param([{"role": "assistant", "tool_calls": [1]}], None, "BAD_MESSAGE", r"tool_calls\[0\] must be a mapping", id="call-int"),
    pytest.param([], ["tool"], "BAD_TOOL", r"tools\[0\] must be a mapping", id="tool-not-mapping"),
    pytest.param([], [{"description": "no name"}], "BAD_TOOL", r"tools\[0\] needs a name", id="tool-no-name"),
    pytest.param([], [{"name": "f", "parameters": "x"}], "BAD_TOOL", r"tools\[0\]\.parameters must be", id="tool-bad-schema"),
]


@pytest.mark.parametrize(("messages", "tools", "code", "match"), BAD_CASES)
def test_bad_input_is_a_typed_error_naming_the_place(
    messages: Any, tools: Any, code: str, match: str
) -> None:
    with pytest.raises(InvalidRequestError, match=match) as info:
        count_messages(APPROX, messages, tools)
    assert info.value.code == code


def test_count_messages_with_approx() -> None:
    messages = [{"role": "user", "content": "hello world"}]
    assert count_messages(APPROX, messages) == MSG + APPROX.count("user") + 2 + END


# -- approx against the exact encodings ----------------------------------------------

#: Varied sample texts. Their counts are quoted in docs/tokenizers.md.
CORPORA = {
    "english": (
        "The quick brown fox jumps over the lazy dog. Language models read text as tokens, "
        "not as characters or words: a common English word is usually one token, while a rare "
        "or long word is split into two or three pieces. Punctuation, spaces and capital letters "
        "all change how a sentence is cut. As a rule of thumb, one token is about four characters "
        "of English, or three quarters of a word, so a hundred tokens hold roughly seventy-five words. "
        "Rate limits, context windows and prices are all counted in tokens, which is why a client "
        "that wants to refuse an over-long request before sending it needs a way to count them. "
        "An exact count needs the model's own tokenizer; an estimate is enough to stay well inside "
        "a limit, as long as its error is known and bounded.\n\n"
        "When the request is finally sent, the provider reports how many tokens it actually used, "
        "and the client can reconcile its estimate with the real figure."
    ),
    "python": (
        "def count_messages(tokenizer, messages, tools=None):\n"
        '    """Count the prompt tokens of a chat request."""\n'
        "    total = 0\n"
        "    for index, message in enumerate(messages):\n"
        "        total += TOKENS_PER_MESSAGE\n"
        '        total += tokenizer.count(message.get("role", "user"))\n'
        '        content = message.get("content")\n'
        "        if isinstance(content, str):\n"
        "            total += tokenizer.count(content)\n"
        "        elif content is not None:\n"
        "            for part in content:\n"
        '                if part.get("type") == "text":\n'
        '                    total += tokenizer.count(part["text"])\n'
        '        for call in message.get("tool_calls") or ():\n'
        '            total += 3 + tokenizer.count(call["name"]) + tokenizer.count(call["arguments"])\n'
        "    if tools:\n"
        "        total += sum(tokenizer.count(json.dumps(t, separators=(',', ':'))) for t in tools)\n"
        "    return total + REPLY_PRIMER  # every reply starts with <|start|>assistant<|message|>\n"
        "\n\nclass Limiter:\n    def __init__(self, rpm: int, tpm: int) -> None:\n"
        "        self._rpm = rpm\n        self._tpm = tpm\n        self._window: list[tuple[float, int]] = []\n"
    ),
    "json": (
        '{"id": "chatcmpl-9x8Yz", "object": "chat.completion.chunk", "created": 1718000000, '
        '"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"role": "assistant", '
        '"content": "", "tool_calls": [{"index": 0, "id": "call_abc123", "type": "function", '
        '"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"unit\\": '
        '\\"celsius\\"}"}}]}, "logprobs": null, "finish_reason": null}], "usage": {"prompt_tokens": 82, '
        '"completion_tokens": 17, "total_tokens": 99}, "system_fingerprint": "fp_0ba0d124f1", '
        '"tags": ["weather", "paris", "tool-call"], "limits": {"rpm": 500, "tpm": 200000, '
        '"context_window": 128000}, "ok": true, "ratio": 0.3125, "items": [1, 2, 3, 5, 8, 13, 21, 34]}'
    ),
    "log-lines": (
        "2024-06-10T12:34:56.789Z INFO request_id=7f3a9c21 status=200 latency_ms=1234 tokens_in=8192 tokens_out=512\n"
        "2024-06-10T12:34:57.001Z WARN request_id=7f3a9c22 status=429 retry_after=2.5 rpm=500/500\n"
        "2024-06-10T12:34:59.512Z ERROR request_id=7f3a9c23 status=503 upstream=10.0.0.12:8443 attempt=3/5\n"
        "Totals: 3.14159 2.71828 1.41421 1000000 123456789 0xDEADBEEF 192.168.1.1 +33 6 12 34 56 78\n"
    ),
    "markdown": (
        "# Tokenizers\n\n"
        "| name | exact | offline |\n|---|---|---|\n| `approx` | no | yes |\n| `cl100k_base` | yes | yes |\n\n"
        "- **Fast**: counts *millions* of characters per second.\n"
        "- See [the docs](https://example.org/docs/tokenizers.md#approx) for `count_messages()`.\n\n"
        "```yaml\nmodels:\n  gpt-4o:\n    tokenizer: o200k_base\n```\n"
    ),
    "html": (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n  <title>Token counter</title>\n'
        '  <link rel="stylesheet" href="/static/app.css?v=3">\n</head>\n<body class="dark">\n'
        '  <form id="count" method="post" action="/api/count">\n    <label for="text">Text</label>\n'
        '    <textarea id="text" name="text" rows="8" cols="80"></textarea>\n'
        '    <button type="submit" disabled>Count tokens</button>\n  </form>\n'
        '  <script>document.querySelector("#text").addEventListener("input", e => update(e.target.value));</script>\n'
        "</body>\n</html>\n"
    ),
    "shell-and-sql": (
        "$ psql -h localhost -U app -d usage\n"
        "usage=> SELECT model, SUM(input_tokens) AS tin, SUM(output_tokens) AS tout\n"
        "usage->   FROM calls WHERE ts >= now() - interval '1 day' GROUP BY model ORDER BY tin DESC LIMIT 5;\n"
        "$ export TIKTOKEN_CACHE_DIR=/var/cache/tiktoken && pip install -e 'plugins/modelwire-tiktoken[test]'\n"
        "$ grep -rn --include='*.py' 'def count' core/ | wc -l\n"
        "$ curl -sS -H 'Authorization: Bearer $KEY' https://api.example.com/v1/models | jq '.data[].id'\n"
    ),
    "ids-and-base64": (
        "call_9sKx2LqPzT0vB7nWm4Ra ; chatcmpl-AbC123xYz789QwErTy ; sha256:3f2a9c1be07d44e8a1f0b6c2d9e8f7a6 "
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg== "
        "550e8400-e29b-41d4-a716-446655440000 7c9e6679-7425-40de-944b-e07fc1f90ae7 "
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ),
    "european": (
        "Les modèles de langage lisent le texte en jetons, et non en caractères ou en mots. "
        "Ein häufiges Wort ist meist ein einziges Token, während ein seltenes oder langes Wort in zwei "
        "oder drei Stücke geteilt wird. Los límites de velocidad, las ventanas de contexto y los precios "
        "se cuentan en tokens, así que un cliente que quiera rechazar una petición demasiado larga antes "
        "de enviarla necesita una forma de contarlos. Ça coûte cher, n'est-ce pas ? Größenänderung, "
        "Straße, Übermäßig, façade, naïve, señor, mañana, ação, coração."
    ),
    "russian": (
        "Языковые модели читают текст не по буквам и не по словам, а по токенам. Частое слово обычно "
        "занимает один токен, а редкое или длинное делится на две-три части. Ограничения скорости, окно "
        "контекста и цены считаются в токенах, поэтому клиенту, который хочет отклонить слишком длинный "
        "запрос до отправки, нужен способ их посчитать. Точный подсчёт требует собственного токенизатора "
        "модели; оценки достаточно, если её погрешность известна и ограничена."
    ),
    "chinese": (
        "语言模型不是按字或词来读文本的，而是按“词元”来读。常见的汉字往往是一个词元，"
        "生僻字可能被拆成两到三个字节级的片段。速率限制、上下文窗口和价格都以词元计算，"
        "所以客户端若想在发送请求之前拒绝过长的请求，就需要一种计数的方法。精确的计数需要模型自己的分词器；"
        "估算只要误差已知且有界，就足以让请求安全地留在限制之内。请求发出后，服务商会报告实际使用的词元数，"
        "客户端可以据此校正自己的估算。今天天气很好，我们去公园散步吧。"
    ),
    "japanese": (
        "言語モデルはテキストを文字や単語ではなく、トークンとして読みます。よく使われる単語は一つのトークンになることが多く、"
        "珍しい単語は二つか三つに分けられます。レート制限、コンテキストウィンドウ、料金はすべてトークンで数えられるので、"
        "長すぎるリクエストを送信前に断りたいクライアントには数える方法が必要です。正確な数にはモデル自身のトークナイザーが必要ですが、"
        "誤差が分かっていて有界であれば、見積もりで十分です。東京は今日も晴れです。"
    ),
    "korean": (
        "언어 모델은 텍스트를 글자나 단어가 아니라 토큰 단위로 읽습니다. 자주 쓰이는 단어는 보통 하나의 토큰이지만, "
        "드문 단어는 두세 조각으로 나뉩니다. 속도 제한, 컨텍스트 창, 가격은 모두 토큰으로 계산되므로, "
        "너무 긴 요청을 보내기 전에 거절하려는 클라이언트에게는 토큰을 세는 방법이 필요합니다."
    ),
    "emoji-chat": (
        "omg that demo was 🔥🔥🔥 can't wait to try it 😂👍 "
        "see you at 5pm 🎉🥳 — bring snacks 🍕🍩☕ "
        "ok ✅ done! 🚀 next: deploy 🤞🙏 "
        "❤️ thanks team 👏👏 👨‍👩‍👧‍👦 🇫🇷 🇯🇵"
    ),
    "mixed-chat": (
        "User: 帮我把这段话翻译成英文：今天的会议改到下午三点。\n"
        'Assistant: Sure! "Today\'s meeting has been moved to 3 p.m." 👍\n'
        "User: Merci ! Et en japonais ? 日本語でお願いします。\n"
        "Assistant: 「今日の会議は午後3時に変更されました。」 — voilà 😊\n"
    ),
}

#: Scripts on which cl100k_base and o200k_base disagree 2-3x with each other.
DIVERGENT = {
    "greek": (
        "Τα γλωσσικά μοντέλα διαβάζουν το κείμενο ως σύμβολα και όχι ως χαρακτήρες ή λέξεις. "
        "Μια συχνή λέξη είναι συνήθως ένα σύμβολο, ενώ μια σπάνια λέξη χωρίζεται σε δύο ή τρία κομμάτια."
    ),
    "arabic": (
        "تقرأ النماذج اللغوية النص على شكل رموز وليس على شكل حروف أو كلمات. الكلمة الشائعة تكون عادة رمزا واحدا، "
        "بينما تنقسم الكلمة النادرة أو الطويلة إلى قطعتين أو ثلاث. حدود المعدل ونوافذ السياق والأسعار كلها تحسب بالرموز."
    ),
    "hindi": (
        "भाषा मॉडल पाठ को अक्षरों या शब्दों के रूप में नहीं, बल्कि टोकन के रूप में पढ़ते हैं। एक आम शब्द आमतौर पर एक टोकन होता है, "
        "जबकि एक दुर्लभ या लंबा शब्द दो या तीन टुकड़ों में बँट जाता है।"
    ),
}

BOUND = 0.35
ENCODINGS = ("cl100k_base", "o200k_base")


@pytest.fixture(scope="module")
def exact() -> dict[str, Any]:
    pytest.importorskip("modelwire_tiktoken")
    plugins = Plugins(only=["tiktoken"])
    return {name: plugins.get_tokenizer(name) for name in ENCODINGS}


def relative_error(estimate: int, actual: int) -> float:
    return estimate / actual - 1


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_approx_within_bound_of_exact(exact: dict[str, Any], corpus: str, encoding: str) -> None:
    text = CORPORA[corpus]
    actual = exact[encoding].count(text)
    estimate = APPROX.count(text)
    assert abs(relative_error(estimate, actual)) <= BOUND, (corpus, encoding, estimate, actual)


@pytest.mark.parametrize("corpus", sorted(DIVERGENT))
def test_approx_within_the_span_where_encodings_disagree(exact: dict[str, Any], corpus: str) -> None:
    text = DIVERGENT[corpus]
    counts = sorted(exact[e].count(text) for e in ENCODINGS)
    assert counts[1] > 2 * counts[0]  # the encodings really do disagree this much
    assert (1 - BOUND) * counts[0] <= APPROX.count(text) <= (1 + BOUND) * counts[1]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_approx_mean_error_is_small(exact: dict[str, Any], encoding: str) -> None:
    errors = [abs(relative_error(APPROX.count(t), exact[encoding].count(t))) for t in CORPORA.values()]
    assert sum(errors) / len(errors) <= 0.20
    whole = "\n\n".join(CORPORA.values())
    assert abs(relative_error(APPROX.count(whole), exact[encoding].count(whole))) <= 0.15


def test_cookbook_example_matches_the_api_figure(exact: dict[str, Any]) -> None:
    """OpenAI's cookbook reports 101 prompt tokens from the API for this gpt-4o request."""
    assert count_messages(exact["o200k_base"], WEATHER_MESSAGES, [WEATHER_TOOL]) == 101


def test_count_messages_with_exact_tokenizer(exact: dict[str, Any]) -> None:
    tok = exact["cl100k_base"]
    messages = [{"role": "user", "content": "hello world"}]
    assert count_messages(tok, messages) == MSG + 1 + 2 + END
    args = json.dumps({"city": "Paris"})
    call = [{"role": "assistant", "tool_calls": [{"id": "x", "name": "get_weather", "arguments": args}]}]
    assert count_messages(tok, call) == MSG + tok.count("assistant") + CALL + tok.count("get_weather") + tok.count(args) + END
