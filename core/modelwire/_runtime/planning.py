"""Planning: model name -> provider -> operator endpoint, capabilities checked, and the fallback chain.

Pure: no I/O. Everything here fails before any HTTP is sent.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import attrs

from .._errors import InvalidRequestError, NotFoundError
from .._events import Fallback
from .._manifest.catalog import Catalog
from .._manifest.model import Model, Operator, Provider

__all__ = ["CallPlan", "chain_for", "missing_capabilities", "plan", "resolve_model"]


@attrs.frozen
class CallPlan:
    """Where one call goes."""

    model: str
    model_id: str
    spec: Model
    provider_name: str
    provider: Provider
    operator_name: str
    operator: Operator
    url: str

    def context(self) -> dict[str, Any]:
        """The model / provider / endpoint every error of this call carries."""
        return {"model": self.model, "provider": self.provider_name, "endpoint": self.url}


def resolve_model(catalog: Catalog, model: str) -> tuple[Model, str]:
    """A declared model, or ``provider/model`` of a known provider."""
    spec = catalog.models.get(model)
    if spec is not None:
        return spec, spec.id or model
    provider, sep, model_id = model.partition("/")
    if sep and provider in catalog.providers and model_id:
        prov = catalog.providers[provider]
        return Model(provider=provider, id=model_id, capabilities=list(prov.default_capabilities)), model_id
    known = sorted(catalog.models)
    msg = f"unknown model {model!r}"
    close = difflib.get_close_matches(model, known, n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    if sep and provider not in catalog.providers:
        msg += f"; unknown provider {provider!r}, known: {', '.join(sorted(catalog.providers)) or 'none'}"
    else:
        msg += f"; declared models: {', '.join(known) or 'none'}"
        msg += "; any model of a known provider works as provider/model"
    raise NotFoundError(msg, code="MODEL_NOT_FOUND", model=model)


def plan(catalog: Catalog, model: str, operator: str, needs: Iterable[str] = ()) -> CallPlan:
    """Resolve a call and check capabilities, before any HTTP."""
    spec, model_id = resolve_model(catalog, model)
    provider = catalog.providers[spec.provider]
    op = provider.operators.get(operator)
    if op is None:
        raise NotFoundError(
            f"provider {spec.provider!r} has no {operator!r} operator; it has: "
            f"{', '.join(sorted(provider.operators)) or 'none'}",
            code="OPERATOR_NOT_FOUND", model=model, provider=spec.provider,
        )
    missing = missing_capabilities(catalog, model, needs)
    if missing:
        raise InvalidRequestError(
            f"model {model!r} lacks capability {', '.join(missing)} "
            f"(it has: {', '.join(spec.capabilities) or 'none'})",
            code="CAPABILITY_MISSING", model=model, provider=spec.provider,
        )
    path = op.path.replace("{model}", quote(model_id, safe=""))
    url = provider.base_url.rstrip("/") + "/" + path.lstrip("/")
    return CallPlan(model, model_id, spec, spec.provider, provider, operator, op, url)


def missing_capabilities(catalog: Catalog, model: str, needs: Iterable[str]) -> list[str]:
    """The capabilities in ``needs`` that ``model`` does not declare.

    ``stream`` is needed only where the provider's ``generate`` operator
    streams: a provider whose answer is one body (``stream: false``) serves
    a model without it.
    """
    spec, _ = resolve_model(catalog, model)
    return [n for n in needs if n not in spec.capabilities and not (n == "stream" and not _streams(catalog, spec))]


def _streams(catalog: Catalog, spec: Model) -> bool:
    op = catalog.providers[spec.provider].operators.get("generate")
    return op is None or op.stream


def chain_for(catalog: Catalog, model: str, needs: list[str]) -> tuple[list[str], Fallback | None]:
    """The model and its fallback chain, starting at the first that can serve ``needs``.

    Capability-aware planning: a model lacking a capability is skipped for
    the first one in its chain that has it (said with a :class:`Fallback`
    event); none at all is an invalid_request before any HTTP.
    """
    spec, _ = resolve_model(catalog, model)
    chain = [model, *spec.fallback]
    usable = [m for m in chain if not missing_capabilities(catalog, m, needs)]
    if not usable:
        missing = missing_capabilities(catalog, model, needs)
        raise InvalidRequestError(
            f"no model can serve this request: capability {', '.join(missing)} is missing "
            f"in {', '.join(chain)}",
            code="CAPABILITY_MISSING", model=model, provider=spec.provider,
        )
    if usable[0] != model:
        missing = missing_capabilities(catalog, model, needs)
        return usable, Fallback(model, usable[0], f"capability {', '.join(missing)} missing")
    return usable, None
