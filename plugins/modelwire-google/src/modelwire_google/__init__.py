"""Google Cloud for modelwire: the ``google`` auth injector.

``Authorization: Bearer <token>`` where the token is, first found wins:

1. the variable named by ``auth.env`` (default ``VERTEX_ACCESS_TOKEN``) in the
   runtime's environment: a static token, for local servers, tests and
   ``gcloud auth print-access-token``;
2. Application Default Credentials (``google.auth.default`` with the
   ``cloud-platform`` scope: ``GOOGLE_APPLICATION_CREDENTIALS``, the gcloud
   user file, the metadata server), resolved once per process and refreshed
   when expired.

Resolving and refreshing ADC is blocking HTTP: it runs in the calling thread
under a lock, about once an hour (tokens live an hour); a static token never
blocks. A URL holding an empty project (``/projects//``, from an unset
``VERTEX_PROJECT``) gets the ADC project, or fails naming the variable.
Tokens never appear in an error: errors name variables and exception types.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from modelwire.plugin import AuthError, OutgoingRequest, hookimpl

__all__ = ["SCOPES", "TOKEN_ENV", "google", "register_auth_injectors", "reset"]

#: The OAuth scope Vertex AI needs.
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: The variable holding a static token when ``auth.env`` names none.
TOKEN_ENV = "VERTEX_ACCESS_TOKEN"

_lock = threading.Lock()
_adc: list[Any] = []  # [(credentials, project)] once resolved


def reset() -> None:
    """Forget the cached Application Default Credentials (tests, credential rotation)."""
    with _lock:
        _adc.clear()


def _adc_token(request: OutgoingRequest) -> tuple[str, str | None]:
    """A valid ADC access token and the ADC project, refreshing when needed."""
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests

    with _lock:
        try:
            if not _adc:
                _adc.append(google.auth.default(scopes=list(SCOPES)))
            credentials, project = _adc[0]
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.DefaultCredentialsError:
            raise AuthError(
                f"no Google credentials: set {TOKEN_ENV} to an access token, or set up Application "
                "Default Credentials (GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth "
                "application-default login`)",
                code="GOOGLE_CREDENTIALS_MISSING", variable=TOKEN_ENV,
                provider=request.provider, model=request.model,
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise AuthError(
                f"refreshing the Google Application Default Credentials failed ({type(exc).__name__})",
                code="GOOGLE_REFRESH_FAILED", provider=request.provider, model=request.model,
            ) from None
        return str(credentials.token), project


def google(request: OutgoingRequest, auth: Any) -> None:
    """``Authorization: Bearer <token>`` from a static token or ADC."""
    env = request.env if request.env is not None else os.environ
    name = getattr(auth, "env", None) or TOKEN_ENV
    token = env.get(name)
    project: str | None = None
    if not token:
        token, project = _adc_token(request)
    if "/projects//" in request.url:
        if not project:
            raise AuthError(
                "no Google Cloud project: set VERTEX_PROJECT (or GOOGLE_CLOUD_PROJECT)",
                code="GOOGLE_PROJECT_MISSING", variable="VERTEX_PROJECT",
                provider=request.provider, model=request.model,
            )
        request.url = request.url.replace("/projects//", f"/projects/{project}/", 1)
    request.headers["Authorization"] = f"Bearer {token}"


@hookimpl
def register_auth_injectors(register: Any) -> None:
    register("google", google)
