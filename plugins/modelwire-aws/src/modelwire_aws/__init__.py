"""AWS for modelwire: the ``aws-eventstream`` parser and the ``sigv4`` auth injector.

The parser reads ``application/vnd.amazon.eventstream`` (Bedrock's
ConverseStream, and every other AWS event stream) sans-IO; the injector signs
requests with botocore's SigV4 signer and the standard credential chain.
botocore is imported only when a request is signed.
"""

from __future__ import annotations

from typing import Any

from modelwire.plugin import hookimpl

from .eventstream import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MEDIA_TYPE,
    EventStreamParser,
    encode_message,
    message_frame,
)
from .signing import sigv4

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MEDIA_TYPE",
    "EventStreamParser",
    "encode_message",
    "message_frame",
    "register_auth_injectors",
    "register_parsers",
    "sigv4",
]


@hookimpl
def register_parsers(register: Any) -> None:
    register("aws-eventstream", EventStreamParser, media_types=[MEDIA_TYPE])


@hookimpl
def register_auth_injectors(register: Any) -> None:
    register("sigv4", sigv4)
