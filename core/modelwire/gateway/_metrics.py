"""Prometheus series of the gateway: requests, tokens, cost, latency and time to first token by model, provider and key.

They share one registry with the runtime's :class:`~modelwire.Metrics`
(attempts, errors, fallbacks per provider), so ``/metrics`` serves both. Key
labels are the key's *name* from ``gateway.yaml``, never the key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["GatewayMetrics"]

_LABELS = ("route", "model", "provider", "key")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


class GatewayMetrics:
    """Counters and histograms per request (not per attempt: the runtime's metrics count those)."""

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        r = self.registry = registry
        self.requests = prom.Counter(
            "modelwire_gateway_requests", "Requests answered, by HTTP status.", (*_LABELS, "status"), registry=r
        )
        self.tokens = prom.Counter(
            "modelwire_gateway_tokens", "Tokens billed.", (*_LABELS, "direction"), registry=r
        )
        self.cost = prom.Counter(
            "modelwire_gateway_cost", "Cost billed, in the pricing's currency.", (*_LABELS, "currency"), registry=r
        )
        self.latency = prom.Histogram(
            "modelwire_gateway_request_duration_seconds", "Request received to last byte sent.", _LABELS,
            buckets=_BUCKETS, registry=r,
        )
        self.ttft = prom.Histogram(
            "modelwire_gateway_time_to_first_token_seconds", "Request received to first text or tool call sent.",
            _LABELS, buckets=_BUCKETS, registry=r,
        )
        self.rejected = prom.Counter(
            "modelwire_gateway_rejected", "Requests refused by a key's limit or budget.", ("key", "limit"), registry=r
        )

    def request(
        self, labels: tuple[str, str, str, str], status: int, seconds: float, *, ttft: float | None = None,
        input_tokens: int = 0, output_tokens: int = 0, cost: Decimal | None = None, currency: str = "",
    ) -> None:
        self.requests.labels(*labels, str(status)).inc()
        self.latency.labels(*labels).observe(seconds)
        if ttft is not None:
            self.ttft.labels(*labels).observe(ttft)
        if input_tokens:
            self.tokens.labels(*labels, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(*labels, "output").inc(output_tokens)
        if cost:
            self.cost.labels(*labels, currency).inc(float(cost))

    def render(self) -> bytes:
        import prometheus_client as prom

        data: bytes = prom.generate_latest(self.registry)
        return data
