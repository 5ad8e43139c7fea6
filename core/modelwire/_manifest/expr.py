"""Manifest expressions: JMESPath, compiled once into plain Python closures.

The jmespath library walks its AST on every search (about 13 us for a short
path). Event rules run per frame, tens of thousands of times a stream, so
each expression is parsed once by jmespath and its AST turned into nested
closures here; a plain field path becomes a chain of ``dict.get`` calls.
Semantics are JMESPath's own (a test compares both on random data). Function
calls go through jmespath's function table, extended with the
provider-neutral helpers of :class:`Functions`.
"""

from __future__ import annotations

import json
import operator
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import functions as jfunctions
from jmespath import visitor as jvisitor

from .._errors import InvalidRequestError

__all__ = [
    "MAX_EXPR_DEPTH", "Expr", "ExpressionTooDeep", "Functions", "compile_expr", "compile_node", "field_path", "is_true",
]

#: deepest syntax tree an expression may have: the parser, the compiler and
#: the compiled closures all recurse once (or more) per level
MAX_EXPR_DEPTH = 100


class ExpressionTooDeep(InvalidRequestError, jmespath.exceptions.JMESPathError):
    """An expression nested too deeply to compile (also a JMESPathError, so
    every caller that maps syntax errors maps this one the same way)."""

    default_code = "EXPRESSION_TOO_DEEP"


def _tree_depth(node: Any) -> int:
    """Depth of a jmespath AST, without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in item.get("children", ()):
            if isinstance(child, dict):
                stack.append((child, depth + 1))
    return deepest


Fn = Callable[[Any], Any]

_equals = jvisitor._equals
_is_comparable = jvisitor._is_comparable
_is_actual_number = jvisitor._is_actual_number


def is_true(value: Any) -> bool:
    """JMESPath truthiness: '', [], {}, null and false are false; 0 is true."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


