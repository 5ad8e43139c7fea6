"""The ``sigv4`` auth injector: AWS Signature Version 4 with botocore's signer.

Credentials, first found wins:

1. ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``)
   in the runtime's environment (``Runtime(env=...)``, else ``os.environ``);
2. botocore's standard chain (``botocore.session.Session().get_credentials()``:
   environment, ``AWS_PROFILE`` and the shared files, SSO, container and
   instance roles), resolved once per process; refreshable credentials
   refresh themselves.

The region is ``auth.options.region``, else ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, else the botocore session's; the service is
``auth.options.service``. The body signed is :meth:`OutgoingRequest.body`,
the exact bytes transport sends. Keys never appear in an error or a repr:
errors name the variables only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from modelwire.plugin import AuthError, OutgoingRequest, PluginError

__all__ = ["sigv4"]

_lock = threading.Lock()
_chain: list[Any] = []  # [credentials or None], once resolved


def _options(auth: Any) -> Mapping[str, Any]:
    options = getattr(auth, "options", None)
    return options if isinstance(options, Mapping) else {}


def _botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.session
    except ImportError as exc:  # pragma: no cover - botocore is a dependency
        raise PluginError(
            "the sigv4 auth injector needs botocore: pip install modelwire-aws",
            code="PLUGIN_DEPENDENCY_MISSING",
        ) from exc
    return botocore


def _chain_credentials() -> Any:
    """botocore's credential chain, resolved once per process."""
    with _lock:
        if not _chain:
            _chain.append(_botocore().session.Session().get_credentials())
        return _chain[0]


def _credentials(request: OutgoingRequest) -> Any:
    env = request.env if request.env is not None else os.environ
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return _botocore().credentials.Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    creds = _chain_credentials()
    if creds is None:
        raise AuthError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
            "or configure the shared credentials file or an instance role",
            code="AWS_CREDENTIALS_MISSING", provider=request.provider, model=request.model,
            variable="AWS_ACCESS_KEY_ID",
        )
    return creds.get_frozen_credentials()


def _region(request: OutgoingRequest, options: Mapping[str, Any]) -> str:
    env = request.env if request.env is not None else os.environ
    region = options.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        region = _botocore().session.Session().get_config_variable("region")
    if not region:
        raise AuthError(
            "no AWS region: set AWS_REGION (or auth.options.region in the manifest)",
            code="AWS_REGION_MISSING", provider=request.provider, model=request.model,
            variable="AWS_REGION",
        )
    return str(region)


def sigv4(request: OutgoingRequest, auth: Any) -> None:
    """Sign the request: ``Authorization``, ``X-Amz-Date`` (+ ``X-Amz-Security-Token``)."""
    options = _options(auth)
    service = options.get("service")
    if not service:
        raise AuthError(
            "the sigv4 auth injector needs auth.options.service (the signing name, e.g. bedrock)",
            code="AUTH_NOT_CONFIGURED", provider=request.provider, model=request.model,
        )
    region = _region(request, options)
    creds = _credentials(request)
    botocore = _botocore()
    url = request.url
    if request.params:
        url += ("&" if "?" in url else "?") + urlencode(request.params)
    aws = botocore.awsrequest.AWSRequest(
        method=request.method, url=url, data=request.body() or b"", headers=dict(request.headers)
    )
    botocore.auth.SigV4Auth(creds, str(service), region).add_auth(aws)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        value = aws.headers.get(name)
        if value is not None:
            request.headers[name] = value
