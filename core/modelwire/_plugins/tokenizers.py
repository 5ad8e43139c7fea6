"""Tokenizers: count tokens before sending, and when a provider reports no usage.

A tokenizer is a plugin (hook ``register_tokenizers``): any object with
``count(text) -> int``, and optionally ``encode(text) -> list[int]``. A model
names its tokenizer in the manifest (``tokenizer: cl100k_base``); without one
the built-in ``approx`` is used. Exact BPE tokenizers come from plugins (the
``modelwire-tiktoken`` distribution registers ``cl100k_base`` and
``o200k_base``).

``approx`` needs no data file and no third-party package. It sums a weight per
piece of text, then rounds to the nearest whole token (at least 1 for any
non-empty text):

==================================================  ==========
piece                                               tokens
==================================================  ==========
a run of ASCII letters, cut where lower case turns  1, plus 1/4 per
upper (``getUserName`` is three runs)               letter past the 6th
an ASCII digit                                      0.6
ASCII punctuation, a symbol or a control character  0.5
ASCII whitespace                                    0.125
U+0080 to U+07FF (accented Latin, Greek, Cyrillic,  0.35
Hebrew, Arabic: two UTF-8 bytes)
U+0800 to U+FFFF (CJK, kana, Hangul, Indic          0.9
scripts, most symbols: three UTF-8 bytes)
U+10000 and above (emoji, rare CJK: four bytes)     2
==================================================  ==========

Why these: BPE vocabularies hold common words whole, so a word is a token
whatever its length, and long or random words split into pieces of about
four letters. Digits go in groups of at most three, and punctuation pairs up
(``":``, ``),``). For other scripts the token cost follows the UTF-8 length
of a character. The weights were fitted to aim between the BPE encodings
``cl100k_base`` and ``o200k_base``; on the varied sample texts in
``tests/test_tokenizers.py`` (prose, code, JSON, logs, HTML, identifiers,
CJK, Cyrillic, European languages, emoji) the estimate stays within 35 % of
both (``docs/tokenizers.md`` has the table). For Greek, Arabic and Indic
scripts the two encodings differ by 2-3x from each other, so no single
estimate is close to both; ``approx`` lands near ``o200k_base`` for Greek and
Arabic, and between the two for Devanagari.

:func:`count_messages` counts a whole chat request the way the tiktoken
cookbook ("How to count tokens with tiktoken") does: a few tokens of framing
per message, per tool definition and for the reply primer, on top of the
text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._errors import InvalidRequestError

__all__ = [
    "APPROX",
    "FUNC_END",
    "FUNC_INIT",
    "NON_TEXT_PART_TOKENS",
    "REPLY_PRIMER",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_PER_TOOL_CALL",
    "ApproxTokenizer",
    "EncodingTokenizer",
    "SupportsCount",
    "Tokenizer",
    "count_messages",
]


class SupportsCount(Protocol):
    """The least a tokenizer must do: ``count(text) -> int``."""

    def count(self, text: str) -> int: ...


@runtime_checkable
class Tokenizer(Protocol):
    """A named token counter.

    ``count(text)`` is the number of tokens ``text`` encodes to, with no
    framing added (see :func:`count_messages` for chat requests). It must
    accept any ``str``, including special-token markers such as
    ``<|endoftext|>``, which count as ordinary text.
    """

    name: str

    def count(self, text: str) -> int: ...


@runtime_checkable
class EncodingTokenizer(Tokenizer, Protocol):
    """A tokenizer that can also return the token ids: ``len(encode(t)) == count(t)``."""

    def encode(self, text: str) -> list[int]: ...


# -- approx -----------------------------------------------------------------

#: Letter runs; an upper-case run followed by a lower-case letter gives its last
#: capital to the next run (``HTTPServer`` -> ``HTTP``, ``Server``).
_WORD_RE = re.compile(rb"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGITS = b"0123456789"
_SPACES = b" \t\n\r\x0b\x0c"

#: The weights of :class:`ApproxTokenizer` (see the module docstring).
WORD = 1.0
WORD_FREE_LETTERS = 6
EXTRA_LETTER = 0.25
DIGIT = 0.6
PUNCT = 0.5
SPACE = 0.125
TWO_BYTE = 0.35
THREE_BYTE = 0.9
FOUR_BYTE = 2.0


class ApproxTokenizer:
    """The built-in estimate (``approx``): no data files, about the size of a BPE count.

    Pure arithmetic over character classes (see the module docstring for the
    weights and their measured error). Deterministic and stateless; counting
    costs a few passes over the text in C plus one regex scan of its words.
    """

    __slots__ = ()

    name = "approx"

    def count(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"count() takes a str, got {type(text).__name__}")
        n = len(text)
        if n == 0:
            return 0
        # One byte per character: ASCII kept, everything else becomes "?".
        ascii_ = text.encode("ascii", "replace")
        n_ascii = len(text.encode("ascii", "ignore"))
        others = n - n_ascii
        two = three = four = 0
        if others:
            # Split the non-ASCII characters by UTF-8 length from two C-level
            # encodings: each astral character takes one extra UTF-16 unit.
            utf8 = len(text.encode("utf-8", "surrogatepass"))
            four = len(text.encode("utf-16-le", "surrogatepass")) // 2 - n
            three = utf8 - n_ascii - 2 * others - 2 * four
            two = others - three - four
        letters = n - len(ascii_.translate(None, _LETTERS))
        digits = n - len(ascii_.translate(None, _DIGITS))
        spaces = n - len(ascii_.translate(None, _SPACES))
        punct = n_ascii - letters - digits - spaces
        words = _WORD_RE.findall(ascii_)
        extra = sum(len(w) - WORD_FREE_LETTERS for w in words if len(w) > WORD_FREE_LETTERS)
        total = (
            WORD * len(words)
            + EXTRA_LETTER * extra
            + DIGIT * digits
            + PUNCT * punct
            + SPACE * spaces
            + TWO_BYTE * two
            + THREE_BYTE * three
            + FOUR_BYTE * four
        )
        # Round to the nearest token; any non-empty text is at least one.
        return max(1, math.floor(total + 0.5))

    def __repr__(self) -> str:
        return "ApproxTokenizer()"


#: The one ``approx`` instance (it holds no state).
APPROX = ApproxTokenizer()


# -- chat requests -------------------------------------------------------------

#: Framing of each message (``<|start|>role<|message|>...<|end|>``), per the cookbook.
TOKENS_PER_MESSAGE = 3
#: Added when a message carries a ``name``.
TOKENS_PER_NAME = 1
#: The primer of the reply (``<|start|>assistant<|message|>``), once per request.
REPLY_PRIMER = 3
#: Framing of each tool call in an assistant message (an estimate: name and
#: arguments are counted as text on top).
TOKENS_PER_TOOL_CALL = 3
#: An image or other non-text content part: a flat 85, what a low-detail image
#: costs on the o200k_base models. Detailed images cost more; the provider's
#: reported usage corrects the estimate after the call.
NON_TEXT_PART_TOKENS = 85
#: Tool definitions, per the cookbook's figures for o200k_base models: per tool, per
#: parameter block, per property, per enum, and once after the last tool.
FUNC_INIT = 7
PROP_INIT = 3
PROP_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNC_END = 12


def count_messages(
    tokenizer: SupportsCount,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """The prompt tokens of a chat request in the unified shape.

    ``messages`` are ``{role, content, name?, tool_calls?, tool_call_id?}``
    with ``content`` a string, ``None``, or a list of parts (``{type: text,
    text}``; any other part, such as ``{type: image_url, url}``, counts
    :data:`NON_TEXT_PART_TOKENS`). ``tool_calls`` are ``[{id, name,
    arguments}]`` (the ``{function: {...}}`` shape is accepted too);
    ``arguments`` is JSON text or a mapping. ``tools`` are ``[{name,
    description, parameters}]`` (or ``{function: {...}}``).

    Each message costs :data:`TOKENS_PER_MESSAGE` plus its role, text and
    name (+ :data:`TOKENS_PER_NAME`); each tool call
    :data:`TOKENS_PER_TOOL_CALL` plus its name and arguments; ids are not
    counted. The reply primer adds :data:`REPLY_PRIMER` once. Tools are
    counted as the cookbook does for o200k_base models: ``name:description`` per tool,
    ``key:type:description`` per parameter (recursing into nested objects and
    array items), enum values, and the fixed overheads :data:`FUNC_INIT`,
    ``PROP_INIT``, ``PROP_KEY``, ``ENUM_INIT``, ``ENUM_ITEM`` and
    :data:`FUNC_END`.

    A malformed message or tool raises ``InvalidRequestError`` (codes
    ``BAD_MESSAGE``, ``BAD_TOOL``) naming its place, e.g.
    ``messages[2].content``.
    """
    count = tokenizer.count
    total = REPLY_PRIMER
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise _bad_message(f"messages[{i}] must be a mapping, got {type(message).__name__}")
        total += TOKENS_PER_MESSAGE
        total += count(_text(message.get("role") or "", f"messages[{i}].role"))
        total += _count_content(count, message.get("content"), f"messages[{i}].content")
        name = message.get("name")
        if name is not None:
            total += count(_text(name, f"messages[{i}].name")) + TOKENS_PER_NAME
        calls = message.get("tool_calls") or ()
        if isinstance(calls, (str, bytes)) or not isinstance(calls, Sequence):
            raise _bad_message(f"messages[{i}].tool_calls must be a list, got {type(calls).__name__}")
        for j, call in enumerate(calls):
            total += _count_call(count, call, f"messages[{i}].tool_calls[{j}]")
    if tools:
        for k, tool in enumerate(tools):
            total += _count_tool(count, tool, f"tools[{k}]")
        total += FUNC_END
    return total


def _bad_message(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, code="BAD_MESSAGE")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad_message(f"{where} must be a string, got {type(value).__name__}")
    return value


def _count_content(count: Callable[[str], int], content: Any, where: str) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, Sequence) or isinstance(content, bytes):
        raise _bad_message(
            f"{where} must be a string or a list of parts, got {type(content).__name__}"
        )
    total = 0
    for j, part in enumerate(content):
        if isinstance(part, str):
            total += count(part)
        elif not isinstance(part, Mapping):
            raise _bad_message(f"{where}[{j}] must be a mapping, got {type(part).__name__}")
        elif part.get("type", "text") == "text":
            total += count(_text(part.get("text") or "", f"{where}[{j}].text"))
        else:
            total += NON_TEXT_PART_TOKENS
    return total


def _count_call(count: Callable[[str], int], call: Any, where: str) -> int:
    if not isinstance(call, Mapping):
        # A modelwire.ToolCall (or any object with name and arguments).
        if hasattr(call, "name") and hasattr(call, "arguments"):
            call = {"name": call.name, "arguments": call.arguments}
        else:
            raise _bad_message(f"{where} must be a mapping, got {type(call).__name__}")
    fn = call.get("function")
    if isinstance(fn, Mapping):
        call = fn
    total = TOKENS_PER_TOOL_CALL + count(_text(call.get("name") or "", f"{where}.name"))
    args = call.get("arguments")
    if isinstance(args, Mapping):
        args = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
    if args is not None:
        total += count(_text(args, f"{where}.arguments"))
    return total


def _count_tool(count: Callable[[str], int], tool: Any, where: str) -> int:
    if not isinstance(tool, Mapping):
        raise InvalidRequestError(
            f"{where} must be a mapping, got {type(tool).__name__}", code="BAD_TOOL"
        )
    fn = tool.get("function")
    if isinstance(fn, Mapping):
        tool = fn
    name = tool.get("name")
    if not isinstance(name, str):
        raise InvalidRequestError(f"{where} needs a name", code="BAD_TOOL")
    description = _strip_period(tool.get("description"))
    total = FUNC_INIT + count(f"{name}:{description}")
    schema = tool.get("parameters") or tool.get("input_schema") or {}
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(
            f"{where}.parameters must be a JSON Schema object, got {type(schema).__name__}",
            code="BAD_TOOL",
        )
    return total + _count_properties(count, schema)


def _count_properties(count: Callable[[str], int], schema: Mapping[str, Any]) -> int:
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return 0
    total = PROP_INIT
    for key, prop in props.items():
        total += PROP_KEY
        if not isinstance(prop, Mapping):
            total += count(str(key))
            continue
        ptype = prop.get("type", "")
        if isinstance(ptype, list):
            ptype = "|".join(str(t) for t in ptype)
        enum = prop.get("enum")
        if isinstance(enum, list) and enum:
            total += ENUM_INIT
            for item in enum:
                total += ENUM_ITEM + count(item if isinstance(item, str) else json.dumps(item))
        total += count(f"{key}:{ptype}:{_strip_period(prop.get('description'))}")
        total += _count_properties(count, prop)
        items = prop.get("items")
        if isinstance(items, Mapping):
            total += _count_properties(count, items)
    return total


def _strip_period(description: Any) -> str:
    text = description if isinstance(description, str) else ""
    return text[:-1] if text.endswith(".") else text
