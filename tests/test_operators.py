"""Embeddings and any declared operator take generate's path: limits, retries,
the fallback chain, metrics, usage and cost; over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import modelwire
from modelwire import Data, Embedding, Fallback
from modelwire.testing import ReplayServer, Reply, Script, fake_embedding

from core_helpers import modelwire_script, provider_env

pytestmark = pytest.mark.anyio

MODELS = """\
version: 1
providers:
  rr:
    base_url: ${RR_BASE_URL}
    auth: {type: bearer, env: RR_KEY}
    operators:
      rerank:
        path: /v2/rerank
        stream: false
        parser: jsonchunk
        request: "{model: model, query: query, documents: documents, top_n: top_n}"
        events:
          - each: "results[]"
            emit: {type: data, value: "{index: index, score: relevance_score}"}
          - when: meta.billed_units.search_units
            emit: {type: usage, input_tokens: meta.billed_units.search_units}
      moderate:
        path: /v1/moderations
        stream: false
        parser: jsonchunk
        request: "{model: model, input: text}"
        events:
          - emit: {type: data, value: "results[0].flagged"}
  rr-small:
    base_url: ${RR_BASE_URL}
    budget: {max_events: 2}
    operators:
      rerank:
        path: /v2/rerank
        stream: false
        parser: jsonchunk
        request: "{model: model, query: query, documents: documents}"
        events:
          - each: "results[]"
            emit: {type: data, value: relevance_score}
models:
  rr-small-model:
    provider: rr-small
    capabilities: [rerank]
  rr-main:
    provider: rr
    id: rerank-v3.5
    capabilities: [rerank, moderate]
    retry: {attempts: 2, base_delay: 0}
    fallback: [rr-backup]
    pricing: {input_per_mtok: 2000}
  rr-backup:
    provider: rr
    id: rerank-lite
    capabilities: [rerank]
    retry: {attempts: 1}
  rr-one:
    provider: rr
    capabilities: [rerank]
    limits: {concurrency: 1}
  rr-none:
    provider: rr
    capabilities: [generate]
  rr-undeclared:
    provider: rr
    capabilities: [classify]
  emb-a:
    provider: openai
    id: text-embedding-3-small
    capabilities: [embed]
    retry: {attempts: 2, base_delay: 0}
    fallback: [emb-b]
    pricing: {input_per_mtok: 1000}
  emb-b:
    provider: ollama
    id: nomic-embed-text
    capabilities: [embed]
  emb-rpm:
    provider: openai
    id: text-embedding-3-small
    capabilities: [embed]
    limits: {rpm: 1}
  emb-one:
    provider: openai
    capabilities: [embed]
    limits: {concurrency: 1}
  emb-window:
    provider: openai
    capabilities: [embed]
    limits: {context_window: 5}
