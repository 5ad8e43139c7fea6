"""Metrics are opt-in and per runtime; a planted API key never shows anywhere."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import modelwire
from modelwire.testing import ReplayServer, Reply, Script

SECRET = "planted-Secret-Value-0123456789"  # no sk- prefix: pattern matching alone would miss it


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=21) as srv:
        yield srv


def runtime(server: ReplayServer, metrics: Any = None, **env: str) -> modelwire.Runtime:
    server.reset()
    full = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": SECRET,
            "GEMINI_BASE_URL": server.url_for("gemini"), "GEMINI_API_KEY": SECRET, **env}
    return modelwire.Runtime.from_manifests("builtin:openai", "builtin:gemini", env=full, metrics=metrics, policy="raise")


def test_import_does_not_load_prometheus() -> None:
    code = "import sys, modelwire; assert 'prometheus_client' not in sys.modules; modelwire.Metrics(); assert 'prometheus_client' in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_metrics_count_calls_tokens_cost_errors(server: ReplayServer) -> None:
    metrics = modelwire.Metrics()
    server.reset()
    rt = runtime(server, metrics)
    server.push(Script(text="ok", usage=(100, 50)), Script(status=503))

    async def go() -> None:
        async with rt:
            await rt.generate("gpt-4.1-mini", "hi")
            with pytest.raises(modelwire.ProviderDownError):
                await rt.generate("gpt-4.1-mini", "hi")

    anyio.run(go)
    text = metrics.render().decode()
    labels = 'model="gpt-4.1-mini",operator="generate",provider="openai"'
    assert f"modelwire_calls_total{{{labels}}} 2.0" in text
    assert f'modelwire_tokens_total{{direction="input",{labels}}} 100.0' in text
    assert f'modelwire_tokens_total{{direction="output",{labels}}} 50.0' in text
    assert f'modelwire_errors_total{{kind="provider_down",{labels}}} 1.0' in text
    assert f"gen_ai_client_operation_duration_seconds_count{{{labels}}} 2.0" in text
    assert f"gen_ai_server_time_to_first_token_seconds_count{{{labels}}} 1.0" in text
    cost = next(line for line in text.splitlines() if line.startswith("modelwire_cost_total{"))
    assert cost.startswith(f'modelwire_cost_total{{currency="USD",{labels}}} ')
    assert float(cost.split()[-1]) == pytest.approx(100 * 0.4e-6 + 50 * 1.6e-6)


def test_two_runtimes_have_separate_registries(server: ReplayServer) -> None:
    a, b = modelwire.Metrics(), modelwire.Metrics()
    assert a.registry is not b.registry
    a.call("p", "m", "generate")
    assert "modelwire_calls_total" in a.render().decode() and 'model="m"' not in b.render().decode()


def test_an_app_registry_is_used() -> None:
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    metrics = modelwire.Metrics(registry=registry)
    metrics.call("p", "m", "generate")
    assert registry.get_sample_value("modelwire_calls_total", {"provider": "p", "model": "m", "operator": "generate"}) == 1.0


def test_planted_key_never_leaks(server: ReplayServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = modelwire.Metrics()
    rt = runtime(server, metrics)
    # The provider echoes the key back in its error body, as real ones do.
    server.push(
        Reply(status=401, body=f'{{"error": {{"message": "Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}}}'),
        Reply(status=400, body=f'{{"error": {{"message": "key {SECRET} rejected", "status": "INVALID_ARGUMENT"}}}}'),
        Reply(status=200, content_type="text/event-stream", body=f'data: {{"error": {{"message": "bad key {SECRET}"}}}}\n\n'),
    )
    seen: list[str] = []

    async def go() -> None:
        async with rt:
            for model in ("gpt-4.1-mini", "gemini-2.5-flash", "gpt-4.1-mini"):
                try:
                    await rt.generate(model, "hi")
                except modelwire.ModelError as exc:
                    seen.extend([str(exc), repr(exc), exc.message, str(exc.to_dict()), str(exc.args)])
                    import pickle

                    seen.append(str(pickle.loads(pickle.dumps(exc))))
            p, request = _plan(rt)
            seen.append(repr(build_outgoing(p, CompiledOperator(p.operator), request, None, rt.plugins, rt.env)))

    with caplog.at_level(logging.DEBUG):
        anyio.run(go)
    out = capsys.readouterr()
    everything = "\n".join([*seen, caplog.text, out.out, out.err, metrics.render().decode()])
    assert len(seen) >= 16
    assert "Incorrect API key provided" in everything  # the messages are there...
    assert SECRET not in everything  # ...the key is not


from modelwire._runtime.request import (  # noqa: E402
    CompiledOperator,
    build_outgoing,
    build_request,
    normalize_messages,
)


def _plan(rt: modelwire.Runtime) -> tuple[Any, dict[str, Any]]:
    from modelwire._runtime.planning import plan

    p = plan(rt.catalog, "gpt-4.1-mini", "generate")
    return p, build_request(p, messages=normalize_messages("hi", None, None))


def test_costs_in_two_currencies_are_two_series(server: ReplayServer, tmp_path: Any) -> None:
    (tmp_path / "eur.yaml").write_text(
        "version: 1\nmodels:\n  eu-mini:\n    provider: openai\n    id: gpt-4.1-mini\n"
        "    pricing: {input_per_mtok: 2, output_per_mtok: 4, currency: EUR}\n"
    )
    metrics = modelwire.Metrics()
    server.reset()
    env = {"OPENAI_BASE_URL": server.url_for("openai"), "OPENAI_API_KEY": SECRET}
    rt = modelwire.Runtime.from_manifests("builtin:openai", str(tmp_path / "eur.yaml"), env=env, metrics=metrics)
    server.push(Script(text="ok", usage=(100, 50)), Script(text="ok", usage=(100, 50)))

    async def go() -> None:
        async with rt:
            await rt.generate("gpt-4.1-mini", "hi")
            await rt.generate("eu-mini", "hi")

    anyio.run(go)
    costs = {
        line.split('currency="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.render().decode().splitlines() if line.startswith("modelwire_cost_total{")
    }
    assert costs == pytest.approx({"USD": 100 * 0.4e-6 + 50 * 1.6e-6, "EUR": 100 * 2e-6 + 50 * 4e-6})
