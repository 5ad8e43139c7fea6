"""Structured output: the answer's text parsed as JSON and checked against the requested schema.

``jsonschema`` is imported here, on first use, never by ``import modelwire``
(it costs tens of milliseconds and most calls do not ask for a schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._errors import InvalidRequestError, OutputSchemaError

__all__ = ["check_schema", "parse_output", "pointer"]

_SHOWN = 200  # characters of an offending value quoted in a message


def pointer(path: Any) -> str:
    """A JSON pointer (RFC 6901) from a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Refuse a schema that is not valid JSON Schema (for its ``$schema`` draft), before any HTTP."""
    import jsonschema.exceptions
    import jsonschema.validators

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as exc:
        raise InvalidRequestError(
            f"response_format: not a valid JSON Schema at {pointer(exc.path) or '/'}: {exc.message[:_SHOWN]}",
            code="BAD_RESPONSE_FORMAT",
        ) from None


def parse_output(text: str, schema: Mapping[str, Any] | None, context: Mapping[str, Any]) -> Any:
    """``text`` as JSON, valid against ``schema`` (when given); else :class:`OutputSchemaError`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise OutputSchemaError(
            "the answer's JSON is nested too deeply to decode", code="OUTPUT_NOT_JSON", text=text, **context
        ) from None
    except json.JSONDecodeError as exc:
        raise OutputSchemaError(
            f"the answer is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="OUTPUT_NOT_JSON", text=text, offset=exc.pos, line=exc.lineno, **context,
        ) from None
    if schema is None:
        return value
    import jsonschema.exceptions
    import jsonschema.validators

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = pointer(error.absolute_path)
        raise OutputSchemaError(
            f"the answer does not match the schema at {where or '/'}: {error.message[:_SHOWN]}",
            text=text, pointer=where, schema_path=pointer(error.absolute_schema_path), **context,
        )
    return value
