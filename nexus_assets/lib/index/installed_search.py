"""Search on a school server: the shipped hybrid ranking over a release `nexus vkp pull` installed.

A school server holds `<dest>/<subject>_<grade>/current -> releases/<version>-<id>/` with the
release's Chroma build in `chroma/` (layout: `distribution.vkp_pull`). The school's assistant runs
the SAME ranking as the build side over it (`search.search_build`: dense, BM25 and the glossary's
translations fused with the shipped weights, BM25 built from the collection's own texts), with no
network:

    from nexus_assets.lib.index.installed_search import InstalledSearch

    searcher = InstalledSearch.open("/srv/nexus", "informatika", "kelas_10")
    for hit in searcher.search("Apa itu algoritma Dijkstra?", k=5):
        print(hit.file, hit.page, hit.score, hit.text[:80])

The first search of a release loads it (texts, vectors, BM25: about a second for 3,000 chunks); later
ones take tens of milliseconds (benchmarks/bench_retrieval.py measures them). A searcher keeps the
release it opened: after a pull repoints `current`, open it again to search the new one. The same is
`nexus search --installed DEST --subject S --grade G QUERY` on the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.distribution.vkp_pull import RELEASE_FILE, installed_release, partition_dir
from nexus_assets.lib.index.chroma_store import COMPLETE_MARKER, read_build_info
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.search import CHROMA_DIRNAME, SHIPPED, Hit, Ranking, SearchMode, load_index, search_build


class NoReleaseError(LookupError):
    """Nothing (complete) is installed for the partition under the destination."""


@dataclass
class InstalledSearch:
    """Search one installed release with the shipped ranking."""

    release: Path
    embedder: Embedder | None
    ranking: Ranking = SHIPPED

    @classmethod
    def open(
        cls, dest: Path | str, subject: str, grade: str, embedder: Embedder | None = None, load: bool = True
    ) -> InstalledSearch:
        """The release `current` points at under `dest` for the partition (`embedder`: default, the local
        model the collection was built with). `load` reads it now, so the first search is as fast as the rest."""
        part = Partition(subject, grade)
        release = installed_release(Path(dest), part)
        if release is None:
            raise NoReleaseError(
                f"no release of {part.label} is installed under {partition_dir(Path(dest), part)}: "
                f"pull it first (nexus vkp pull --dest {dest} ...)"
            )
        return cls.from_release(release, embedder, load)

    @classmethod
    def from_release(cls, release: Path | str, embedder: Embedder | None = None, load: bool = True) -> InstalledSearch:
        release = Path(release).resolve()
        build = release / CHROMA_DIRNAME
        if not (build / COMPLETE_MARKER).is_file():
            raise NoReleaseError(f"{release} holds no complete Chroma collection ({CHROMA_DIRNAME}/{COMPLETE_MARKER})")
        searcher = cls(release, embedder if embedder is not None else _local_embedder(read_build_info(build)))
        if load:
            load_index(build)
        return searcher

    @property
    def build_dir(self) -> Path:
        return self.release / CHROMA_DIRNAME

    @property
    def info(self) -> dict[str, Any]:
        """The release's record (`release.json`: partition, version, package) and the collection's model."""
        record = (
            json.loads((self.release / RELEASE_FILE).read_text()) if (self.release / RELEASE_FILE).is_file() else {}
        )
        return {**record, "model_id": read_build_info(self.build_dir).get("model_id")}

    def search(self, query: str, k: int = 5, mode: SearchMode = "hybrid") -> list[Hit]:
        """The best `k` chunks for `query`, ranked as the build side ranks them."""
        return search_build(self.build_dir, query, self.embedder, k, mode, self.ranking)


def _local_embedder(built_with: dict[str, Any]) -> Embedder:
    """The embedder of the collection's model, from the model shipped in the installed wheels (offline)."""
    from nexus_assets.lib.index.bedrock_embedding import query_embedder
    from nexus_assets.settings import Settings

    model_cache = Settings.from_env().model_cache  # NEXUS_MODEL_CACHE, as every command reads it
    return query_embedder(built_with.get("model_id"), built_with.get("dims"), cache_dir=model_cache)
