import os
import threading
from pathlib import Path

import pytest

from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.distribution.vkp_catalog import LocalCatalog, with_release

PART = Partition("informatika", "kelas_10")


def _release(version: str) -> dict:
    return {
        "version": version,
        "content_hash": version,
        "embedding": {"model_id": "m", "dims": 8},
        "created_at": "",
        "full": {"name": PART.vkp_name(version), "size": 1, "sha256": "x", "signature": None},
        "delta": None,
    }


def _race(catalog, versions: list[str]) -> None:
    barrier = threading.Barrier(len(versions))

    def put(version: str) -> None:
        entry, _ = with_release(None, PART, _release(version))
        barrier.wait()
        catalog.put(PART, entry)

    threads = [threading.Thread(target=put, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_local_pointer_never_moves_backwards(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path / "vkp" / "catalog.json")
    newer, _ = with_release(None, PART, _release("1.0.10"))
    older, _ = with_release(None, PART, _release("1.0.9"))
    assert catalog.put(PART, newer)
    assert not catalog.put(PART, older), "1.0.9 < 1.0.10 numerically, not as text"
    assert catalog.get(PART)["latest"] == "1.0.10"
    _race(catalog, ["1.1.0", "1.0.11", "1.0.12", "1.0.13"])
    assert catalog.get(PART)["latest"] == "1.1.0"


def test_retention_keeps_the_newest_versions() -> None:
    entry = None
    for version in ["1.0.0", "1.0.1", "1.1.0", "1.1.1"]:
        entry, dropped = with_release(entry, PART, _release(version), keep=2)
    assert [v["version"] for v in entry["versions"]] == ["1.1.1", "1.1.0"] and dropped == ["1.0.1"]
    with pytest.raises(ValueError, match="at least 1"):
        with_release(entry, PART, _release("1.2.0"), keep=0)


@pytest.mark.slow
def test_concurrent_dynamodb_updates_never_move_the_pointer_backwards(aws_env: dict) -> None:
    import json

    from nexus_assets.lib.aws.aws_bootstrap import bootstrap
    from nexus_assets.lib.aws.aws_config import AwsSettings
    from nexus_assets.lib.distribution.vkp_catalog import CATALOG_KEY, DynamoCatalog

    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    catalog = DynamoCatalog(settings.client("dynamodb"), settings.records_table, settings.object_store())
    for round_ in range(3):
        versions = [f"1.{round_}.{n}" for n in range(5)]
        _race(catalog, list(reversed(versions)))
        assert catalog.get(PART)["latest"] == versions[-1]
    stale, _ = with_release(None, PART, _release("1.0.4"))
    assert not catalog.put(PART, stale)
    document = json.loads(settings.object_store().get_bytes(CATALOG_KEY))
    assert document["partitions"]["informatika/kelas_10"]["latest"] == "1.2.4"
