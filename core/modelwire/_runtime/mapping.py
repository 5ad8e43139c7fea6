"""Manifest rules compiled into the per-frame mapper (frames -> events) and the
error mapper (HTTP error responses -> typed errors). Pure: no I/O.

The mapper is the hot loop. Each rule is turned once into a few closures; a
frame's JSON is decoded at most once and only if some rule needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jmespath.exceptions

from .._errors import ModelError, ParseError, error_class
from .._events import (
    Citation,
    Data,
    Done,
    Embedding,
    Event,
    Finish,
    ReasoningDelta,
    ServerToolCall,
    ServerToolResult,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from .._frames import Frame
from .._manifest.expr import compile_expr, compile_node, field_path, is_true
from .._manifest.model import ErrorRaise, ErrorRule, EventRule, Operator

__all__ = ["ErrorMapper", "EventMapper", "Rule", "RuleSet", "compile_rules"]

_UNSET: Any = object()
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner

try:  # optional accelerator (``modelwire[fast]``): about 3x faster than json
    import orjson

    _fast_loads: Callable[[str], Any] | None = orjson.loads
    _FastError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised when orjson is absent
    _fast_loads = None
    _FastError = ValueError
_WS = " \t\n\r"
#: bounds of what ``remember`` keeps per response: slots, and characters of a string value
MAX_SLOTS = 1024
MAX_SLOT_TEXT = 1024
AUTO_INDEX = -1  # emit without `index`: each delta carrying an id or name starts a new call
Builder = Callable[[Any], "Event | None"]


def _opt(text: str | None) -> Callable[[Any], Any] | None:
    return None if text is None else compile_expr(text).fn


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if type(value) is str else None


def _arguments(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def _builder(emit: dict[str, Any]) -> Builder:
    """One closure per emit type; ``@`` fields skip the expression call."""
    kind = emit["type"]
    fields = {k: compile_expr(v).fn for k, v in emit.items() if k != "type" and isinstance(v, str)}
    texts = {k: v for k, v in emit.items() if k != "type"}
    get = fields.get

    if kind == "text":
        text = get("text")
        if text is None or texts.get("text") == "@":

            def text_at(value: Any) -> Event | None:
                return TextDelta(value) if type(value) is str and value else None

            return text_at

        def text_expr(value: Any) -> Event | None:
            t = text(value)  # type: ignore[misc]
            return TextDelta(t) if type(t) is str and t else None

        return text_expr

    if kind == "tool_call":
        idx, id_, name, args = get("index"), get("id"), get("name"), get("arguments")
        sig = get("signature")

        def tool_call(value: Any) -> Event | None:
            return ToolCallDelta(
                index=(_int_or_none(idx(value)) or 0) if idx else AUTO_INDEX,
                id=id_(value) if id_ else None,
                name=name(value) if name else None,
                arguments=_arguments(args(value) if args else None),
                signature=_str_or_none(sig(value)) if sig else None,
            )

        return tool_call

    if kind == "server_tool_call":
        idx, id_, name, args = get("index"), get("id"), get("name"), get("arguments")

        def server_tool_call(value: Any) -> Event | None:
            return ServerToolCall(
                index=(_int_or_none(idx(value)) or 0) if idx else 0,
                id=_str_or_none(id_(value)) if id_ else None,
                name=_str_or_none(name(value)) if name else None,
                arguments=_arguments(args(value) if args else None),
            )

        return server_tool_call

    if kind == "server_tool_result":
        call_id, rkind, content = get("tool_call_id"), get("kind"), get("content")

        def server_tool_result(value: Any) -> Event | None:
            return ServerToolResult(
                tool_call_id=_str_or_none(call_id(value)) if call_id else None,
                kind=_str_or_none(rkind(value)) if rkind else None,
                content=content(value) if content else None,
            )

        return server_tool_result

    if kind == "citation":
        url, title, cited = get("url"), get("title"), get("cited_text")

        def citation(value: Any) -> Event | None:
            c = Citation(
                url=_str_or_none(url(value)) if url else None,
                title=_str_or_none(title(value)) if title else None,
                cited_text=_str_or_none(cited(value)) if cited else None,
            )
            return c if c.url is not None or c.title is not None or c.cited_text is not None else None

        return citation

    if kind == "reasoning":
        rtext, ridx, sig, red = get("text"), get("index"), get("signature"), get("redacted")
        at = rtext is None or texts.get("text") == "@"

        def reasoning(value: Any) -> Event | None:
            t = value if at else rtext(value)  # type: ignore[misc]
            s = _str_or_none(sig(value)) if sig else None
            r = _str_or_none(red(value)) if red else None
            t = t if type(t) is str else ""
            if not t and not s and not r:
                return None
            return ReasoningDelta(
                text=t, index=(_int_or_none(ridx(value)) or 0) if ridx else 0, signature=s or None, redacted=r or None
            )

        return reasoning

    if kind == "usage":
        inp, out, cached, written, thought, long_written = (
            get(n) for n in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                             "reasoning_tokens", "cache_write_1h_tokens")
        )

        def usage(value: Any) -> Event | None:
            i = _int_or_none(inp(value)) if inp else None
            o = _int_or_none(out(value)) if out else None
            c = _int_or_none(cached(value)) if cached else None
            w = _int_or_none(written(value)) if written else None
            r = _int_or_none(thought(value)) if thought else None
            h = _int_or_none(long_written(value)) if long_written else None
            if i is None and o is None and c is None and w is None and r is None and h is None:
                return None
            return Usage(input_tokens=i, output_tokens=o, cached_input_tokens=c, cache_write_tokens=w,
                         reasoning_tokens=r, cache_write_1h_tokens=h)

        return usage

    if kind == "finish":
        reason = get("reason")

        def finish(value: Any) -> Event | None:
            r = reason(value) if reason else value
            return Finish(str(r)) if r is not None and r != "" else None

        return finish

    if kind == "embedding":
        idx, vec = get("index"), get("vector")

        def embedding(value: Any) -> Event | None:
            vector = vec(value) if vec else value
            if not isinstance(vector, list):
                return None
            return Embedding(index=_int_or_none(idx(value)) or 0 if idx else 0, vector=vector)

        return embedding

    if kind == "data":
        val = get("value")

        def data(value: Any) -> Event | None:
            v = val(value) if val else value
            return None if v is None else Data(v)

        return data

    return lambda value: Done()  # "done"


class Rule:
    __slots__ = (
        "builder", "data", "each", "each_ast", "emit", "error", "event", "kind", "needs_payload", "recall",
        "recall_ast", "recall_into", "remember", "stop", "when", "when_ast",
    )

    def __init__(self, rule: EventRule) -> None:
        self.kind = rule.emit.get("type") if rule.emit is not None else None
        self.event = rule.event
        self.data = rule.data
        when = rule.stop_when or rule.when
        self.when = _opt(when)
        #: the parsed ``when``, for the generator (shared paths, split conditions)
        self.when_ast: dict[str, Any] | None = None if when is None else compile_expr(when).ast
        self.each = _opt(rule.each)
        self.each_ast: dict[str, Any] | None = None if rule.each is None else compile_expr(rule.each).ast
        self.emit = rule.emit
        self.builder = _builder(rule.emit) if rule.emit is not None else None
        self.error = rule.error
        self.stop = rule.stop or rule.stop_when is not None
        self.remember = (
            None if rule.remember is None
            else (compile_expr(rule.remember.key).fn, compile_expr(rule.remember.value).fn)
        )
        self.recall = None if rule.recall is None else (compile_expr(rule.recall.key).fn, rule.recall.into)
        self.recall_into = None if rule.recall is None else rule.recall.into
        self.recall_ast: dict[str, Any] | None = None if rule.recall is None else compile_expr(rule.recall.key).ast
        self.needs_payload = rule.data is None and not rule.raw and (
            self.when is not None or self.each is not None or self.builder is not None
            or self.error is not None or self.remember is not None or self.recall is not None
        )


class RuleSet(list[Rule]):
    """An operator's compiled rules, plus one generated function per SSE event name.

    The generated functions are the rule loop of :meth:`EventMapper.feed_reference`
    unrolled into straight-line code (no per-rule attribute lookups or
    branches on unused features); a test checks both agree on random frames.
    """

    def __init__(self, rules: list[Rule]) -> None:
        super().__init__(rules)
        self.has_end_marker = any(r.stop for r in rules)
        names = {r.event for r in rules if r.event is not None}
        self.by_event: dict[str | None, list[Rule]] = {
            name: [r for r in rules if r.event is None or r.event == name] for name in names
        }
        self.by_event[None] = [r for r in rules if r.event is None]
        self.fns = {name: _generate(subset) for name, subset in self.by_event.items()}


#: a step of a path local: the only element of a one-element list, when that element is an object
ONLY: int = 0
_SCALARS = (str, int, float, bool)


class _Gen:
    """Source of one generated rule function, with what its rules share.

    * A plain field path (``usage``, ``delta.type``) that a ``when`` reads from
      the frame is looked up once per frame, before the rules, into a local
      (``h0``): a path of ``dict.get`` steps is pure and cannot fail, so
      looking it up early or for a rule that is never reached changes nothing.
    * A ``when`` is split at ``&&`` / ``||`` (JMESPath's truth of ``a && b``
      is the truth of ``a`` and of ``b``, evaluated left to right, as here),
      and a comparison of such a path with a string literal becomes ``h0 ==
      'text'``. Other parts are called as compiled closures.
    * A ``when`` that several rules repeat on the frame is evaluated once,
      by the first of them; later ones reuse its truth.
    * A projection over a plain path (``choices[].delta.content``,
      ``choices[?finish_reason].finish_reason``, ``choices[].delta.tool_calls[]``)
      takes a fast path when that list holds exactly one object (``n=1``, the
      common case): its paths below the element are locals too (``oh1`` says
      the list has that shape), and the projection is one value, not a loop.
      A list of any other shape runs the compiled closure, so the events of a
      multi-choice frame keep the rule loop's order (rule by rule, each over
      all choices); with one element both orders are the same.
    * ``text`` emits of ``@`` or of a frame path, and ``recall`` keys that
      are a frame path or a literal, are inline (no builder or key call).
    """

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "is_true": is_true, "raise_from": _raise_from, "recalled": _recalled, "TextDelta": TextDelta,
            "ReasoningDelta": ReasoningDelta,
            "UNSET": _UNSET, "SCALARS": _SCALARS,
        }
        self.paths: dict[tuple[str | int, ...], str] = {}
        self.truths: dict[str, str] = {}
        self.n = 0

    def name(self, prefix: str, value: Any = None) -> str:
        self.n += 1
        key = f"{prefix}{self.n}"
        if value is not None:
            self.ns[key] = value
        return key

    def path(self, names: tuple[str | int, ...]) -> str:
        """The local that holds this path of the frame (its prefixes are locals too)."""
        local = self.paths.get(names)
        if local is None:
            if len(names) > 1:
                self.path(names[:-1])
            local = self.paths[names] = f"h{len(self.paths)}"
        return local

    def hoisted(self) -> list[str]:
        """Statements that fill the path locals from ``payload``."""
        if not self.paths:
            return []
        body, nones, flags = [], [], []
        for names, local in self.paths.items():
            nones.append(local)
            if len(names) == 1:
                body.append(f"        {local} = payload.get({names[0]!r})")
            elif names[-1] == ONLY:
                parent = self.paths[names[:-1]]
                flags.append(f"o{local}")
                body.append(f"        o{local} = type({parent}) is list and len({parent}) == 1 and type({parent}[0]) is dict")
                body.append(f"        {local} = {parent}[0] if o{local} else None")
            else:
                parent = self.paths[names[:-1]]
                body.append(f"        {local} = {parent}.get({names[-1]!r}) if type({parent}) is dict else None")
        return ["    if type(payload) is dict:", *body, "    else:", f"        {' = '.join(nones)} = None",
                *([f"        {' = '.join(flags)} = False"] if flags else [])]

    def rel(self, node: dict[str, Any], base: tuple[str | int, ...]) -> str:
        """Python for ``node`` evaluated on the value at path ``base`` (a local)."""
        kind = node["type"]
        if kind in ("identity", "current"):
            return self.path(base)
        names = field_path(node)
        if names is not None:
            return self.path(base + names)
        if kind == "index_expression" and node["children"][1]["type"] == "index":
            names, k = field_path(node["children"][0]), node["children"][1]["value"]
            if names is not None and type(k) is int:
                lst = self.path(base + names)
                size = f"len({lst}) > {k}" if k >= 0 else f"len({lst}) >= {-k}"
                return f"({lst}[{k}] if type({lst}) is list and {size} else None)"
        if kind == "subexpression" and len(node["children"]) == 2:
            head = field_path(node["children"][0])
            if head is not None and node["children"][1]["type"] == "index_expression":
                return self.rel(node["children"][1], base + head)
        return f"{self.name('n', compile_node(node))}({self.path(base)})"

    def single(
        self, node: dict[str, Any], shadow: str | None
    ) -> tuple[str, str, str | None, bool, str, tuple[str | int, ...] | None] | None:
        """For ``P[].R``, ``P[?F].R`` and ``P[].R[]`` over a plain frame path ``P``:
        the one-object flag, ``R`` and ``F`` on that object, whether ``[]``
        follows, the local of ``P`` (not a list: the projection is null), and
        the path of the one value when it is a path."""
        kind, children = node["type"], node["children"]
        flat = False
        if kind == "projection" and children[1]["type"] == "identity" and children[0]["type"] == "flatten":
            inner = children[0]["children"][0]
            if inner["type"] == "projection" and field_path(children[0]["children"][0]) is None:
                node, kind, children, flat = inner, inner["type"], inner["children"], True
        if kind == "projection" and children[0]["type"] == "flatten":
            base, right, test = children[0]["children"][0], children[1], None
        elif kind == "filter_projection":
            base, right, test = children
        else:
            return None
        names = field_path(base)
        if names is None or names[0] == shadow:
            return None
        one: tuple[str | int, ...] = (*names, ONLY)
        elem = self.path(one)
        rpath = () if right["type"] in ("identity", "current") else field_path(right)
        return (f"o{elem}", self.rel(right, one), None if test is None else self.truth(test, one), flat,
                self.path(names), None if rpath is None or flat else one + rpath)

    def inline(self, node: dict[str, Any], base: tuple[str | int, ...]) -> str | None:
        """Python for a path or ``a || b`` of paths below ``base`` (all locals), else None."""
        names = field_path(node)
        if names is not None:
            return self.path(base + names)
        if node["type"] in ("identity", "current"):
            return self.path(base)
        if node["type"] == "or_expression":
            lhs, rhs = (self.inline(c, base) for c in node["children"])
            if lhs is not None and rhs is not None and field_path(node["children"][0]) is not None:
                return f"({lhs} if {_truth(lhs)} else {rhs})"
        return None

    def truth(self, node: dict[str, Any], base: tuple[str | int, ...]) -> str:
        names = field_path(node)
        if names is not None:
            return _truth(self.path(base + names))
        return f"is_true({self.rel(node, base)})"

    def cond(self, node: dict[str, Any], val: str, shadow: str | None) -> str:
        """A Python condition equal to JMESPath truth of ``node`` on ``val``.

        ``shadow`` is the field that ``recall`` added to ``val`` (a path that
        starts there is not the frame's and is not shared).
        """
        kind = node["type"]
        if kind in ("and_expression", "or_expression"):
            op = " and " if kind == "and_expression" else " or "
            return "(" + op.join(self.cond(c, val, shadow) for c in node["children"]) + ")"
        shared = val == "payload" or shadow is not None  # the frame, or the frame plus a recalled field
        names = field_path(node)
        if shared and names is not None and names[0] != shadow:
            return _truth(self.path(names))
        if shared and kind == "comparator" and node["value"] in ("eq", "ne"):
            lhs, rhs = node["children"]
            for side, other in ((lhs, rhs), (rhs, lhs)):
                names = field_path(side)
                if other["type"] == "literal" and type(other["value"]) is str and names and names[0] != shadow:
                    op = "==" if node["value"] == "eq" else "!="
                    return f"({self.path(names)} {op} {other['value']!r})"
        slow = f"is_true({self.name('n', compile_node(node))}({val}))"
        one = self.single(node, shadow) if shared else None
        if one is not None and not one[3]:
            # a one-element projection is true when its one value is not null (and passes the filter)
            flag, item, test, _, _, _ = one
            fast = f"{item} is not None" if test is None else f"{test} and {item} is not None"
            return f"(({fast}) if {flag} else {slow})"
        return slow


def _truth(local: str) -> str:
    """JMESPath truth of a local (``is_true(None)`` is False: no call for a missing field)."""
    return f"({local} is not None and is_true({local}))"


def _emit(r: Rule, i: int, value: str, ind: str, gen: _Gen, where: tuple[str | int, ...] | None = None) -> list[str]:
    """Lines that build rule ``i``'s event from ``value`` (a local) and append it.

    ``where`` is the frame path ``value`` holds, if it is one: a ``reasoning``
    emit of only ``text`` (a path or ``a || b`` below it) is then inline too.
    """
    spec = r.emit or {}
    if r.kind == "text" and spec.get("text", "@") == "@":
        return [f"{ind}if type({value}) is str and {value}:", f"{ind}    append(TextDelta({value}))"]
    text = spec.get("text", "@")
    if r.kind == "reasoning" and where is not None and set(spec) <= {"type", "text"} and type(text) is str:
        t = value if text == "@" else gen.inline(compile_expr(text).ast, where)
        if t is not None:
            return [f"{ind}t = {t}", f"{ind}if type(t) is str and t:",
                    f"{ind}    append(ReasoningDelta(text=t, index=0, signature=None, redacted=None))"]
    fix = ["if ev.index < 0:", "    ev = self._auto(ev)"] if r.kind == "tool_call" else []
    return [f"{ind}ev = b{i}({value})", f"{ind}if ev is not None:", *(f"{ind}    {f}" for f in fix),
            f"{ind}    append(ev)"]


def _generate(rules: list[Rule]) -> Callable[[Any, Any], tuple[list[Event], bool]]:
    gen = _Gen()
    ns = gen.ns
    lines = ["def feed(self, data):", "    out = []", "    append = out.append"]
    decoded_at = -1
    for i, r in enumerate(rules):
        ind = "    "
        shadow = None
        if r.data is not None:
            ns[f"d{i}"] = r.data
            lines.append(f"{ind}if data == d{i}:")
            ind += "    "
            val = "data"
        elif r.needs_payload:
            if decoded_at < 0:
                lines.append("    payload = self._decode(data) if type(data) is str else data  # decoded by the parser")
                decoded_at = len(lines)
            val = "payload"
        else:
            val = "data"
        lazy = None
        if r.recall is not None:
            ns[f"rk{i}"], ns[f"ri{i}"] = r.recall
            if val == "payload" and r.when_ast is not None:
                # The slot is read (and checked) here, as the loop does; the
                # frame is copied with it only if the condition needs it or holds.
                slot = r.recall_ast or {}
                names = field_path(slot) if slot else None
                if slot.get("type") == "literal" and (slot["value"] is None or type(slot["value"]) in _SCALARS):
                    ns[f"rv{i}"] = slot["value"]
                    lines.append(f"{ind}m{i} = self._memory.get(rv{i}) if type(payload) is dict else UNSET")
                elif names is not None:
                    # a frame path is None when the frame is not an object: the check passes, as in the loop
                    k = gen.path(names)
                    lines += [f"{ind}if {k} is not None and type({k}) not in SCALARS:", f"{ind}    self._slot({k})",
                              f"{ind}m{i} = self._memory.get({k}) if type(payload) is dict else UNSET"]
                else:
                    lines.append(f"{ind}m{i} = self._recall_value(rk{i}, payload)")
                lazy = f"recalled(payload, ri{i}, m{i})"
            else:
                lines.append(f"{ind}p{i} = self._recall(rk{i}, ri{i}, {val})")
            shadow = r.recall_into if val == "payload" else None
            val = f"p{i}"
        if r.when_ast is not None:
            if ind == "    " and val == "payload":  # reached whenever the function gets here
                key = repr(r.when_ast)
                if key not in gen.truths:
                    gen.truths[key] = gen.name("t")
                    lines.append(f"{ind}{gen.truths[key]} = {gen.cond(r.when_ast, val, shadow)}")
                cond = gen.truths[key]
            else:
                cond = gen.cond(r.when_ast, lazy or val, shadow)
            lines.append(f"{ind}if {cond}:")
            ind += "    "
            if lazy is not None:
                lines.append(f"{ind}{val} = {lazy}")
        lines.append(f"{ind}pass")
        if r.remember is not None:
            ns[f"mk{i}"], ns[f"mv{i}"] = r.remember
            lines.append(f"{ind}self._remember(mk{i}, mv{i}, {val})")
        if r.error is not None:
            ns[f"e{i}"] = r.error
            lines.append(f"{ind}raise raise_from(e{i}, {val}, self.context)")
            continue
        if r.builder is not None:
            ns[f"b{i}"] = r.builder
            if r.each is not None:
                ns[f"x{i}"] = r.each
                slow = [f"items = x{i}({val})", "if type(items) is list:", "    for item in items:",
                        *_emit(r, i, "item", "        ", gen)]
                one = gen.single(r.each_ast, None) if val == "payload" and r.each_ast is not None else None
                if one is None:
                    lines += [ind + line for line in slow]
                else:
                    flag, item, test, flat, base, where = one
                    fast = [f"v = {item}", "if v is not None:"]
                    if flat:
                        fast += ["    for item in (v if type(v) is list else (v,)):", "        if item is not None:",
                                 *_emit(r, i, "item", "            ", gen)]
                    else:
                        fast += _emit(r, i, "v", "    ", gen, where)
                    if test is not None:
                        fast = [f"if {test}:", *("    " + line for line in fast)]
                    lines += [f"{ind}if {flag}:", *(f"{ind}    {line}" for line in fast),
                              f"{ind}elif type({base}) is list:",
                              *(f"{ind}    {line}" for line in slow)]
            else:
                text = (r.emit or {}).get("text")
                path = field_path(compile_expr(text).ast) if r.kind == "text" and type(text) is str and text != "@" else None
                if path is not None and val == "payload":
                    lines += [f"{ind}v = {gen.path(path)}", f"{ind}if type(v) is str and v:",
                              f"{ind}    append(TextDelta(v))"]
                else:
                    lines += _emit(r, i, val, ind, gen)
        if r.stop:
            lines.append(f"{ind}return out, True")
    lines.append("    return out, False")
    if decoded_at >= 0:
        lines[decoded_at:decoded_at] = gen.hoisted()
    source = "\n".join(lines)
    exec(compile(source, "<modelwire event rules>", "exec"), ns)
    fn: Callable[[Any, Any], tuple[list[Event], bool]] = ns["feed"]
    fn.__doc__ = source  # what runs, for a reader with a debugger
    return fn


def _recalled(payload: Any, into: str, value: Any) -> Any:
    """The frame with a recalled value added (as :meth:`EventMapper._recall`)."""
    return payload if value is _UNSET else {**payload, into: value}


def compile_rules(op: Operator) -> RuleSet:
    """Compile an operator's event rules once (at runtime construction)."""
    return RuleSet([Rule(r) for r in op.events])


def _raise_from(spec: ErrorRaise, payload: Any, context: dict[str, Any]) -> ModelError:
    code = compile_expr(spec.code)(payload) if spec.code else None
    message = compile_expr(spec.message)(payload) if spec.message else None
    kind = spec.kinds.get(str(code), spec.kind) if code is not None else spec.kind
    text = str(message) if message is not None else f"provider error in stream: {payload!r:.200}"
    return error_class(kind)(text, code=str(code) if code is not None else None, **context)


class EventMapper:
    """Feed frames, get unified events. ``stopped`` says the end marker came."""

    __slots__ = ("_calls", "_fns", "_memory", "context", "has_end_marker", "rules", "stopped")

    def __init__(self, rules: list[Rule], context: dict[str, Any]) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(list(rules))
        self.context = context
        self.stopped = False
        self.has_end_marker = self.rules.has_end_marker
        self._calls = -1
        self._fns = self.rules.fns
        #: what ``remember`` rules kept for later frames (bounded: MAX_SLOTS)
        self._memory: dict[Any, Any] = {}

    def _slot(self, key: Any) -> Any:
        if key is None or type(key) in (str, int, float, bool):
            return key
        raise ParseError(
            f"a remember/recall key must be a string or number, got {type(key).__name__}",
            code="STREAM_STATE_INVALID", **self.context,
        )

    def _remember(self, key: Callable[[Any], Any], value: Callable[[Any], Any], payload: Any) -> None:
        """``remember``: keep a scalar of this frame under a slot, for later frames."""
        slot, kept = self._slot(key(payload)), value(payload)
        if kept is not None and type(kept) not in (str, int, float, bool):
            raise ParseError(
                f"a remembered value must be a string, number or boolean, got {type(kept).__name__}",
                code="STREAM_STATE_INVALID", **self.context,
            )
        if type(kept) is str and len(kept) > MAX_SLOT_TEXT:
            raise ParseError(
                f"a remembered string is longer than {MAX_SLOT_TEXT} characters",
                code="STREAM_STATE_LIMIT", **self.context,
            )
        memory = self._memory
        if slot not in memory and len(memory) >= MAX_SLOTS:
            raise ParseError(
                f"the stream asked to remember more than {MAX_SLOTS} values", code="STREAM_STATE_LIMIT",
                **self.context,
            )
        memory[slot] = kept

    def _recall(self, key: Callable[[Any], Any], into: str, payload: Any) -> Any:
        """``recall``: the frame with the remembered value added as field ``into``."""
        if type(payload) is not dict:
            return payload
        return {**payload, into: self._memory.get(self._slot(key(payload)))}

    def _recall_value(self, key: Callable[[Any], Any], payload: Any) -> Any:
        """What ``recall`` adds to this frame (the slot checked now), without copying the frame."""
        if type(payload) is not dict:
            return _UNSET
        return self._memory.get(self._slot(key(payload)))

    def _auto(self, ev: ToolCallDelta) -> ToolCallDelta:
        if ev.id is not None or ev.name is not None or self._calls < 0:
            self._calls += 1
        return ToolCallDelta(self._calls, ev.id, ev.name, ev.arguments, ev.signature)

    def _decode(self, data: Any) -> Any:
        if type(data) is not str:
            return data
        try:
            return self._decode_text(data)
        except RecursionError:
            raise ParseError(
                "a stream frame's JSON is nested too deeply to decode", code="FRAME_TOO_DEEP", **self.context
            ) from None

    def _decode_text(self, data: str) -> Any:
        if _fast_loads is not None:
            try:
                return _fast_loads(data)
            except _FastError:
                pass  # NaN, huge integers, invalid JSON: the stdlib decides below
        try:
            value, end = _scan(data, 0)
            if end == len(data) or not data[end:].strip(_WS):
                return value
            return json.loads(data)  # trailing garbage: let json say where
        except StopIteration:
            pass  # leading whitespace or not JSON: json.loads decides
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ParseError(
                f"expected JSON in a stream frame, got {data[:80]!r} (no rule matched its raw text: "
                f"a rule like {{data: '[DONE]', stop: true}} reads an end marker that is not JSON)",
                code="FRAME_NOT_JSON",
                **self.context,
            ) from exc

    def feed(self, frame: Frame) -> list[Event]:
        """Events for one frame (the generated, unrolled rule loop)."""
        if self.stopped:  # past the end marker nothing counts
            return []
        fn = self._fns.get(frame.event)
        if fn is None:
            fn = self._fns[None]
        try:
            out, stop = fn(self, frame.data)
        except jmespath.exceptions.JMESPathError as exc:
            raise ParseError(f"event rule failed on a frame: {exc}", code="RULE_FAILED", **self.context) from exc
        if stop:
            self.stopped = True
        return out

    def feed_reference(self, frame: Frame) -> list[Event]:
        """The same as :meth:`feed`, as a plain loop over the rules (the reference)."""
        if self.stopped:
            return []
        out: list[Event] = []
        data = frame.data
        payload = _UNSET
        rules = self.rules.by_event.get(frame.event)
        if rules is None:
            rules = self.rules.by_event[None]
        try:
            for rule in rules:
                if rule.data is not None:
                    if data != rule.data:
                        continue
                    value = data
                elif rule.needs_payload:
                    if payload is _UNSET:
                        payload = self._decode(data)
                    value = payload
                else:
                    value = data
                if rule.recall is not None:
                    value = self._recall(rule.recall[0], rule.recall[1], value)
                if rule.when is not None and not is_true(rule.when(value)):
                    continue
                if rule.remember is not None:
                    self._remember(rule.remember[0], rule.remember[1], value)
                if rule.error is not None:
                    raise _raise_from(rule.error, value, self.context)
                builder = rule.builder
                if builder is not None:
                    if rule.each is not None:
                        items = rule.each(value)
                        if type(items) is list:
                            for item in items:
                                ev = builder(item)
                                if ev is not None:
                                    if type(ev) is ToolCallDelta and ev.index < 0:
                                        ev = self._auto(ev)
                                    out.append(ev)
                    else:
                        ev = builder(value)
                        if ev is not None:
                            if type(ev) is ToolCallDelta and ev.index < 0:
                                ev = self._auto(ev)
                            out.append(ev)
                if rule.stop:
                    self.stopped = True
                    break
        except jmespath.exceptions.JMESPathError as exc:
            raise ParseError(f"event rule failed on a frame: {exc}", code="RULE_FAILED", **self.context) from exc
        return out


def _status_matches(spec: int | list[int] | str | None, status: int) -> bool:
    if spec is None:
        return True
    if isinstance(spec, int):
        return status == spec
    if isinstance(spec, list):
        return status in spec
    return str(status)[0] == spec[0]


_DEFAULT_KINDS = {400: "invalid_request", 401: "auth", 403: "auth", 404: "not_found",
                  408: "timeout", 409: "invalid_request", 413: "limit_exceeded",
                  422: "invalid_request", 429: "rate_limit"}


class ErrorMapper:
    """HTTP error response -> typed error, by the operator's ``errors:`` rules,
    then by plain HTTP meaning (429 rate_limit, 5xx provider_down, ...)."""

    def __init__(self, rules: list[ErrorRule]) -> None:
        self.rules = [
            (r, _opt(r.when), _opt(r.code), _opt(r.message)) for r in rules
        ]

    def error(self, status: int, body: bytes, context: dict[str, Any], retry_after: float | None) -> ModelError:
        try:
            payload: Any = json.loads(body) if body else None
        except (ValueError, RecursionError):  # not JSON, or nested past the interpreter's limit
            payload = None
        text = body[:300].decode("utf-8", "replace").strip()
        for rule, when, code, message in self.rules:
            if not _status_matches(rule.status, status):
                continue
            try:
                if when is not None and not is_true(when(payload)):
                    continue
                c = code(payload) if code else None
                m = message(payload) if message else None
            except jmespath.exceptions.JMESPathError:
                continue
            return error_class(rule.kind)(
                str(m) if m is not None else f"HTTP {status}: {text}",
                code=str(c) if c is not None else f"HTTP_{status}",
                status=status, retry_after=retry_after, **context,
            )
        kind = _DEFAULT_KINDS.get(status) or ("provider_down" if status >= 500 else "invalid_request")
        return error_class(kind)(
            f"HTTP {status}: {text}" if text else f"HTTP {status}",
            code=f"HTTP_{status}", status=status, retry_after=retry_after, **context,
        )
