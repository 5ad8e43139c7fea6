"""Pipelines as data: :class:`Pipeline`, :class:`Step`, :class:`Branch`, :class:`FallbackTool`, :class:`RetryPolicy`.

A pipeline is a graph of steps. A step calls a tool (with a per-attempt
``timeout``, a ``retry`` policy and a sequential ``fallback`` list of other
tools), runs another registered ``pipeline`` as one node (its declared
inputs and outputs are the node's ports; retry, timeout and fallback apply
as to a tool), or runs ``parallel`` branches aggregated ``mode: all`` (every branch
must succeed; the step's outputs are ``{branch: outputs}``) or
``mode: first`` (the first branch to succeed wins, the others are cancelled;
the step's outputs are the winner's).

Three ways to write one, all producing a :class:`Pipeline`: YAML
(:mod:`._files`), the :class:`~._flow.Flow` builder, or these attrs classes
themselves. Expressions (input mappings, ``when`` conditions, pipeline
``outputs``) are JMESPath over one scope: ``input`` holds the pipeline inputs
and each finished step's outputs sit under the step's name
(``geocode.lat``, ``input.city``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .._manifest.yaml import Located

__all__ = [
    "Branch",
    "FallbackTool",
    "Pipeline",
    "RetryPolicy",
    "Step",
]


def _retry(value: RetryPolicy | int | None) -> RetryPolicy | None:
    if value is None or isinstance(value, RetryPolicy):
        return value
    return RetryPolicy(attempts=value)


def _retry_default(value: RetryPolicy | int | None) -> RetryPolicy:
    return _retry(value) or RetryPolicy()


def _calls(values: Iterable[str | FallbackTool]) -> tuple[FallbackTool, ...]:
    return tuple(FallbackTool(tool=v) if isinstance(v, str) else v for v in values)


def _names(values: str | Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _branches(values: Iterable[Branch]) -> tuple[Branch, ...]:
    return tuple(values)


def _steps(values: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(values)


def _dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _opt_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


@attrs.frozen
class RetryPolicy:
    """How often to try one tool, and how long to wait between tries.

    ``attempts`` counts every call (1: no retry). The wait before try ``n``
    (2, 3, ...) is ``delay`` (``backoff: fixed``) or
    ``delay * factor ** (n - 2)`` (``exponential``), at most ``max_delay``.
    Input-validation failures are never retried: the same inputs fail again.
    """

    attempts: int = 1
    backoff: Literal["fixed", "exponential"] = "exponential"
    delay: float = 0.0
    max_delay: float = 30.0
    factor: float = 2.0

    def wait_before(self, attempt: int) -> float:
        """Seconds to sleep before try number ``attempt`` (2 or more)."""
        if self.backoff == "fixed":
            wait = self.delay
        else:
            wait = self.delay * self.factor ** max(attempt - 2, 0)
        return max(0.0, min(wait, self.max_delay))


@attrs.frozen
class FallbackTool:
    """One tool to call: an entry of a ``fallback`` list.

    ``inputs``, ``timeout`` and ``retry`` left ``None`` are the step's (the
    step's input mapping, minus ports this tool does not have).
    """

    tool: str
    inputs: dict[str, Any] | None = attrs.field(default=None, converter=_opt_dict)
    timeout: float | None = None
    retry: RetryPolicy | None = attrs.field(default=None, converter=_retry)


@attrs.frozen
class Branch:
    """One branch of a parallel step: a tool, with its own fallbacks."""

    name: str
    tool: str
    inputs: dict[str, Any] | None = attrs.field(default=None, converter=_opt_dict)
    timeout: float | None = None
    retry: RetryPolicy | None = attrs.field(default=None, converter=_retry)
    fallback: tuple[FallbackTool, ...] = attrs.field(default=(), converter=_calls)


@attrs.frozen
class Step:
    """One node of a pipeline: a ``tool`` call, a nested ``pipeline`` or parallel ``branches``.

    ``inputs`` maps each input port to an expression string over the scope
    (``"geocode.lat"``), a plain literal (``3``, ``[1, 2]``) or
    ``{"value": X}`` for a literal string or mapping. An expression that
    yields null leaves the port out (its default applies, or validation
    names it missing). Unmapped ports are fed by the output of the same
    name of a direct dependency, else by the pipeline input of that name.

    ``when`` skips the step when false. A step whose dependency was skipped
    is skipped too, unless ``on_skipped="run"`` (skipped steps read as null).
    ``timeout`` is per attempt, in seconds.

    ``pipeline`` names another pipeline (registered first, or in the same
    files) run as this node: its ``inputs`` are the node's input ports (when
    it declares none, the ``input.NAME`` its expressions read) and its
    ``outputs`` the node's outputs (when it declares none, one per step).
    """

    name: str
    tool: str | None = None
    pipeline: str | None = None
    inputs: dict[str, Any] = attrs.field(factory=dict, converter=_dict)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_names)
    when: str | None = None
    timeout: float | None = None
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, converter=_retry_default)
    fallback: tuple[FallbackTool, ...] = attrs.field(default=(), converter=_calls)
    branches: tuple[Branch, ...] = attrs.field(default=(), converter=_branches)
    mode: Literal["all", "first"] = "all"
    on_skipped: Literal["skip", "run"] = "skip"
    description: str = ""


@attrs.frozen
class Pipeline:
    """A named graph of steps, with optional declared inputs and outputs.

    ``inputs`` (name -> JSON Schema), when given, is checked at every run and
    lets the IO check type references to ``input.NAME``; ``None`` accepts
    any inputs. ``outputs`` (name -> expression) shapes the result; ``None``
    returns every step's outputs by step name.
    """

    #: letters, digits, ``_`` and ``-``, in dot-separated parts (``summarize.pipeline``)
    name: str
    steps: tuple[Step, ...] = attrs.field(converter=_steps)
    inputs: dict[str, dict[str, Any]] | None = attrs.field(default=None, converter=_opt_dict)
    outputs: dict[str, str] | None = attrs.field(default=None, converter=_opt_dict)
    description: str = ""
    #: the YAML document it came from (for file and line in errors)
    source: Located | None = attrs.field(default=None, eq=False, repr=False)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)
