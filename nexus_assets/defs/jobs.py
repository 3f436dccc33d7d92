"""Jobs over the curriculum assets."""

import dagster as dg

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.partitions import curriculum_partitions_def

curriculum_build_job = dg.define_asset_job(
    "curriculum_build_job",
    selection=dg.AssetSelection.assets(*curriculum_assets),
    partitions_def=curriculum_partitions_def,
    description="Build one subject × grade partition from its PDFs down to a published VKP.",
)
