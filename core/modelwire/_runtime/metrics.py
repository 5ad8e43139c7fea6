"""Prometheus metrics for a runtime, opt-in.

``Runtime(..., metrics=Metrics())`` records every attempt. ``prometheus_client``
is imported only when a :class:`Metrics` is created, and each ``Metrics``
owns its registry unless the embedding app passes one, so two runtimes never
share counters by accident and importing modelwire touches no global
registry.

Names follow the OpenTelemetry GenAI semantic conventions where they exist
(``gen_ai.client.operation.duration``, ``gen_ai.server.time_to_first_token``,
``gen_ai.client.token.usage``), spelled the Prometheus way; labels are
``provider``, ``model`` and ``operator``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .._errors import redact

__all__ = ["Metrics"]

LABELS = ("provider", "model", "operator")
# Seconds; LLM calls are slow, so the buckets reach further than the defaults.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _label(value: Any) -> str:
    return redact(str(value)) if value is not None else ""


class Metrics:
    """Counters and histograms for calls, tokens, cost, errors and fallbacks."""

    def __init__(self, registry: Any = None, namespace: str = "modelwire") -> None:
        import prometheus_client as prom

        self.registry = registry if registry is not None else prom.CollectorRegistry(auto_describe=True)
        r, ns = self.registry, namespace
        self.calls = prom.Counter(f"{ns}_calls", "Model calls attempted.", LABELS, registry=r)
        self.errors = prom.Counter(f"{ns}_errors", "Failed attempts by error kind.", (*LABELS, "kind"), registry=r)
        self.tokens = prom.Counter(
            f"{ns}_tokens", "Tokens used (provider-reported or estimated).", (*LABELS, "direction"), registry=r
        )
        # one series per currency: costs in two currencies must never add up
        self.cost = prom.Counter(
            f"{ns}_cost", "Cost, in the currency its label names.", (*LABELS, "currency"), registry=r
        )
        self.fallbacks = prom.Counter(
            f"{ns}_fallbacks", "Times another model took over.", ("from_model", "to_model"), registry=r
        )
        self.duration = prom.Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one attempt, request to last byte (OTel gen_ai.client.operation.duration).",
            LABELS, buckets=DURATION_BUCKETS, registry=r,
        )
        self.ttft = prom.Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first text or tool-call delta (OTel gen_ai.server.time_to_first_token).",
            LABELS, buckets=TTFT_BUCKETS, registry=r,
        )

    # -- called by the runtime ----------------------------------------------
    def call(self, provider: str, model: str, operator: str) -> None:
        self.calls.labels(_label(provider), _label(model), operator).inc()

    def first_token(self, provider: str, model: str, operator: str, seconds: float) -> None:
        self.ttft.labels(_label(provider), _label(model), operator).observe(seconds)

    def finished(
        self,
        provider: str,
        model: str,
        operator: str,
        seconds: float,
        usage: Any = None,
        error_kind: str | None = None,
    ) -> None:
        labels = (_label(provider), _label(model), operator)
        self.duration.labels(*labels).observe(seconds)
        if error_kind is not None:
            self.errors.labels(*labels, error_kind).inc()
        if usage is not None:
            if usage.input_tokens:
                self.tokens.labels(*labels, "input").inc(usage.input_tokens)
            if usage.output_tokens:
                self.tokens.labels(*labels, "output").inc(usage.output_tokens)
            if usage.cost:
                self.cost.labels(*labels, _label(usage.currency or "USD")).inc(float(Decimal(usage.cost)))

    def fallback(self, from_model: str, to_model: str, reason: str) -> None:
        self.fallbacks.labels(_label(from_model), _label(to_model)).inc()

    # -- exposing -----------------------------------------------------------
    def render(self) -> bytes:
        """The text exposition format (what /metrics serves)."""
        import prometheus_client as prom

        data: bytes = prom.generate_latest(self.registry)
        return data

    def asgi_app(self) -> Any:
        """An ASGI app serving /metrics for this registry (mount it in your server)."""
        import prometheus_client as prom

        return prom.make_asgi_app(registry=self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Serve /metrics on a background thread; returns (server, thread)."""
        import prometheus_client as prom

        return prom.start_http_server(port, addr=addr, registry=self.registry)