"""


def rerank_body(*scores: float, units: int = 1) -> bytes:
    results = sorted(({"index": i, "relevance_score": s} for i, s in enumerate(scores)), key=lambda r: -r["relevance_score"])
    return json.dumps({"id": "r1", "results": results, "meta": {"billed_units": {"search_units": units}}}).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=14) as srv:
        yield srv


@pytest.fixture
def env(server: ReplayServer) -> dict[str, str]:
    server.reset()
    return {**provider_env(server), "RR_BASE_URL": server.base_url + "/rr", "RR_KEY": "rr-secret-key"}


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS)
    return path


def runtime(env: dict[str, str], manifest: Path, **kw: Any) -> modelwire.Runtime:
    return modelwire.Runtime.from_manifests("builtin:*", manifest, env=env, **kw)


# -- embeddings -----------------------------------------------------------------


@pytest.mark.parametrize("model", ["openai/text-embedding-3-large", "text-embedding-3-large",
                                   "gemini/text-embedding-004", "ollama/mxbai-embed-large",
                                   "openai-compatible/bge-m3"])
async def test_bundled_providers_embed_any_model(server: ReplayServer, env: dict[str, str], manifest: Path,
                                                 model: str) -> None:
    env["OPENAI_COMPATIBLE_BASE_URL"] = server.url_for("openai")
    async with runtime(env, manifest) as rt:
        vectors = await rt.embed(model, ["alpha", "béta"])
    assert vectors == [fake_embedding("alpha"), fake_embedding("béta")]
    (req,) = server.requests
    model_id = model.partition("/")[2] or model
    assert model_id in json.dumps(req.json) or model_id in req.path


async def test_embed_rpm_is_enforced(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    async with runtime(env, manifest) as rt:
        assert await rt.embed("emb-rpm", "one") == [fake_embedding("one")]
        for text in ("two", "three"):
            with pytest.raises(modelwire.RateLimitError) as info:
                await rt.embed("emb-rpm", text)
            assert info.value.code == "LOCAL_RATE_LIMIT" and info.value.model == "emb-rpm"
    assert len(server.requests) == 1


async def test_embed_concurrency_is_enforced(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    async with runtime(env, manifest) as rt:
        events = rt.call_events("emb-one", "embed", input=["held"])
        first = await events.__anext__()  # the first call is in flight: its slot is taken
        assert first == Embedding(0, fake_embedding("held"))
        with pytest.raises(modelwire.RateLimitError) as info:
            await rt.embed("emb-one", "blocked")
        assert info.value.code == "LOCAL_CONCURRENCY"
        rest = [ev async for ev in events]
        assert type(rest[-1]) is modelwire.Done
        assert await rt.embed("emb-one", "after") == [fake_embedding("after")]
    assert len(server.requests) == 2


async def test_embed_retries_a_503(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Script(status=503), Script())
    async with runtime(env, manifest) as rt:
        assert await rt.embed("emb-a", ["x"]) == [fake_embedding("x")]
    assert [r.path for r in server.requests] == ["/openai/v1/embeddings"] * 2


async def test_embed_falls_back_to_the_next_model(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Script(status=503), Script(status=503))
    metrics = modelwire.Metrics()
    async with runtime(env, manifest, metrics=metrics) as rt:
        assert await rt.embed("emb-a", ["x", "y"]) == [fake_embedding("x"), fake_embedding("y")]
        assert rt.totals.fallbacks == 1
    assert [r.path for r in server.requests] == ["/openai/v1/embeddings"] * 2 + ["/ollama/api/embed"]
    assert server.requests[2].json == {"model": "nomic-embed-text", "input": ["x", "y"]}
    text = metrics.render().decode()
    assert 'modelwire_calls_total{model="emb-a",operator="embed",provider="openai"} 2.0' in text
    assert 'modelwire_calls_total{model="emb-b",operator="embed",provider="ollama"} 1.0' in text
    assert 'modelwire_errors_total{kind="provider_down",model="emb-a",operator="embed",provider="openai"} 2.0' in text
    assert 'modelwire_fallbacks_total{from_model="emb-a",to_model="emb-b"} 1.0' in text


async def test_embed_usage_cost_and_totals(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    async with runtime(env, manifest) as rt:
        await rt.embed("emb-a", ["some words", "more"])
        tokens = rt.totals.input_tokens
        assert tokens  # the replay server reports usage.prompt_tokens
        assert rt.totals.cost == Decimal(tokens) * Decimal(1000) / Decimal(1_000_000)
        assert rt.totals.calls == 1


async def test_missing_vectors_are_a_typed_error(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=json.dumps({"data": [{"index": 0, "embedding": [0.5]}]})))
    async with runtime(env, manifest, policy="raise") as rt:
        with pytest.raises(modelwire.ParseError) as info:
            await rt.embed("text-embedding-3-small", ["a", "b"])
    assert info.value.code == "EMBEDDINGS_MISSING" and info.value.endpoint == server.url_for("openai") + "/embeddings"


@pytest.mark.parametrize("texts", [["ok", 3], [None], [["nested"]]])
async def test_embed_inputs_are_strings(server: ReplayServer, env: dict[str, str], manifest: Path, texts: Any) -> None:
    async with runtime(env, manifest) as rt:
        with pytest.raises(modelwire.InvalidRequestError) as info:
            await rt.embed("emb-a", texts)
    assert info.value.code == "BAD_INPUT" and f"input[{len(texts) - 1}] must be a string" in info.value.message
    assert server.requests == []


async def test_context_window_applies_per_input(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    async with runtime(env, manifest) as rt:
        many = ["a b"] * 10  # each fits; together they would not
        assert len(await rt.embed("emb-window", many)) == 10
        with pytest.raises(modelwire.LimitExceededError) as info:
            await rt.embed("emb-window", ["short", "far too many words for a window of five tokens"])
    assert info.value.code == "CONTEXT_WINDOW_EXCEEDED" and "input[1]" in info.value.message
    assert len(server.requests) == 1


# -- any declared operator --------------------------------------------------------


async def test_call_rerank(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.1, 0.9, units=2)))
    async with runtime(env, manifest) as rt:
        result = await rt.call("rr-main", "rerank", query="capital of France?", documents=["Rome", "Paris"], top_n=2)
    assert result.data == [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}]
    assert (result.model, result.operator, result.models) == ("rr-main", "rerank", ("rr-main",))
    assert result.usage is not None and result.usage.input_tokens == 2
    assert result.cost == Decimal(2) * Decimal(2000) / Decimal(1_000_000)
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/rr/v2/rerank")
    assert req.json == {"model": "rerank-v3.5", "query": "capital of France?", "documents": ["Rome", "Paris"], "top_n": 2}
    assert req.headers["authorization"] == "Bearer rr-secret-key"
    assert result.to_dict()["data"] == result.data


async def test_call_one_value(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=json.dumps({"results": [{"flagged": True}]})))
    async with runtime(env, manifest) as rt:
        result = await rt.call("rr-main", "moderate", text="hello")
    assert result.value is True and server.requests[0].json == {"model": "rerank-v3.5", "input": "hello"}


async def test_value_needs_exactly_one_data_event(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.1, 0.2)))
    async with runtime(env, manifest) as rt:
        result = await rt.call("rr-main", "rerank", query="q", documents=["a", "b"])
    with pytest.raises(modelwire.ParseError) as info:
        _ = result.value
    assert info.value.code == "NOT_ONE_VALUE"


async def test_call_retries_then_falls_back(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    down = Reply(status=503, body=b'{"message": "overloaded"}')
    server.push(down, Reply(body=rerank_body(0.3)))
    async with runtime(env, manifest) as rt:
        retried = await rt.call("rr-main", "rerank", query="q", documents=["a"])
        server.push(down, down, Reply(body=rerank_body(0.7)))
        moved = await rt.call("rr-main", "rerank", query="q", documents=["a"])
    assert retried.data == [{"index": 0, "score": 0.3}] and retried.models == ("rr-main",)
    assert moved.data == [{"index": 0, "score": 0.7}]
    assert (moved.model, moved.models) == ("rr-backup", ("rr-main", "rr-backup"))
    assert type(moved.events[0]) is Fallback
    assert [r.json["model"] for r in server.requests] == ["rerank-v3.5"] * 4 + ["rerank-lite"]


async def test_call_concurrency_is_enforced(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.5, 0.4)), Reply(body=rerank_body(0.2)))
    async with runtime(env, manifest) as rt:
        events = rt.call_events("rr-one", "rerank", query="q", documents=["a", "b"])
        assert await events.__anext__() == Data({"index": 0, "score": 0.5})
        with pytest.raises(modelwire.RateLimitError) as info:
            await rt.call("rr-one", "rerank", query="q", documents=["c"])
        assert info.value.code == "LOCAL_CONCURRENCY"
        await events.aclose()  # leaving early releases the slot
        assert (await rt.call("rr-one", "rerank", query="q", documents=["c"])).data == [{"index": 0, "score": 0.2}]


async def test_call_honours_the_response_budget(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.1)), Reply(body=rerank_body(0.1, 0.2, 0.3)))
    async with runtime(env, manifest, policy="raise") as rt:
        assert (await rt.call("rr-small-model", "rerank", query="q", documents=["a"])).data == [0.1]
        with pytest.raises(modelwire.LimitExceededError) as info:
            await rt.call("rr-small-model", "rerank", query="q", documents=["a", "b", "c"])
    assert info.value.code == "STREAM_TOO_LARGE" and info.value.model == "rr-small-model"


@pytest.mark.parametrize(
    ("model", "operator", "inputs", "error", "code"),
    [
        pytest.param("rr-none", "rerank", {"query": "q"}, modelwire.InvalidRequestError, "CAPABILITY_MISSING",
                     id="capability-missing"),
        pytest.param("rr-undeclared", "classify", {}, modelwire.NotFoundError, "OPERATOR_NOT_FOUND",
                     id="operator-not-declared"),
        pytest.param("rr-main", "rerank", {"model": "other"}, modelwire.InvalidRequestError, "BAD_INPUT",
                     id="reserved-input"),
        pytest.param("nope", "rerank", {}, modelwire.NotFoundError, "MODEL_NOT_FOUND", id="unknown-model"),
        pytest.param("rr-main", "rerank", {"query": b"bytes"}, modelwire.InvalidRequestError, "BAD_INPUT",
                     id="not-json"),
        pytest.param("rr-main", "rerank", {"top_n": float("nan")}, modelwire.InvalidRequestError, "BAD_INPUT",
                     id="nan"),
    ],
)
async def test_bad_calls_fail_before_http(server: ReplayServer, env: dict[str, str], manifest: Path, model: str,
                                          operator: str, inputs: dict[str, Any], error: type[Exception],
                                          code: str) -> None:
    async with runtime(env, manifest) as rt:
        with pytest.raises(error) as info:
            await rt.call(model, operator, **inputs)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert server.requests == []


def test_sync_call(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.25)))
    with modelwire.SyncRuntime(runtime(env, manifest)) as rt:
        assert rt.call("rr-main", "rerank", query="q", documents=["a"]).data == [{"index": 0, "score": 0.25}]
        assert rt.embed("openai/text-embedding-3-large", "z") == [fake_embedding("z")]
        server.push(Reply(body=rerank_body(0.5, 0.75)))
        events = list(rt.call_events("rr-main", "rerank", query="q", documents=["a", "b"]))
    assert [type(ev).__name__ for ev in events] == ["Data", "Data", "Usage", "Done"]
    assert events[0] == Data({"index": 1, "score": 0.75})


# -- the CLI ------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]) -> Any:
    import os
    import subprocess

    return subprocess.run([modelwire_script(), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60, check=False)


def test_cli_embed_default_capability(server: ReplayServer, env: dict[str, str]) -> None:
    proc = cli("embed", "openai/text-embedding-3-large", "alpha", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"text": "alpha", "vector": fake_embedding("alpha")}
    assert server.requests[0].json == {"model": "text-embedding-3-large", "input": ["alpha"]}


def test_cli_call_operator(server: ReplayServer, env: dict[str, str], manifest: Path) -> None:
    server.push(Reply(body=rerank_body(0.1, 0.9)))
    proc = cli("call", "rr-main", "--operator", "rerank", "-m", str(manifest), "--input", "query=q",
               "--input", 'documents:=["a", "b"]', "--input", "top_n:=1", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["data"] == [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}]
    assert out["model"] == "rr-main" and out["usage"]["input_tokens"] == 1
    assert server.requests[0].json == {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"], "top_n": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--operator", "rerank", "--input", "query"], "--input 'query': expected KEY=TEXT or KEY:=JSON",
                     id="no-equals"),
        pytest.param(["--operator", "rerank", "--input", "documents:=[1,"], "--input documents: not JSON", id="bad-json"),
        pytest.param(["a prompt", "--operator", "rerank"], "not a PROMPT", id="prompt-with-operator"),
        pytest.param([], "no prompt given", id="nothing"),
        pytest.param(["hi", "--schema", "/nonexistent/s.json"], "--schema: cannot read /nonexistent/s.json",
                     id="schema-file-missing"),
        pytest.param(["hi", "--schema", "{nope"], "--schema: not JSON", id="schema-not-json"),
    ],
)
def test_cli_bad_arguments(env: dict[str, str], manifest: Path, args: list[str], message: str) -> None:
    proc = cli("call", "rr-main", *args, "-m", str(manifest), env=env)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_schema(server: ReplayServer, env: dict[str, str], tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "required": ["city"],
                                  "properties": {"city": {"type": "string"}}}))
    server.push(Script(text='{"city": "Lima"}'), Script(text='{"city": 7}'))
    ok = cli("call", "gpt-4.1-mini", "hi", "--schema", str(schema), "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.splitlines()[-1]) == {"type": "parsed", "value": {"city": "Lima"}}
    assert server.requests[0].json["response_format"]["json_schema"]["schema"] == json.loads(schema.read_text())
    bad = cli("call", "gpt-4.1-mini", "hi", "--schema", schema.read_text(), env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "does not match the schema at /city" in bad.stderr
