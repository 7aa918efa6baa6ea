"""Types for the JSON shapes of the engine's records (``as_json``), declared once and reused by
the edges: the HTTP API's response models are these TypedDicts, so its OpenAPI document
describes exactly what ``as_json`` returns."""

from __future__ import annotations

from typing import Annotated

from pydantic import WithJsonSchema

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""An aware instant as ISO 8601 text (``datetime.isoformat()``)."""
