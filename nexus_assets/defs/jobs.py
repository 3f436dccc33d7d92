"""Jobs over the curriculum assets."""

import dagster as dg

from nexus_assets.defs.assets import curriculum_assets

# Partitioned by subject × grade: Dagster infers it from the selected assets (all share one definition).
curriculum_build_job = dg.define_asset_job(
    "curriculum_build_job",
    selection=dg.AssetSelection.assets(*curriculum_assets),
    description="Build one subject × grade partition from its PDFs down to a published VKP.",
)
