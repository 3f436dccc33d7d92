"""The Dagster code location: every asset, job and resource, declared in one place.

Runs use the in-process executor: the six steps of a partition form a chain, so separate step
processes would add start-up time (each re-imports torch and reloads the model) and no parallelism.
"""

import dagster as dg

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.io_managers import LocalPartitionedIOManager
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.resources import DataDirResource, EmbedderResource

defs = dg.Definitions(
    assets=curriculum_assets,
    jobs=[curriculum_build_job],
    resources={
        "data_dir": DataDirResource(),
        "embedder": EmbedderResource(),
        "io_manager": LocalPartitionedIOManager(),
    },
    executor=dg.in_process_executor,
)
