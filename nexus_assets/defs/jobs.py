"""Jobs over the curriculum assets."""

import dagster as dg

from nexus_assets.defs.assets import curriculum_assets

# Partitioned by folder (`<subject>/<grade>`): Dagster infers it from the selected assets (all share one
# definition). Runs the UI starts from the asset graph are Dagster's implicit `__ASSET_JOB`; the job
# table, `nexus jobs` and the logs name every build of these assets by this job's name (build.py).
curriculum_build_job = dg.define_asset_job(
    "curriculum_build_job",
    selection=dg.AssetSelection.assets(*curriculum_assets),
    description="Build one partition (a raw-curriculum/<subject>/<grade>/ folder) from its PDFs down to a "
    "published VKP.",
)
