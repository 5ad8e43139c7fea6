"""Checking a pipeline against a tool registry and compiling it into a :class:`~._plan.PipelinePlan`.

:func:`compile_pipeline` reports, each naming the place: unknown tools,
unknown pipelines (a step may run another pipeline), unknown or missing
dependencies, cycles, bad expressions, unmapped input ports, and the
build-time IO check (:mod:`._iocheck`: each value a step's
output may hold must fit the input port it feeds). A step depends on every
step its expressions name, plus those in ``depends_on``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ManifestIssue
from .._manifest.structure import expr_problem
from .._manifest.yaml import format_path
from ..tools import Port, Tool, ToolRegistry
from ._definition import FallbackTool, Pipeline, RetryPolicy, Step
from ._iocheck import schema_problems
from ._plan import INPUT, CompiledBranch, CompiledCall, CompiledStep, Feed, PipelinePlan

if TYPE_CHECKING:
    from .._manifest.expr import Expr

__all__ = [
    "PIPELINE_NAME",
    "compile_pipeline",
    "name_hint",
]


PathT = tuple["str | int", ...]
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: dot-separated parts, as files name them (``summarize.pipeline``)
PIPELINE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*\Z")

_LEFT_ONLY = {"index_expression", "projection", "value_projection", "filter_projection", "pipe", "flatten"}
_ALL_CHILDREN = {
    "comparator",
    "or_expression",
    "and_expression",
    "not_expression",
    "function_expression",
    "multi_select_list",
    "multi_select_dict",
    "key_val_pair",
}


def _as_path(node: dict[str, Any]) -> PathT | None:
    """A plain field path (``a.b[0].c``) as a tuple; None for anything else."""
    kind = node.get("type")
    children = node.get("children") or []
    if kind == "field":
        return (node["value"],)
    if kind == "subexpression":
        out: PathT = ()
        for child in children:
            part = _as_path(child)
            if part is None:
                return None
            out += part
        return out
    if kind == "index_expression" and len(children) == 2 and children[1].get("type") == "index":
        left = _as_path(children[0])
        return None if left is None else (*left, children[1]["value"])
    return None


def _root_paths(node: dict[str, Any]) -> list[PathT]:
    """The field paths an expression reads from the top of the scope."""
    path = _as_path(node)
    if path is not None:
        return [path]
    kind = node.get("type")
    children = node.get("children") or []
    if kind == "subexpression":
        prefix: PathT = ()
        for child in children:
            part = _as_path(child)
            if part is None:
                break
            prefix += part
        return [prefix] if prefix else _root_paths(children[0])
    if kind in _LEFT_ONLY and children:
        return _root_paths(children[0])
    if kind in _ALL_CHILDREN:
        return [p for child in children for p in _root_paths(child)]
    return []


def _quote(name: str) -> str:
    return name if _NAME_RE.match(name) else json.dumps(name)


# -- checking and compiling ------------------------------------------------------------


class _Issues:
    def __init__(self, pipeline: Pipeline) -> None:
        self.doc = pipeline.source
        self.base: PathT = ("pipelines", pipeline.name)
        self.items: list[ManifestIssue] = []

    def add(self, path: PathT, message: str) -> None:
        full = (*self.base, *path)
        if self.doc is not None:
            self.items.append(self.doc.issue(full, message))
        else:
            self.items.append(ManifestIssue(message, path=format_path(full)))


def name_hint(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; known: {', '.join(known) or 'none'}"


def _compile_text(text: Any, path: PathT, issues: _Issues) -> Expr | None:
    from .._manifest.expr import compile_expr

    if not isinstance(text, str):
        issues.add(path, f"expected an expression string, got {type(text).__name__}")
        return None
    import jmespath

    try:
        return compile_expr(text)
    except jmespath.exceptions.JMESPathError as exc:
        issues.add(path, f"invalid expression {text!r}: {expr_problem(exc)}")
        return None


def _object_schema(ports: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(ports), "required": list(ports)}


def _navigate(schema: Any, key: str | int) -> Any:
    if not isinstance(schema, dict):
        return {}
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else {}
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key]
    for name in ("anyOf", "oneOf"):
        alts = schema.get(name)
        if isinstance(alts, list):
            return {"anyOf": [_navigate(a, key) for a in alts]}
    return {}


@attrs.frozen
class _Shape:
    """What one alternative of a step outputs: port -> schema (and port -> format)."""

    label: str
    ports: dict[str, Any]
    formats: dict[str, str]


def _shape_of(tool: Tool, label: str) -> _Shape:
    return _Shape(
        label,
        {p.name: p.schema for p in tool.manifest.outputs},
        {p.name: p.format for p in tool.manifest.outputs},
    )


def _literal_value(value: Any) -> tuple[bool, Any]:
    """(is_literal, value) for a mapping entry; raises ValueError on a bad mapping."""
    if isinstance(value, str):
        return False, value
    if isinstance(value, Mapping):
        if set(value) == {"value"}:
            return True, value["value"]
        raise ValueError(
            "a mapping here must be {value: ...} (a literal); "
            "to build an object write an expression such as '{a: step.x}'"
        )
    return True, value


class _Compiler:
    def __init__(
        self, pipeline: Pipeline, registry: ToolRegistry | None, pipelines: Mapping[str, Tool | None]
    ) -> None:
        self.p = pipeline
        self.registry = registry
        #: pipelines a step may run, as tools (None: known, but invalid: reported on its own)
        self.pipelines = pipelines
        self.subs: dict[str, Tool] = {}
        #: the ``input.NAME`` read (None once ``input`` is read as a whole)
        self.reads: set[str] | None = set()
        self.issues = _Issues(pipeline)
        self.steps = {s.name: s for s in pipeline.steps}
        self.tools: dict[str, Tool] = {}
        self.deps: dict[str, list[str]] = {}
        self.shapes: dict[str, list[_Shape]] = {}

    # where a call sits in the definition
    @staticmethod
    def _call_base(step: Step, branch: int | None, fallback: int | None) -> PathT:
        base: PathT = ("steps", step.name)
        if branch is not None:
            base = (*base, "parallel", step.branches[branch].name)
        if fallback is not None:
            base = (*base, "fallback", fallback)
        return base

    def tool(self, name: str, path: PathT) -> Tool | None:
        if self.registry is None:
            return None
        if name in self.registry:
            tool = self.registry.get(name)
            self.tools[name] = tool
            return tool
        self.issues.add(path, f"unknown tool {name!r}{name_hint(name, self.registry.names())}")
        return None

    def sub(self, name: str, path: PathT) -> Tool | None:
        """The pipeline a step runs, as a tool; an unknown one is an issue."""
        if self.registry is None:
            return None
        if name == self.p.name:
            self.issues.add(path, f"pipeline {name!r} cannot run itself")
            return None
        if name not in self.pipelines:
            self.issues.add(path, f"unknown pipeline {name!r}{name_hint(name, self.pipelines)}")
            return None
        tool = self.pipelines[name]
        if tool is not None:
            self.subs[name] = tool
        return tool

    def _alternative(self, label: str, name: str) -> Tool | None:
        return self.subs.get(name) if label == "pipeline" else self.tools.get(name)

    def run(self) -> PipelinePlan | None:
        p, add = self.p, self.issues.add
        if not PIPELINE_NAME.match(p.name):
            add(
                (),
                f"pipeline name {p.name!r} must be letters, digits, _ and -, "
                "in parts separated by dots (summarize.pipeline)",
            )
        if p.inputs is not None:
            self._check_input_schemas(p.inputs)
        seen: set[str] = set()
        for step in p.steps:
            if step.name in seen:
                add(("steps", step.name), f"step {step.name!r} is defined twice")
            seen.add(step.name)
            if not _NAME_RE.match(step.name) or step.name == INPUT:
                add(
                    ("steps", step.name),
                    f"step name {step.name!r} must be an identifier other than {INPUT!r} "
                    "(expressions refer to steps by name)",
                )
        if not p.steps:
            add(("steps",), "a pipeline needs at least one step")
        exprs: dict[tuple[str, PathT], Expr] = {}
        for step in p.steps:
            self._check_step(step, exprs)
        outputs: dict[str, Expr] | None = None
        if p.outputs is not None:
            outputs = {}
            for oname, text in p.outputs.items():
                expr = _compile_text(text, ("outputs", oname), self.issues)
                if expr is not None:
                    outputs[oname] = expr
                    self._check_refs(expr, ("outputs", oname), None)
        order = self._order()
        for step in p.steps:
            self.shapes[step.name] = self._shapes(step)
        compiled: dict[str, CompiledStep] = {}
        for step in p.steps:
            built = self._compile_step(step, exprs)
            if built is not None:
                compiled[step.name] = built
        if self.issues.items or order is None:
            return None
        reads = None if self.reads is None else tuple(sorted(self.reads))
        return PipelinePlan(pipeline=p, steps=tuple(compiled[n] for n in order), outputs=outputs, reads=reads)

    def _check_input_schemas(self, inputs: Mapping[str, Any]) -> None:
        import jsonschema

        for name, schema in inputs.items():
            if not _NAME_RE.match(name):
                self.issues.add(("inputs", name), f"input name {name!r} must be an identifier")
            if not isinstance(schema, dict):
                self.issues.add(("inputs", name), "expected a JSON Schema mapping")
                continue
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                self.issues.add(("inputs", name), f"invalid JSON Schema: {exc.message}")

    def _check_step(self, step: Step, exprs: dict[tuple[str, PathT], Expr]) -> None:
        add = self.issues.add
        base: PathT = ("steps", step.name)
        deps: list[str] = []
        for i, dep in enumerate(step.depends_on):
            if dep not in self.steps:
                add((*base, "depends_on", i), f"step {step.name!r} depends on unknown step {dep!r}{name_hint(dep, self.steps)}")
            elif dep not in deps:
                deps.append(dep)
        self.deps[step.name] = deps
        kinds = [k for k, v in (("tool", step.tool), ("pipeline", step.pipeline), ("parallel", step.branches)) if v]
        if not kinds:
            add(base, f"step {step.name!r} needs a `tool`, a `pipeline` or `parallel` branches")
        if len(kinds) > 1:
            add(base, f"step {step.name!r} has {' and '.join(f'`{k}`' for k in kinds)}; pick one")
        if step.branches and step.fallback:
            add((*base, "fallback"), "a parallel step takes fallbacks per branch, not for the whole step")
        if step.mode not in ("all", "first"):
            add((*base, "mode"), f"mode must be 'all' or 'first', got {step.mode!r}")
        if step.on_skipped not in ("skip", "run"):
            add((*base, "on_skipped"), f"on_skipped must be 'skip' or 'run', got {step.on_skipped!r}")
        self._check_timing(step.timeout, step.retry, base)
        if step.when is not None:
            expr = _compile_text(step.when, (*base, "when"), self.issues)
            if expr is not None:
                exprs[(step.name, (*base, "when"))] = expr
                self._check_refs(expr, (*base, "when"), step.name)
        mappings: list[tuple[PathT, Mapping[str, Any]]] = [((*base, "inputs"), step.inputs)]
        if step.tool is not None:
            self.tool(step.tool, (*base, "tool"))
        if step.pipeline is not None:
            self.sub(step.pipeline, (*base, "pipeline"))
        names: set[str] = set()
        for b, branch in enumerate(step.branches):
            bbase = self._call_base(step, b, None)
            if branch.name in names or not _NAME_RE.match(branch.name):
                add(bbase, f"branch name {branch.name!r} must be a unique identifier")
            names.add(branch.name)
            self.tool(branch.tool, (*bbase, "tool"))
            self._check_timing(branch.timeout, branch.retry, bbase)
            if branch.inputs is not None:
                mappings.append(((*bbase, "inputs"), branch.inputs))
            for f, call in enumerate(branch.fallback):
                fbase = (*bbase, "fallback", f)
                self.tool(call.tool, (*fbase, "tool") if call.inputs or call.timeout or call.retry else fbase)
                self._check_timing(call.timeout, call.retry, fbase)
                if call.inputs is not None:
                    mappings.append(((*fbase, "inputs"), call.inputs))
        for f, call in enumerate(step.fallback):
            fbase = self._call_base(step, None, f)
            self.tool(call.tool, (*fbase, "tool") if call.inputs or call.timeout or call.retry else fbase)
            self._check_timing(call.timeout, call.retry, fbase)
            if call.inputs is not None:
                mappings.append(((*fbase, "inputs"), call.inputs))
        for mbase, mapping in mappings:
            for port, value in mapping.items():
                try:
                    is_literal, text = _literal_value(value)
                except ValueError as exc:
                    add((*mbase, port), str(exc))
                    continue
                if is_literal:
                    continue
                expr = _compile_text(text, (*mbase, port), self.issues)
                if expr is not None:
                    exprs[(step.name, (*mbase, port))] = expr
                    self._check_refs(expr, (*mbase, port), step.name)

    def _check_timing(self, timeout: float | None, retry: RetryPolicy | None, base: PathT) -> None:
        add = self.issues.add
        if timeout is not None and not timeout > 0:
            add((*base, "timeout"), f"timeout must be a positive number of seconds, got {timeout!r}")
        if retry is None:
            return
        if retry.attempts < 1:
            add((*base, "retry", "attempts"), f"attempts must be at least 1, got {retry.attempts}")
        if retry.backoff not in ("fixed", "exponential"):
            add((*base, "retry", "backoff"), f"backoff must be 'fixed' or 'exponential', got {retry.backoff!r}")
        if retry.delay < 0 or retry.max_delay < 0:
            add((*base, "retry"), "delay and max_delay must not be negative")
        if retry.factor < 1:
            add((*base, "retry", "factor"), f"factor must be at least 1, got {retry.factor}")

    def _check_refs(self, expr: Expr, path: PathT, step: str | None) -> None:
        """Every name an expression reads must be ``input`` or a step (a dependency)."""
        for ref in _root_paths(expr.ast):
            root = ref[0]
            if not isinstance(root, str):
                continue
            if root == INPUT:
                self._read(ref)
                inputs = self.p.inputs
                if inputs is not None and len(ref) > 1 and ref[1] not in inputs:
                    self.issues.add(
                        path,
                        f"{expr.text!r} reads pipeline input {ref[1]!r}, which is not declared{name_hint(str(ref[1]), inputs)}",
                    )
                continue
            if root not in self.steps:
                self.issues.add(
                    path,
                    f"{expr.text!r} refers to unknown step {root!r}{name_hint(root, [*self.steps, INPUT])}",
                )
                continue
            if step is not None and root not in self.deps[step]:
                self.deps[step].append(root)

    def _read(self, ref: PathT) -> None:
        if self.reads is None:
            return
        if len(ref) > 1 and isinstance(ref[1], str):
            self.reads.add(ref[1])
        else:
            self.reads = None

    def _order(self) -> list[str] | None:
        """A topological order; a cycle is reported (``a -> b -> a``) and gives None."""
        state: dict[str, int] = {}
        order: list[str] = []
        found = False

        def visit(name: str, trail: list[str]) -> None:
            nonlocal found
            state[name] = 1
            trail.append(name)
            for dep in self.deps.get(name, ()):
                if dep not in self.steps:
                    continue
                if state.get(dep) == 1:
                    cycle = [*trail[trail.index(dep):], dep]
                    self.issues.add(
                        ("steps", dep),
                        f"pipeline {self.p.name!r} has a cycle: {' -> '.join(reversed(cycle))}",
                    )
                    found = True
                elif dep not in state:
                    visit(dep, trail)
            trail.pop()
            state[name] = 2
            order.append(name)

        for step in self.p.steps:
            if step.name not in state:
                visit(step.name, [])
        return None if found else order

    def _shapes(self, step: Step) -> list[_Shape]:
        """What the step may output: one shape per alternative tool (None: unknown)."""
        def known(name: str) -> Tool | None:
            return self.tools.get(name)

        head = _head(step)
        if head is not None:
            out: list[_Shape] = []
            for label, name in [head] + [("fallback tool", c.tool) for c in step.fallback]:
                tool = self._alternative(label, name)
                if tool is not None:
                    out.append(_shape_of(tool, f"{label} {name!r}"))
            return out
        if step.mode == "first":
            return [
                _shape_of(tool, f"branch {b.name!r} {'tool' if i == 0 else 'fallback tool'} {name!r}")
                for b in step.branches
                for i, name in enumerate([b.tool, *(c.tool for c in b.fallback)])
                if (tool := known(name)) is not None
            ]
        ports: dict[str, Any] = {}
        for b in step.branches:
            alts = [
                _object_schema(_shape_of(tool, "").ports)
                for name in [b.tool, *(c.tool for c in b.fallback)]
                if (tool := known(name)) is not None
            ]
            ports[b.name] = alts[0] if len(alts) == 1 else {"anyOf": alts} if alts else {}
        return [_Shape(f"branches of step {step.name!r}", ports, {})]

    def _compile_step(self, step: Step, exprs: dict[tuple[str, PathT], Expr]) -> CompiledStep | None:
        when = exprs.get((step.name, ("steps", step.name, "when")))
        branches: list[CompiledBranch] = []
        head = _head(step)
        if head is not None:
            chain = self._chain(step, None, head, step.inputs, step.timeout, step.retry, step.fallback, exprs)
            branches.append(CompiledBranch(None, chain))
        for b, branch in enumerate(step.branches):
            chain = self._chain(
                step, b, ("tool", branch.tool),
                branch.inputs if branch.inputs is not None else step.inputs,
                branch.timeout if branch.timeout is not None else step.timeout,
                branch.retry or step.retry,
                branch.fallback, exprs,
                own_inputs=branch.inputs is not None,
            )
            branches.append(CompiledBranch(branch.name, chain))
        return CompiledStep(
            name=step.name,
            deps=tuple(self.deps.get(step.name, ())),
            when=when,
            branches=tuple(branches),
            parallel=bool(step.branches),
            mode=step.mode,
            on_skipped=step.on_skipped,
        )

    def _chain(
        self,
        step: Step,
        branch: int | None,
        head: tuple[str, str],
        inputs: Mapping[str, Any],
        timeout: float | None,
        retry: RetryPolicy,
        fallback: Sequence[FallbackTool],
        exprs: dict[tuple[str, PathT], Expr],
        own_inputs: bool = True,
    ) -> tuple[CompiledCall, ...]:
        first_base = self._call_base(step, branch, None)
        mapping_base = first_base if (branch is not None and own_inputs) else ("steps", step.name)
        calls: list[CompiledCall] = []
        entries: list[tuple[str, str, Mapping[str, Any], PathT, bool, float | None, RetryPolicy]] = [
            (*head, inputs, mapping_base, branch is not None and not own_inputs, timeout, retry)
        ]
        for f, call in enumerate(fallback):
            fbase = self._call_base(step, branch, f)
            own = call.inputs is not None
            entries.append(
                (
                    "fallback tool",
                    call.tool,
                    call.inputs if call.inputs is not None else inputs,
                    fbase if own else mapping_base,
                    not own,
                    call.timeout if call.timeout is not None else timeout,
                    call.retry or retry,
                )
            )
        for label, name, mapping, mbase, inherited, t, r in entries:
            tool = self._alternative(label, name)
            if tool is None:
                continue
            feeds = self._feeds(step, tool, mapping, mbase, inherited, exprs)
            pipeline = name if label == "pipeline" else None
            calls.append(CompiledCall(tool, f"{label} {name!r}", tuple(feeds), t, r, pipeline))
        return tuple(calls)

    def _feeds(
        self,
        step: Step,
        tool: Tool,
        mapping: Mapping[str, Any],
        mbase: PathT,
        inherited: bool,
        exprs: dict[tuple[str, PathT], Expr],
    ) -> list[Feed]:
        from .._manifest.expr import compile_expr

        add = self.issues.add
        ports = {p.name: p for p in tool.manifest.inputs}
        feeds: list[Feed] = []
        for port_name, value in mapping.items():
            path = (*mbase, "inputs", port_name)
            port = ports.get(port_name)
            if port is None:
                if not inherited:
                    add(
                        path,
                        f"tool {tool.name!r} has no input {port_name!r}"
                        f" (inputs: {', '.join(ports) or 'none'})",
                    )
                continue
            try:
                is_literal, value = _literal_value(value)
            except ValueError:
                continue  # reported by _check_step
            if is_literal:
                self._check_literal(step, tool, port, value, path)
                feeds.append(Feed(port_name, literal=value))
                continue
            expr = exprs.get((step.name, path))
            if expr is None:
                continue  # a bad expression, reported already
            feeds.append(Feed(port_name, expr=expr))
            self._check_feed(step, tool, port, expr, path)
        for port in tool.manifest.inputs:
            if port.name in mapping:
                continue
            providers = [
                dep for dep in self.deps.get(step.name, ())
                if self.shapes.get(dep) and all(port.name in s.ports for s in self.shapes[dep])
            ]
            if len(providers) > 1:
                add(
                    ("steps", step.name),
                    f"input {port.name!r} of tool {tool.name!r} could come from steps "
                    f"{', '.join(repr(p) for p in providers)}: map it in `inputs`",
                )
                continue
            if providers:
                expr = compile_expr(f"{_quote(providers[0])}.{_quote(port.name)}")
            elif self.p.inputs is None or port.name in self.p.inputs:
                expr = compile_expr(f"{INPUT}.{_quote(port.name)}")
                self._read((INPUT, port.name))
            elif "default" in port.schema:
                continue
            else:
                add(
                    ("steps", step.name),
                    f"input {port.name!r} of tool {tool.name!r} is not mapped: no dependency outputs "
                    f"{port.name!r} and the pipeline declares no input of that name",
                )
                continue
            feeds.append(Feed(port.name, expr=expr))
            self._check_feed(step, tool, port, expr, ("steps", step.name))
        return feeds

    def _check_literal(self, step: Step, tool: Tool, port: Port, value: Any, path: PathT) -> None:
        import jsonschema

        if not port.schema:
            return
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(port.schema).iter_errors(value)
        )
        if error is not None:
            self.issues.add(
                path,
                f"step {step.name!r} input {port.name!r} (tool {tool.name!r}): "
                f"the literal {value!r} does not fit: {error.message}",
            )

    def _check_feed(self, step: Step, tool: Tool, port: Port, expr: Expr, path: PathT) -> None:
        """The IO check of one mapping: the source's schema must fit the port's."""
        target = f"step {step.name!r} input {port.name!r} (tool {tool.name!r})"
        node = expr.ast
        if node.get("type") == "literal":
            self._check_literal(step, tool, port, node.get("value"), path)
            return
        ref = _as_path(node)
        if ref is None or not isinstance(ref[0], str):
            return  # a computed value: checked at call time
        root, rest = ref[0], ref[1:]
        sources: list[tuple[str, str | None, Any, str | None]] = []  # (origin, label, schema, format)
        if root == INPUT:
            if self.p.inputs is None or not rest or rest[0] not in self.p.inputs:
                return
            schema = self.p.inputs[str(rest[0])]
            for key in rest[1:]:
                schema = _navigate(schema, key)
            sources.append((f"pipeline input {rest[0]!r}", None, schema, None))
        elif root in self.shapes:
            for shape in self.shapes[root]:
                if not rest:
                    sources.append((f"step {root!r}", shape.label, _object_schema(shape.ports), None))
                    continue
                port_name = rest[0]
                if not isinstance(port_name, str):
                    continue
                if port_name not in shape.ports:
                    self.issues.add(
                        path,
                        f"{target} reads output {port_name!r} of step {root!r}, but {shape.label} "
                        f"outputs only {', '.join(map(repr, shape.ports)) or 'nothing'}",
                    )
                    continue
                schema = shape.ports[port_name]
                for key in rest[1:]:
                    schema = _navigate(schema, key)
                fmt = shape.formats.get(port_name) if len(rest) == 1 else None
                origin = f"step {root!r} output {'.'.join(map(str, rest))!r}"
                sources.append((origin, shape.label, schema, fmt))
        # one issue per problem, naming every alternative (tool, fallbacks) that has it
        found: dict[tuple[str, str], list[str]] = {}
        for origin, label, schema, fmt in sources:
            if fmt is not None and (fmt == "binary") != (port.format == "binary"):
                problems = [f"format {fmt} does not fit format {port.format}"]
            else:
                problems = schema_problems(schema, port.schema)
            for problem in problems:
                labels = found.setdefault((origin, problem), [])
                if label is not None:
                    labels.append(label)
        for (origin, problem), labels in found.items():
            via = f" ({', '.join(labels)})" if labels else ""
            self.issues.add(path, f"{target} is fed by {origin}{via}: {problem}")


def _head(step: Step) -> tuple[str, str] | None:
    """What a non-parallel step runs first: ``("tool", name)`` or ``("pipeline", name)``."""
    if step.tool is not None:
        return "tool", step.tool
    if step.pipeline is not None:
        return "pipeline", step.pipeline
    return None


def compile_pipeline(
    pipeline: Pipeline,
    registry: ToolRegistry | None,
    pipelines: Mapping[str, Tool | None] | None = None,
) -> tuple[PipelinePlan | None, list[ManifestIssue]]:
    """Check a pipeline (against ``registry`` when given) and build its plan.

    ``pipelines`` are the pipelines a step may run, each as a tool (see
    :func:`~._plan.node_manifest`; the orchestrator passes the registered
    ones). Returns ``(plan, [])`` or ``(None, issues)``. Without a registry
    only the structure is checked (names, dependencies, cycles,
    expressions) and no plan is built.
    """
    compiler = _Compiler(pipeline, registry, pipelines or {})
    plan = compiler.run()
    issues = sorted(compiler.issues.items, key=lambda i: (i.file or "", i.line or 0))
    if registry is None:
        return None, issues
    return (plan if not issues else None), issues
