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


def validate(doc: dict[str, Any], schema: str) -> None:
    """Fail unless `doc` is valid under the published JSON Schema `schema` (`error` for error documents)."""
    jsonschema.validate(doc, published()[schema])


def check_document(text: str, schema: str) -> dict:
    """Parse a --json stdout and validate it against its schema as published in docs/cli-schemas.json."""
    doc = json.loads(text)
    assert doc["schema"] == schema
    validate(doc, schema)
    return doc