class Functions(jfunctions.Functions):
    """JMESPath's built-ins plus helpers that manifests need to map providers.

    Each is provider-neutral: it reshapes data, it never knows a provider.
    """

    @jfunctions.signature({"types": []})
    def _func_to_json(self, value: Any) -> str:
        """Serialise a value as compact JSON (tool arguments as a string)."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    @jfunctions.signature({"types": []})
    def _func_from_json(self, value: Any) -> Any:
        """Parse a JSON string; other values pass through unchanged."""
        if not isinstance(value, str):
            return value
        if value == "":
            return {}
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidRequestError(
                f"from_json: not valid JSON: {value[:60]!r}", code="EXPRESSION_FAILED"
            ) from exc

    @jfunctions.signature({"types": ["object", "null"]}, {"types": []})
    def _func_lookup(self, table: Any, key: Any) -> Any:
        """``lookup(table, key)``: rename a value (a role, a reason) via a literal map.

        A key missing from the table comes back unchanged.
        """
        if table is None or not isinstance(key, str):
            return key
        return table.get(key, key)

    @jfunctions.signature({"types": ["array", "null"], "variadic": True})
    def _func_concat(self, *arrays: Any) -> list[Any]:
        """Concatenate arrays; nulls are skipped."""
        out: list[Any] = []
        for arr in arrays:
            if arr is not None:
                out.extend(arr)
        return out

    @jfunctions.signature({"types": ["array", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_merge_consecutive(self, items: Any, key: str, field: str) -> list[Any]:
        """Merge neighbours with equal ``item[key]`` by joining their ``item[field]`` lists.

        Turns [user, tool-result, tool-result] into alternating turns for
        services that require strict alternation.
        """
        out: list[Any] = []
        for item in items or ():
            if (
                out
                and isinstance(item, dict)
                and isinstance(out[-1], dict)
                and out[-1].get(key) == item.get(key)
            ):
                prev = dict(out[-1])
                prev[field] = _as_list(prev.get(field)) + _as_list(item.get(field))
                out[-1] = prev
            else:
                out.append(item)
        return out

    @jfunctions.signature({"types": []})
    def _func_as_parts(self, content: Any) -> list[Any]:
        """Message content as a list of parts: a string becomes one text part."""
        return _as_list(content)

    @jfunctions.signature({"types": []})
    def _func_as_text(self, content: Any) -> Any:
        """Message content as plain text: text parts joined, other parts dropped."""
        if content is None or isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
        return str(content)

    @jfunctions.signature({"types": ["array", "null"]})
    def _func_enumerate(self, items: Any) -> list[Any]:
        """``[{index, value}]`` for each item: positions for tool-call indexes."""
        return [{"index": i, "value": v} for i, v in enumerate(items or ())]

    @jfunctions.signature({"types": ["array", "null"]}, {"types": ["object"]})
    def _func_attach(self, items: Any, extra: Any) -> list[Any]:
        """``[{index, value, ...extra}]``: reach outer fields (the model id) inside a projection."""
        return [{**extra, "index": i, "value": v} for i, v in enumerate(items or ())]

    @jfunctions.signature({"types": []}, {"types": []}, {"types": []})
    def _func_when(self, cond: Any, then: Any, otherwise: Any) -> Any:
        """``when(cond, a, b)``: a if cond is true else b (JMESPath's `&&`/`||` trips on falsy a)."""
        return then if is_true(cond) else otherwise

    @jfunctions.signature({"types": ["object", "null"]})
    def _func_items(self, obj: Any) -> list[Any]:
        """``[{key, value}]`` for each entry of an object."""
        return [{"key": k, "value": v} for k, v in (obj or {}).items()]

    @jfunctions.signature({"types": ["array", "null"]})
    def _func_from_items(self, items: Any) -> dict[str, Any]:
        """The inverse of ``items``: ``[{key, value}]`` -> object."""
        return {i["key"]: i.get("value") for i in items or () if isinstance(i, dict) and "key" in i}


def _as_list(content: Any) -> list[Any]:
    if content is None:
        return []
    if isinstance(content, list):
        return list(content)
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [content]


FUNCTIONS = Functions()
_OPTIONS = jmespath.Options(custom_functions=FUNCTIONS)
_INTERPRETER = jvisitor.TreeInterpreter(_OPTIONS)
_ORDER = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def _compile(node: dict[str, Any]) -> Fn:
    kind = node["type"]
    children = node.get("children", [])

    if kind == "field":
        name = node["value"]

        def field(value: Any) -> Any:
            return value.get(name) if type(value) is dict else None

        return field

    if kind in ("subexpression", "index_expression", "pipe"):
        # A chain of plain fields is the hot case: unroll it.
        if kind == "subexpression" and all(c["type"] == "field" for c in children):
            names = tuple(c["value"] for c in children)
            if len(names) == 2:
                a, b = names

                def path2(value: Any) -> Any:
                    if type(value) is dict:
                        value = value.get(a)
                        if type(value) is dict:
                            return value.get(b)
                    return None

                return path2

            def path(value: Any) -> Any:
                for n in names:
                    if type(value) is not dict:
                        return None
                    value = value.get(n)
                return value

            return path
        steps = [_compile(c) for c in children]
        if len(steps) == 2:
            first, second = steps
            return lambda value: second(first(value))

        def chain(value: Any) -> Any:
            for step in steps:
                value = step(value)
            return value

        return chain

    if kind in ("current", "identity"):
        return lambda value: value

    if kind == "literal":
        literal = node["value"]
        return lambda _value: literal

    if kind == "index":
        idx = node["value"]

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[idx]
            except IndexError:
                return None

        return index

    if kind == "slice":
        sl = slice(*children)
        return lambda value: value[sl] if isinstance(value, list) else None

    if kind == "flatten":
        inner = _compile(children[0])

        def flatten(value: Any) -> Any:
            base = inner(value)
            if not isinstance(base, list):
                return None
            out: list[Any] = []
            for el in base:
                if isinstance(el, list):
                    out.extend(el)
                else:
                    out.append(el)
            return out

        return flatten

    if kind == "projection" and children[0]["type"] == "flatten":
        fast = _flat_project_fields(children[0]["children"][0], children[1])
        if fast is not None:
            return fast
        # `a[].b`: flatten and project in one loop (the commonest stream path).
        inner, right = _compile(children[0]["children"][0]), _compile(children[1])
        identity = children[1]["type"] == "identity"

        def flat_project(value: Any) -> Any:
            base = inner(value)
            if not isinstance(base, list):
                return None
            out: list[Any] = []
            for el in base:
                if type(el) is list:
                    for item in el:
                        cur = item if identity else right(item)
                        if cur is not None:
                            out.append(cur)
                else:
                    cur = el if identity else right(el)
                    if cur is not None:
                        out.append(cur)
            return out

        return flat_project

    if kind == "projection":
        left, right = _compile(children[0]), _compile(children[1])
        if children[1]["type"] == "identity":

            def project_all(value: Any) -> Any:
                base = left(value)
                if not isinstance(base, list):
                    return None
                return [el for el in base if el is not None]

            return project_all

        def project(value: Any) -> Any:
            base = left(value)
            if not isinstance(base, list):
                return None
            out = []
            for el in base:
                cur = right(el)
                if cur is not None:
                    out.append(cur)
            return out

        return project

    if kind == "value_projection":
        left, right = _compile(children[0]), _compile(children[1])

        def vproject(value: Any) -> Any:
            base = left(value)
            if not isinstance(base, dict):
                return None
            out = []
            for el in base.values():
                cur = right(el)
                if cur is not None:
                    out.append(cur)
            return out

        return vproject

    if kind == "filter_projection":
        fast = _filter_fields(*children)
        if fast is not None:
            return fast
        left, right, cond = (_compile(c) for c in children)

        def fproject(value: Any) -> Any:
            base = left(value)
            if not isinstance(base, list):
                return None
            out = []
            for el in base:
                if is_true(cond(el)):
                    cur = right(el)
                    if cur is not None:
                        out.append(cur)
            return out

        return fproject

    if kind == "comparator":
        lhs, rhs = _compile(children[0]), _compile(children[1])
        op = node["value"]
        literal = next(
            (c["value"] for c in children if c["type"] == "literal" and isinstance(c["value"], str)), None
        )
        if literal is not None and op in ("eq", "ne"):
            # Against a string literal Python's == is exactly JMESPath's equality
            # (no bool/number cross-cases), and much cheaper than _equals.
            other = rhs if children[0]["type"] == "literal" and children[0]["value"] == literal else lhs
            if op == "eq":
                return lambda value: other(value) == literal
            return lambda value: other(value) != literal
        if op == "eq":
            return lambda value: _equals(lhs(value), rhs(value))
        if op == "ne":
            return lambda value: not _equals(lhs(value), rhs(value))
        order = _ORDER[op]

        def compare(value: Any) -> Any:
            a, b = lhs(value), rhs(value)
            if not (_is_comparable(a) and _is_comparable(b)):
                return None
            return order(a, b)

        return compare

    if kind == "or_expression":
        lhs, rhs = _compile(children[0]), _compile(children[1])

        def or_(value: Any) -> Any:
            got = lhs(value)
            return got if is_true(got) else rhs(value)

        return or_

    if kind == "and_expression":
        lhs, rhs = _compile(children[0]), _compile(children[1])

        def and_(value: Any) -> Any:
            got = lhs(value)
            return rhs(value) if is_true(got) else got

        return and_

    if kind == "not_expression":
        inner = _compile(children[0])

        def not_(value: Any) -> Any:
            got = inner(value)
            if _is_actual_number(got) and got == 0:
                return False
            return not got

        return not_

    if kind == "multi_select_dict":
        pairs = [(c["value"], _compile(c["children"][0])) for c in children]

        def mdict(value: Any) -> Any:
            if value is None:
                return None
            return {k: f(value) for k, f in pairs}

        return mdict

    if kind == "multi_select_list":
        items = [_compile(c) for c in children]

        def mlist(value: Any) -> Any:
            if value is None:
                return None
            return [f(value) for f in items]

        return mlist

    if kind == "function_expression":
        name = node["value"]
        args = [_compile(c) if c["type"] != "expref" else _expref(c) for c in children]
        call = FUNCTIONS.call_function

        def function(value: Any) -> Any:
            return call(name, [a(value) for a in args])

        return function

    # Anything newer than this compiler: interpret it, still correct.
    return lambda value: _INTERPRETER.visit(node, value)


def _flat_project_fields(base: dict[str, Any], right: dict[str, Any]) -> Fn | None:
    """``a[].b`` and ``a[].b.c`` (one field, then a path of one or two fields)
    as one loop with the ``dict.get`` steps inline: the stream paths that run
    on every frame (``choices[].delta.content``). None for other shapes."""
    root, names = field_path(base), field_path(right)
    if root is None or len(root) != 1 or names is None or len(names) > 2:
        return None
    key, (a, b) = root[0], (*names, None)[:2]
    walk = _compile(right)

    def flat_project_fields(value: Any) -> Any:
        items = value.get(key) if type(value) is dict else None
        if not isinstance(items, list):
            return None
        out = []
        for el in items:
            if type(el) is dict:
                cur = el.get(a)
                if b is not None:
                    cur = cur.get(b) if type(cur) is dict else None
                if cur is not None:
                    out.append(cur)
            elif type(el) is list:  # flatten one level
                for item in el:
                    cur = walk(item)
                    if cur is not None:
                        out.append(cur)
        return out

    return flat_project_fields


def _filter_fields(base: dict[str, Any], right: dict[str, Any], cond: dict[str, Any]) -> Fn | None:
    """``a[?b].c`` with plain fields: one loop, ``dict.get`` inline
    (``choices[?finish_reason].finish_reason``). None for other shapes."""
    root, names, test = field_path(base), field_path(right), field_path(cond)
    if root is None or len(root) != 1 or names is None or len(names) != 1 or test is None or len(test) != 1:
        return None
    key, field, flag = root[0], names[0], test[0]

    def filter_fields(value: Any) -> Any:
        items = value.get(key) if type(value) is dict else None
        if not isinstance(items, list):
            return None
        out = []
        for el in items:
            if type(el) is dict and is_true(el.get(flag)):
                cur = el.get(field)
                if cur is not None:
                    out.append(cur)
        return out

    return filter_fields


def compile_node(node: dict[str, Any]) -> Fn:
    """The closure of one node of a parsed (and depth-checked) tree: lets a
    caller that splits an expression, such as the rule generator, evaluate a part."""
    return _compile(node)


def field_path(node: dict[str, Any]) -> tuple[str, ...] | None:
    """The field names if ``node`` is a plain field path (``a`` or ``a.b.c``), else None.

    Such a path is a chain of ``dict.get``: it cannot fail, and it is None as
    soon as a step is not an object.
    """
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] != "subexpression":
        return None
    names: list[str] = []
    for child in node["children"]:
        sub = field_path(child)
        if sub is None:
            return None
        names += sub
    return tuple(names)


