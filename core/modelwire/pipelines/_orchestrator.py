"""Running pipelines: the orchestrator.

:class:`Orchestrator` holds a tool registry and the pipelines registered
against it. ``register_pipeline`` checks a pipeline (tools exist, no cycle,
every input port mapped, the IO check) and keeps its compiled plan;
``execute`` runs it.

Structured concurrency on anyio task groups, so the same code runs on
asyncio and trio: every step is a task of one group and starts when its
dependencies are done; parallel branches are a nested group. A failing step
cancels the rest of the pipeline; a cancelled pipeline (its caller's cancel
scope, a ``fail_after``) cancels every running tool; ``mode: first`` cancels
the losing branches as soon as one succeeds.

One call of one tool is: evaluate the input mapping, then
:func:`~modelwire.tools.call_tool`: fill defaults and validate the inputs
(``validate_ports``), acquire the tool's resources from the resource
manager, call it under the per-attempt timeout, validate the outputs. A failure is retried per the
step's :class:`~modelwire.RetryPolicy` (input-validation failures are not:
the same inputs would fail again), then the next tool of the fallback list
is tried. When every alternative failed the step raises
:class:`~modelwire.PipelineError` (``STEP_FAILED``, or ``STEP_TIMEOUT`` when
the last try timed out) with the step, the tool, the number of attempts and
the last error chained as the cause.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from .._errors import InvalidRequestError, ManifestError, NotFoundError
from .._manifest.expr import is_true
from ..tools import AgentContext, Tool, ToolContext, ToolError, ToolRegistry, call_tool
from ._compiler import compile_pipeline
from ._definition import Pipeline
from ._errors import PipelineError
from ._files import load_pipelines
from ._flow import Flow
from ._plan import INPUT, CompiledBranch, CompiledCall, CompiledStep, PipelinePlan, node_manifest

if TYPE_CHECKING:
    import os

    from .._manifest.expr import Expr
    from ..tools import Permit, ResourceManager

__all__ = ["Orchestrator", "PipelineResult", "StepResult"]


@attrs.frozen
class StepResult:
    """What one step did: ``ok`` (with its outputs) or ``skipped``.

    ``tool`` is the tool whose outputs were used (a fallback's, or the
    winning branch's in ``mode: first``; for a step that runs a pipeline,
    that pipeline's name), ``attempts`` the calls it took.
    """

    name: str
    status: Literal["ok", "skipped"]
    outputs: dict[str, Any] | None = None
    tool: str | None = None
    branch: str | None = None
    attempts: int = 0


@attrs.frozen
class PipelineResult:
    """The pipeline's outputs, plus what each step did."""

    pipeline: str
    outputs: dict[str, Any]
    steps: dict[str, StepResult]


class Orchestrator:
    """Registers pipelines against a tool registry and runs them.

    Each tool call holds the resources its manifest declares, acquired from
    ``resources`` (a :class:`~modelwire.tools.ResourceManager`; by
    default the registry's own, whose pools ``await registry.aclose()``
    closes) and released when the call ends, however it ends. ``permit``
    (see :func:`~modelwire.tools.grant`) is asked before each call of a tool
    that declares permissions; a denial is not retried (the next tool of the
    step's fallback list is tried) and ends as the step's
    :class:`~modelwire.PipelineError` with the ``TOOL_PERMISSION_DENIED``
    ToolError as its cause.
    """

    def __init__(
        self, registry: ToolRegistry | None = None, *, resources: ResourceManager | None = None,
        permit: Permit | None = None,
    ) -> None:
        self.registry = registry if registry is not None else ToolRegistry()
        self.resources = resources
        #: asked before a tool that declares permissions runs (None: no check)
        self.permit = permit
        self._plans: dict[str, PipelinePlan] = {}
        #: each registered pipeline as a tool, for steps that run it
        self._nodes: dict[str, Tool | None] = {}

    # -- registration ---------------------------------------------------------------
    def register_pipeline(self, pipeline: Pipeline | Flow) -> Pipeline:
        """Check ``pipeline`` against the registry and keep it under its name.

        Raises :class:`~modelwire.ManifestError` (``PIPELINE_INVALID``) listing
        every problem: unknown tools, unknown dependencies, cycles, unmapped
        input ports, outputs that do not fit the inputs they feed. A step
        may run a pipeline registered before this one.
        """
        if isinstance(pipeline, Flow):
            pipeline = pipeline.to_pipeline()
        if pipeline.name in self._plans:
            raise InvalidRequestError(
                f"pipeline {pipeline.name!r} is registered already", code="PIPELINE_DUPLICATE", pipeline=pipeline.name
            )
        plan, issues = compile_pipeline(pipeline, self.registry, self._nodes)
        if issues or plan is None:
            raise ManifestError(issues=issues, code="PIPELINE_INVALID", pipeline=pipeline.name)
        self._plans[pipeline.name] = plan
        self._nodes[pipeline.name] = Tool(node_manifest(plan), self._node_fn(pipeline.name))
        return pipeline

    def _node_fn(self, name: str) -> Any:
        async def run_pipeline(ctx: ToolContext, **inputs: Any) -> dict[str, Any]:
            return (await self.execute(name, inputs, ctx.agent)).outputs

        return run_pipeline

    def load_pipelines(
        self, *paths: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> list[Pipeline]:
        """Load pipeline files (see :func:`modelwire.load_pipelines`) and register each.

        Their steps may run pipelines registered already or loaded here.
        """
        pipelines = load_pipelines(paths, self.registry, env=env, pipelines=self._nodes)
        for pipeline in pipelines:
            self.register_pipeline(pipeline)
        return pipelines

    def get_pipeline(self, name: str) -> Pipeline:
        return self._plan(name).pipeline

    def names(self) -> list[str]:
        return sorted(self._plans)

    def __contains__(self, name: object) -> bool:
        return name in self._plans

    def _plan(self, name: str) -> PipelinePlan:
        try:
            return self._plans[name]
        except KeyError:
            raise NotFoundError(
                f"no pipeline named {name!r}; registered: {', '.join(sorted(self._plans)) or 'none'}",
                code="PIPELINE_NOT_FOUND", name=name,
            ) from None

    # -- running ----------------------------------------------------------------------
    async def execute(
        self, name: str, inputs: Mapping[str, Any] | None = None, ctx: AgentContext | None = None
    ) -> PipelineResult:
        """Run a registered pipeline; its outputs and a record of every step."""
        plan = self._plan(name)
        run = _Run(self, plan, _check_inputs(plan, dict(inputs or {})), ctx or AgentContext())
        return await run.go()

    async def call_pipeline(
        self, name: str, inputs: Mapping[str, Any] | None = None, ctx: AgentContext | None = None
    ) -> dict[str, Any]:
        """Run a registered pipeline and return just its outputs."""
        return (await self.execute(name, inputs, ctx)).outputs


def _check_inputs(plan: PipelinePlan, inputs: dict[str, Any]) -> dict[str, Any]:
    declared = plan.pipeline.inputs
    name = plan.pipeline.name
    if declared is None:
        return inputs
    import jsonschema

    extras = sorted(set(inputs) - set(declared))
    if extras:
        raise PipelineError(
            f"pipeline {name!r} has no input {extras[0]!r} (inputs: {', '.join(declared) or 'none'})",
            code="PIPELINE_BAD_INPUT", pipeline=name, port=extras[0],
        )
    for port, schema in declared.items():
        if port not in inputs:
            if "default" in schema:
                inputs[port] = copy.deepcopy(schema["default"])
                continue
            raise PipelineError(
                f"pipeline {name!r}: input {port!r} is missing", code="PIPELINE_BAD_INPUT", pipeline=name, port=port
            )
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(inputs[port]))
        if error is not None:
            path = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
            raise PipelineError(
                f"pipeline {name!r}: input {port!r} at {path}: {error.message}",
                code="PIPELINE_BAD_INPUT", pipeline=name, port=port, path=path,
            )
    return inputs


class _Run:
    """One execution of one plan."""

    def __init__(self, orch: Orchestrator, plan: PipelinePlan, inputs: dict[str, Any], agent: AgentContext) -> None:
        self.orch = orch
        self.plan = plan
        self.name = plan.pipeline.name
        self.agent = agent
        self.scope: dict[str, Any] = {INPUT: inputs}
        self.results: dict[str, StepResult] = {}
        self.done = {s.name: anyio.Event() for s in plan.steps}

    async def go(self) -> PipelineResult:
        failure: list[Exception] = []
        async with anyio.create_task_group() as tg:
            for step in self.plan.steps:
                tg.start_soon(self._step_task, step, tg.cancel_scope, failure, name=f"step {step.name}")
        if failure:
            raise failure[0]
        if self.plan.outputs is None:
            outputs = {n: r.outputs for n, r in self.results.items() if r.status == "ok"}
        else:
            outputs = {k: self._eval(expr, None, f"output {k!r}") for k, expr in self.plan.outputs.items()}
        ordered = {s.name: self.results[s.name] for s in self.plan.steps}
        return PipelineResult(pipeline=self.name, outputs=outputs, steps=ordered)

    async def _step_task(
        self, step: CompiledStep, scope: anyio.CancelScope, failure: list[Exception]
    ) -> None:
        try:
            for dep in step.deps:
                await self.done[dep].wait()
            result = await self._run_step(step)
        except Exception as exc:
            if not failure:
                failure.append(exc)
            scope.cancel()
            return
        self.results[step.name] = result
        self.scope[step.name] = result.outputs
        self.done[step.name].set()

    def _eval(self, expr: Expr, step: str | None, what: str) -> Any:
        try:
            return expr(self.scope)
        except Exception as exc:
            where = f"step {step!r} " if step else ""
            raise PipelineError(
                f"pipeline {self.name!r}: {where}{what} {expr.text!r} failed: {exc}",
                code="EXPRESSION_FAILED", pipeline=self.name, step=step,
            ) from exc

    async def _run_step(self, step: CompiledStep) -> StepResult:
        skipped = StepResult(step.name, "skipped")
        if step.on_skipped == "skip" and any(self.results[d].status == "skipped" for d in step.deps):
            return skipped
        if step.when is not None and not is_true(self._eval(step.when, step.name, "condition")):
            return skipped
        if not step.parallel:
            outputs, tool, attempts = await self._run_chain(step, step.branches[0])
            return StepResult(step.name, "ok", outputs, tool, None, attempts)
        if step.mode == "first":
            return await self._first(step)
        return await self._all(step)

    async def _all(self, step: CompiledStep) -> StepResult:
        done: dict[str, tuple[dict[str, Any], str, int]] = {}
        failure: list[Exception] = []

        async def branch_task(branch: CompiledBranch, scope: anyio.CancelScope) -> None:
            try:
                done[str(branch.name)] = await self._run_chain(step, branch)
            except Exception as exc:
                if not failure:
                    failure.append(exc)
                scope.cancel()

        async with anyio.create_task_group() as tg:
            for branch in step.branches:
                tg.start_soon(branch_task, branch, tg.cancel_scope)
        if failure:
            raise failure[0]
        outputs = {str(b.name): done[str(b.name)][0] for b in step.branches}
        attempts = sum(d[2] for d in done.values())
        return StepResult(step.name, "ok", outputs, None, None, attempts)

    async def _first(self, step: CompiledStep) -> StepResult:
        winner: list[tuple[CompiledBranch, tuple[dict[str, Any], str, int]]] = []
        errors: list[ToolError] = []
        unexpected: list[Exception] = []

        async def branch_task(branch: CompiledBranch, scope: anyio.CancelScope) -> None:
            try:
                result = await self._run_chain(step, branch)
            except ToolError as exc:
                errors.append(exc)
                return
            except Exception as exc:  # a bug: stop the race and raise it
                unexpected.append(exc)
                scope.cancel()
                return
            if not winner:
                winner.append((branch, result))
                scope.cancel()  # the losers

        async with anyio.create_task_group() as tg:
            for branch in step.branches:
                tg.start_soon(branch_task, branch, tg.cancel_scope)
        if unexpected:
            raise unexpected[0]
        if winner:
            branch, (outputs, tool, attempts) = winner[0]
            return StepResult(step.name, "ok", outputs, tool, branch.name, attempts)
        expression = [e for e in errors if isinstance(e, PipelineError) and e.code == "EXPRESSION_FAILED"]
        if expression:
            raise expression[0]
        attempts = sum(e.attempts or 0 for e in errors)
        raise PipelineError(
            f"pipeline {self.name!r}: step {step.name!r}: every branch failed "
            f"({'; '.join(_short(e) for e in errors)})",
            code="BRANCHES_FAILED", pipeline=self.name, step=step.name, attempts=attempts, failures=errors,
        ) from errors[-1]

    async def _run_chain(self, step: CompiledStep, branch: CompiledBranch) -> tuple[dict[str, Any], str, int]:
        """The branch's tool, then each fallback in turn: (outputs, tool used, attempts)."""
        attempts = 0
        failures: list[ToolError] = []
        for call in branch.chain:
            inputs = self._inputs(step, call)
            try:
                outputs, used = await self._run_call(step, call, inputs)
            except ToolError as exc:  # a tool running a pipeline of its own fails like any tool
                attempts += exc.attempts or 1
                failures.append(exc)
                continue
            return outputs, call.tool.name, attempts + used
        last = failures[-1]
        where = f"step {step.name!r}" + (f" branch {branch.name!r}" if branch.name else "")
        tools = ", ".join(c.tool.name for c in branch.chain)
        raise PipelineError(
            f"pipeline {self.name!r}: {where} failed after {attempts} attempt(s) (tried {tools}): {last.message}",
            code="STEP_TIMEOUT" if last.code == "TOOL_TIMEOUT" else "STEP_FAILED",
            pipeline=self.name, step=step.name, branch=branch.name, tool=last.tool,
            attempts=attempts, failures=failures,
        ) from last

    def _inputs(self, step: CompiledStep, call: CompiledCall) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for feed in call.feeds:
            if feed.expr is None:
                values[feed.port] = copy.deepcopy(feed.literal)
                continue
            value = self._eval(feed.expr, step.name, f"input {feed.port!r}")
            if value is not None:  # null leaves the port out: its default applies
                values[feed.port] = value
        return values

    async def _run_call(
        self, step: CompiledStep, call: CompiledCall, inputs: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """One tool with its retry policy: (outputs, attempts); the last ToolError on failure."""
        policy = call.retry
        attempt = 1
        while True:
            try:
                return await self._attempt(step, call, inputs), attempt
            except ToolError as exc:
                for key, value in (("step", step.name), ("tool", call.tool.name)):
                    if getattr(exc, key, None) is None:
                        setattr(exc, key, value)
                exc.attempts = attempt
                if exc.code in ("TOOL_BAD_INPUT", "TOOL_PERMISSION_DENIED") or attempt >= policy.attempts:
                    raise
            attempt += 1
            wait = policy.wait_before(attempt)
            if wait > 0:
                await anyio.sleep(wait)

    async def _attempt(self, step: CompiledStep, call: CompiledCall, inputs: dict[str, Any]) -> dict[str, Any]:
        """One call: defaults, input validation, resources, timeout, output validation."""
        manager = None
        if call.tool.manifest.resources:
            manager = self.orch.resources if self.orch.resources is not None else self.orch.registry.resources
        return await call_tool(
            call.tool, inputs, self.agent, timeout=call.timeout, resources=manager, permit=self.orch.permit
        )


def _short(exc: ToolError) -> str:
    return exc.message
