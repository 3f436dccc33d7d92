"""The pipeline's plain-Python code, without Dagster, in one sub-package per stage.

`ingest` (PDFs in, text out), `index` (chunks, vectors, Chroma, search), `publish` (quality gates,
versions, signed VKP packages), `distribution` (the catalog and the school-server pull), `aws` (aws
mode's S3/DynamoDB plumbing and production deployment) and `core` (layout, caches, tables, hashing and
the process-level helpers every stage uses). `nexus_assets.defs` wraps these in assets, checks and
resources; nothing here imports Dagster or `nexus_assets.defs` (nexus_assets_tests/test_layout_of_code.py).
"""
