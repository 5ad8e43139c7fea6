"""Virtual keys: hashes in gateway.yaml, allowed models, rpm / concurrency / budget, spend at /v1/usage and /metrics."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

import modelwire
from modelwire._manifest.yaml import read_yaml
from modelwire.gateway import GatewayConfig, hash_key, parse_gateway_config
from modelwire.testing import ReplayServer, Script

from core_helpers import run_cli
from gateway_helpers import TIMEOUT, running_gateway
from servers.held import held_server

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
pytest.importorskip("uvicorn")

USAGE = (10, 20)


def price_of(model: str, usage: tuple[int, int] = USAGE) -> Decimal:
    """The cost the runtime computes for ``usage`` from the bundled manifest's pricing."""
    spec = modelwire.Runtime.from_manifests("builtin:*").catalog.models[model]
    assert spec.pricing is not None
    return (Decimal(usage[0]) * Decimal(str(spec.pricing.input_per_mtok))
            + Decimal(usage[1]) * Decimal(str(spec.pricing.output_per_mtok))) / 1_000_000


def config(text: str) -> GatewayConfig:
    doc, issues = read_yaml(textwrap.dedent(text), "gateway.yaml")
    assert doc is not None, issues
    return parse_gateway_config(doc, {})


def keys_yaml(budget: Decimal) -> str:
    return f"""\
        keys:
          admin: {{hash: "{hash_key('sk-admin')}", admin: true}}
          team: {{hash: "{hash_key('sk-team')}", models: ["gpt-4.1-mini", "claude-*"], rpm: 3}}
          payer:
            hash: "{hash_key('sk-payer')}"
            budget: {{amount: "{budget}", currency: USD, period: day}}
          single: {{hash: "{hash_key('sk-single')}", concurrency: 1}}
        """


