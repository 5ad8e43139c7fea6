"""Protocol choice: which parser reads a response (explicit `parser:` > Content-Type > URL rules > default).

An operator's explicit ``parser:`` wins. Otherwise, if detection is allowed,
the response Content-Type is matched against the media types parser plugins
declare (a newly installed plugin joins detection with no core change), then
the manifest's URL rules, then the default parser.
"""

from __future__ import annotations

import logging

from .._errors import InvalidRequestError
from .._manifest.model import Detection
from .._plugins.manager import Plugins

__all__ = ["choose_parser"]

log = logging.getLogger("modelwire")


def choose_parser(
    explicit: str | None,
    protocol: Detection,
    plugins: Plugins,
    *,
    provider: str,
    base_url: str,
    url: str,
    content_type: str,
) -> tuple[str, str]:
    """(parser name, why) for one response; InvalidRequestError when not allowed."""
    if explicit is not None:
        return explicit, "named by the manifest"
    mode = protocol.detect
    if mode == "off":
        raise InvalidRequestError(
            f"protocol missing and auto-detect disabled: provider {provider!r} names no parser "
            f"for {url} (add `parser:` to the operator)",
            code="PROTOCOL_MISSING", provider=provider, endpoint=url,
        )
    if protocol.allow and provider not in protocol.allow and not any(
        base_url.startswith(prefix) for prefix in protocol.allow if "/" in prefix
    ):
        raise InvalidRequestError(
            f"protocol missing and auto-detect is not allowed for provider {provider!r} "
            f"(allowed: {', '.join(protocol.allow)})",
            code="PROTOCOL_MISSING", provider=provider, endpoint=url,
        )
    name: str | None = None
    why = ""
    reg = plugins.parser_for_media_type(content_type) if content_type else None
    if reg is not None:
        name, why = reg.name, f"Content-Type {content_type.split(';')[0].strip()!r} matches {reg.origin()}"
    else:
        for rule in protocol.url_rules:
            if rule.contains in url:
                name, why = rule.parser, f"URL contains {rule.contains!r}"
                break
    if name is None and protocol.default is not None:
        name, why = protocol.default, f"default parser (Content-Type {content_type or 'missing'!r} matched nothing)"
    if name is None:
        raise InvalidRequestError(
            f"no parser for Content-Type {content_type!r} at {url} and no default",
            code="PROTOCOL_UNDETECTED", provider=provider, endpoint=url,
        )
    if mode == "strict":
        raise InvalidRequestError(
            f"strict protocol mode: provider {provider!r} names no parser for {url}; "
            f"detection would pick {name!r} ({why}). Add `parser: {name}` to the operator",
            code="PROTOCOL_DETECTION_FORBIDDEN", provider=provider, endpoint=url,
        )
    if mode == "quiet":
        log.debug("provider %r: parser %r chosen for %s: %s", provider, name, url, why)
    else:  # a guess about someone else's bytes: say so (seed 001), unless told to be quiet
        log.warning(
            "modelwire: provider %r: parser %r chosen for %s: %s (name it with `parser:`, or `protocol: {detect: quiet}`)",
            provider, name, url, why,
        )
    return name, why