def _expref(node: dict[str, Any]) -> Fn:
    expression = jvisitor._Expression(node["children"][0], _INTERPRETER)
    return lambda _value: expression


class Expr:
    """A compiled expression: ``expr(data)`` evaluates it; ``text`` is the source."""

    __slots__ = ("_parsed", "fn", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        too_deep = f"expression nests deeper than {MAX_EXPR_DEPTH} levels"
        try:
            with warnings.catch_warnings():
                # jmespath still reads the old `foo` literal syntax and warns each time.
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                self._parsed = jmespath.compile(text)
        except RecursionError:  # jmespath's recursive-descent parser
            raise ExpressionTooDeep(too_deep) from None
        if _tree_depth(self._parsed.parsed) > MAX_EXPR_DEPTH:
            raise ExpressionTooDeep(too_deep)
        #: The compiled closure itself: hot loops call it directly.
        self.fn: Fn = _compile(self._parsed.parsed)

    @property
    def ast(self) -> dict[str, Any]:
        """The parsed JMESPath tree (``{"type": ..., "children": [...]}``), for static checks."""
        tree: dict[str, Any] = self._parsed.parsed
        return tree

    def __call__(self, data: Any) -> Any:
        return self.fn(data)

    def interpret(self, data: Any) -> Any:
        """The same expression through jmespath's tree interpreter (the reference)."""
        return self._parsed.search(data, options=_OPTIONS)

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


@lru_cache(maxsize=4096)
def compile_expr(text: str) -> Expr:
    """Parse and compile once; identical texts share one compiled expression."""
    return Expr(text)
