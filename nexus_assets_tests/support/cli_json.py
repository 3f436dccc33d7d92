"""The `--json` documents of `nexus`: their keys and JSON Schema (from nexus_assets/cli_schemas.py, published
as docs/cli-schemas.json), and a checker that validates a document against the published schema.

Shared by test_cli_interface.py and test_cli.py.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from nexus_assets.cli_schemas import MODELS, ErrorDocument, schema_name
from nexus_assets_tests.support import PROJECT_ROOT

PUBLISHED = PROJECT_ROOT / "docs" / "cli-schemas.json"
# The keys of each document besides `schema` and `ok` (the typed models' required keys).
SCHEMAS: dict[str, set[str]] = {
    schema_name(command): set(model.__annotations__) - {"schema", "ok"} for command, model in MODELS.items()
}
ERROR_KEYS = set(ErrorDocument.__annotations__)


@cache
def published() -> dict[str, Any]:
    return json.loads(PUBLISHED.read_text())["documents"]


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that lists its properties.

    The published schemas stay open (new fields may appear without a version change, docs/cli.md), but a
    document `nexus` itself writes must hold only the fields its typed model declares: a key emitted
    beside the model (as `release` once was in `nexus.search/1`) fails here."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


# JSON Schema's "number" admits 1 and 0; a field the model types `float` must be written as one (0.0, not
# 0), since a reader in a typed language would otherwise see the type change with the value.
_FLOATS_ARE_FLOATS = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "number", lambda _checker, value: isinstance(value, float)
)
StrictValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_FLOATS_ARE_FLOATS)


def validate(doc: dict[str, Any], schema: str) -> None:
    """Fail unless `doc` is valid under the published JSON Schema `schema` (`error` for error documents),
    holds no field the typed model does not declare, and writes every `float` field as a float."""
    jsonschema.validate(doc, published()[schema])
    StrictValidator(closed(published()[schema])).validate(doc)


def check_document(text: str, schema: str) -> dict:
    """Parse a --json stdout and validate it against its schema as published in docs/cli-schemas.json."""
    doc = json.loads(text)
    assert doc["schema"] == schema
    validate(doc, schema)
    return doc
