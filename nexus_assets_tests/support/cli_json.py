"""The `--json` documents of `nexus`: the keys docs/cli.md documents for each, and a checker.

Shared by test_cli_interface.py and test_cli.py.
"""

from __future__ import annotations

import json

# The keys docs/cli.md documents for each document (every document also has `schema` and `ok`).
SCHEMAS: dict[str, set[str]] = {
    "nexus.sample-data/1": {"raw_root", "files", "broken"},
    "nexus.build/1": {"data_dir", "dagster_home", "partitions", "skipped", "catalog_refreshed"},
    "nexus.search/1": {"query", "partition", "k", "model_id", "hits"},
    "nexus.report/1": {"partitions", "blocking_failures", "not_built"},
    "nexus.jobs/1": {"days", "jobs", "summary"},
    "nexus.vkp.verify/1": {"trusted_key", "packages"},
    "nexus.vkp.pull/1": {"catalog", "dest", "trusted_key", "partitions"},
    "nexus.vkp.catalog/1": {"location", "partitions", "signed_by", "key_id", "expires"},
    "nexus.keys.generate/1": {"private_key", "public_key", "key_id"},
    "nexus.cache.prune/1": {"local", "bucket"},
    "nexus.aws.bootstrap/1": {"resources"},
    "nexus.deploy.render-instance/1": {"instance"},
    "nexus.deploy.apply-pools/1": {"pools"},
}
ERROR_KEYS = {"schema", "ok", "error", "exit_code"}


def check_document(text: str, schema: str) -> dict:
    """Parse a --json stdout and check it carries its schema's documented keys."""
    doc = json.loads(text)
    assert doc["schema"] == schema
    assert {"schema", "ok"} | SCHEMAS[schema] <= set(doc), set(doc) ^ SCHEMAS[schema]
    return doc
