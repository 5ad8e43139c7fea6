"""Every bundled provider over real loopback HTTP: its base-URL and key variables, path, auth.

Each row calls ``provider/model`` with only the vendor's variables set (the
base URL pointing at the replay server) and checks what went on the wire
and what came back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import modelwire
from modelwire.testing import ReplayServer, Script

SECRET = "sk-test-not-a-real-key"
BEARER = ("authorization", f"Bearer {SECRET}")

# provider, model, base-URL variable, replay format, path after the format's base, key variable, auth header, query
PROVIDERS = [
    ("azure", "my-gpt-4o", "AZURE_OPENAI_ENDPOINT", "openai",
     "/openai/deployments/my-gpt-4o/chat/completions", "AZURE_OPENAI_API_KEY", ("api-key", SECRET),
     {"api-version": "2024-10-21"}),
    ("mistral", "mistral-small-latest", "MISTRAL_BASE_URL", "mistral", "/chat/completions", "MISTRAL_API_KEY", BEARER, {}),
    ("groq", "llama-3.1-8b-instant", "GROQ_BASE_URL", "openai", "/chat/completions", "GROQ_API_KEY", BEARER, {}),
    ("deepseek", "deepseek-chat", "DEEPSEEK_BASE_URL", "openai", "/chat/completions", "DEEPSEEK_API_KEY", BEARER, {}),
    ("xai", "grok-3-mini", "XAI_BASE_URL", "openai", "/chat/completions", "XAI_API_KEY", BEARER, {}),
    ("openrouter", "anthropic/claude-sonnet-4.5", "OPENROUTER_BASE_URL", "openai", "/chat/completions",
     "OPENROUTER_API_KEY", BEARER, {}),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "TOGETHER_BASE_URL", "openai", "/chat/completions",
     "TOGETHER_API_KEY", BEARER, {}),
    ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct", "FIREWORKS_BASE_URL", "openai",
     "/chat/completions", "FIREWORKS_API_KEY", BEARER, {}),
    ("cerebras", "llama3.1-8b", "CEREBRAS_BASE_URL", "openai", "/chat/completions", "CEREBRAS_API_KEY", BEARER, {}),
    ("perplexity", "sonar", "PERPLEXITY_BASE_URL", "openai", "/chat/completions", "PERPLEXITY_API_KEY", BEARER, {}),
    ("cohere", "command-r-08-2024", "CO_API_URL", "cohere", "/v2/chat", "CO_API_KEY", BEARER, {}),
    ("cohere", "command-a-03-2025", "COHERE_BASE_URL", "cohere", "/v2/chat", "CO_API_KEY", BEARER, {}),
]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(seed=5) as srv:
        yield srv


def base_for(server: ReplayServer, fmt: str, provider: str) -> str:
    # Azure's endpoint is the resource root; the manifest adds /openai/deployments/...
    return server.base_url if provider == "azure" else server.url_for(fmt)


@pytest.mark.parametrize(
    ("provider", "model", "base_env", "fmt", "path", "key_env", "header", "query"),
    PROVIDERS,
    ids=[f"{p[0]}-{p[2]}" for p in PROVIDERS],
)
def test_provider_slash_model_over_its_own_variables(
    server: ReplayServer, provider: str, model: str, base_env: str, fmt: str, path: str,
    key_env: str, header: tuple[str, str], query: dict[str, str],
) -> None:
    env = {base_env: base_for(server, fmt, provider), key_env: SECRET}
    script = Script(text="Grüße aus dem Replay 🧪", tool_calls=(), usage=(7, 5))
    server.reset()
    server.push(script)
    with modelwire.SyncRuntime.from_manifests(f"builtin:{provider}", env=env) as rt:
        resp = rt.generate(f"{provider}/{model}", "hi")
    assert (resp.text, resp.finish_reason) == (script.full_text(), "stop")
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (7, 5)
    [request] = server.requests
    prefix = server.base_url if provider == "azure" else server.url_for(fmt)
    assert server.base_url + request.path == prefix + path
    assert request.headers[header[0]] == header[1]
    assert request.query == query
    assert request.json["model"] == model and request.json["stream"] is True


@pytest.mark.parametrize("provider", sorted({p[0] for p in PROVIDERS}))
def test_declared_models_price_what_they_report(provider: str) -> None:
    catalog = modelwire.load_manifests(f"builtin:{provider}", env={})
    for name, model in catalog.models.items():
        assert model.provider == provider, name
        if model.pricing is not None:
            assert model.pricing.input_per_mtok > 0 or "embed" in model.capabilities, name


def test_cli_base_url_reaches_a_bundled_provider(server: ReplayServer, cli: Any) -> None:
    server.reset()
    server.push(Script(text="via --base-url"))
    result = cli(
        "call", "--base-url", server.url_for("openai"), "groq/llama-3.1-8b-instant", "hi",
        env={"GROQ_API_KEY": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "via --base-url"
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.stdout + result.stderr