@pytest.fixture(scope="module")
def srv() -> Iterator[ReplayServer]:
    with ReplayServer(seed=5, default=Script(text="ok", usage=USAGE)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(srv: ReplayServer) -> Iterator[tuple[str, Any]]:
    with running_gateway(srv, config(keys_yaml(2 * price_of("gpt-4.1-mini")))) as running:
        yield running


def sdk(url: str, key: str) -> Any:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def ask(client: Any, model: str = "gpt-4.1-mini") -> str:
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    return str(resp.choices[0].message.content)


@pytest.mark.parametrize(
    ("text", "path", "needle"),
    [
        pytest.param('keys: {a: {hash: "sk-plain-key-pasted"}}', "keys.a.hash", "store the key's hash", id="plain-key"),
        pytest.param(f'keys: {{a: {{hash: "{hash_key("x")}", budget: {{amount: "lots"}}}}}}', "keys.a.budget.amount",
                     "decimal", id="bad-amount"),
        pytest.param(f'keys: {{a: {{hash: "{hash_key("x")}", rpm: -1}}}}', "keys.a.rpm", ">= 0", id="negative-rpm"),
        pytest.param(f'keys: {{a: {{hash: "{hash_key("x")}"}}, b: {{hash: "{hash_key("x")}"}}}}', "keys.b.hash",
                     "same key", id="duplicate"),
        pytest.param("kees: {}", "kees", "", id="unknown-field"),
    ],
)
def test_config_errors_name_file_field_and_line(text: str, path: str, needle: str) -> None:
    with pytest.raises(modelwire.ManifestError) as info:
        config(text)
    issues = info.value.issues
    assert any(i.path == path and needle in i.message and i.file == "gateway.yaml" and i.line == 1 for i in issues), issues
    assert "sk-plain-key-pasted" not in str(info.value)


def test_a_bad_config_is_one_line_from_the_cli(tmp_path: Any) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text('keys: {a: {hash: "nope"}}\n')
    proc = run_cli("serve", "--config", str(bad))
    assert proc.returncode == 1
    assert "keys.a.hash" in proc.stderr and "Traceback" not in proc.stderr
    out = run_cli("serve", "--hash-key", "sk-team")
    assert out.returncode == 0 and out.stdout.strip() == hash_key("sk-team")
    piped = run_cli("serve", "--hash-key", "-", input=b"sk-team\n")
    assert piped.stdout.strip() == hash_key("sk-team")
    open_wide = run_cli("serve", "--host", "0.0.0.0")
    assert open_wide.returncode == 1 and "without virtual keys" in open_wide.stderr
    assert "Traceback" not in open_wide.stderr
    assert run_cli("serve", "--workers", "0").returncode == 2


def test_keys_are_required_and_checked(gateway: tuple[str, Any]) -> None:
    url = gateway[0]
    with pytest.raises(openai.AuthenticationError) as info:
        ask(sdk(url, "sk-wrong"))
    assert info.value.status_code == 401
    assert httpx.post(url + "/v1/chat/completions", json={}).status_code == 401
    with anthropic.Anthropic(base_url=url, api_key="sk-admin", max_retries=0) as c:  # x-api-key
        msg = c.messages.create(model="gpt-4.1-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert msg.content[0].text == "ok"


def test_a_key_sees_and_uses_only_its_models(gateway: tuple[str, Any]) -> None:
    url = gateway[0]
    with pytest.raises(openai.PermissionDeniedError):
        ask(sdk(url, "sk-team"), "gemini-2.5-flash")
    ids = [m.id for m in sdk(url, "sk-team").models.list()]
    assert "gpt-4.1-mini" in ids and "gemini-2.5-flash" not in ids
    assert all(i == "gpt-4.1-mini" or i.startswith("claude-") for i in ids)


def test_rpm_admits_exactly_the_limit_then_429_with_retry_after(gateway: tuple[str, Any], srv: ReplayServer) -> None:
    client = sdk(gateway[0], "sk-team")
    srv.reset()
    results = []
    for _ in range(5):
        try:
            results.append(ask(client))
        except openai.RateLimitError as exc:
            results.append(exc.response.headers.get("retry-after"))
    assert results[:3] == ["ok"] * 3
    assert all(r is not None and 1 <= int(r) <= 60 for r in results[3:])
    assert len(srv.requests) == 3  # refused requests never reach the provider


def test_the_budget_stops_exactly_when_spent_and_usage_shows_it(gateway: tuple[str, Any]) -> None:
    url = gateway[0]
    client = sdk(url, "sk-payer")
    assert ask(client) == "ok"
    assert ask(client) == "ok"
    with pytest.raises(openai.RateLimitError) as info:
        ask(client)
    assert info.value.body["type"] == "insufficient_quota"
    report = httpx.get(url + "/v1/usage", headers={"authorization": "Bearer sk-admin"}).json()
    payer = report["keys"]["payer"]
    assert Decimal(payer["spent"]) == 2 * price_of("gpt-4.1-mini") == Decimal(payer["budget"]["amount"])
    assert payer["models"]["gpt-4.1-mini"] == {
        "requests": 2, "input_tokens": 2 * USAGE[0], "output_tokens": 2 * USAGE[1], "cost": payer["spent"],
    }
    assert httpx.get(url + "/v1/usage", headers={"authorization": "Bearer sk-team"}).status_code == 403
    metrics = httpx.get(url + "/metrics", headers={"authorization": "Bearer sk-admin"}).text
    assert 'modelwire_gateway_cost_total{currency="USD",key="payer",model="gpt-4.1-mini",provider="openai",route="openai"}' in metrics
    assert 'modelwire_gateway_rejected_total{key="payer",limit="budget"} 1.0' in metrics
    assert "sk-payer" not in metrics and hash_key("sk-payer") not in metrics


def test_concurrency_counts_requests_in_flight() -> None:
    cfg = config(keys_yaml(Decimal(1)))
    with held_server() as held, ReplayServer() as srv, running_gateway(
        srv, cfg, env={"OPENAI_BASE_URL": held.url}
    ) as (url, _gw):
        client = sdk(url, "sk-single")
        stream = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}],
                                                stream=True)
        chunks = iter(stream)
        first = next(chunks)  # the role chunk, sent with the first text
        assert (first.choices[0].delta.role, next(chunks).choices[0].delta.content) == ("assistant", "Hello")
        with pytest.raises(openai.RateLimitError) as info:
            ask(client)
        assert info.value.body["code"] == "key_concurrency_limit"
        held.release.set()
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " world"
        assert ask(client) == "Hello world"  # the slot is free again
        assert held.finished.wait(TIMEOUT)


def test_tpm_counts_the_prompt_estimate_and_max_tokens(srv: ReplayServer) -> None:
    cfg = config(f'keys: {{k: {{hash: "{hash_key("sk-k")}", tpm: 150}}}}\n')
    with running_gateway(srv, cfg) as (url, _gw):
        client = sdk(url, "sk-k")
        resp = client.chat.completions.create(model="gpt-4.1-mini", max_tokens=100,
                                              messages=[{"role": "user", "content": "x"}])
        assert resp.choices[0].message.content == "ok"  # reserved ~100, counted 30 (the real usage)
        client.chat.completions.create(model="gpt-4.1-mini", max_tokens=100, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as info:  # 30 + 30 used, another 100+ does not fit in 150
            client.chat.completions.create(model="gpt-4.1-mini", max_tokens=100, messages=[{"role": "user", "content": "x"}])
        assert info.value.body["code"] == "key_tpm_limit"
        with pytest.raises(openai.RateLimitError):  # more than the whole window: never
            client.chat.completions.create(model="gpt-4.1-mini", max_tokens=1000, messages=[{"role": "user", "content": "x"}])


def test_an_unreachable_redis_fails_closed_with_503(srv: ReplayServer) -> None:
    from servers.redis_server import free_port

    cfg = config(f'keys: {{k: {{hash: "{hash_key("sk-k")}", rpm: 10}}}}\n')
    with running_gateway(srv, cfg, redis=f"redis://127.0.0.1:{free_port()}/0") as (url, _gw):
        srv.reset()
        resp = httpx.post(url + "/v1/chat/completions", headers={"authorization": "Bearer sk-k"},
                          json={"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}]})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "counters_unavailable"
        assert srv.requests == []
