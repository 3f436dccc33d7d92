"""Publish: from a partition's build to a versioned, signed knowledge package (VKP).

The quality gates a build must pass (`quality`, and `quality_report` for `nexus report`), the release
rules that pick a version (`versioning`), the VKP format and its delta packages (`vkp`, `vkp_delta`),
Ed25519 signatures (`signing`), the publication itself with retention (`publishing`), and the data
engineer's per-partition status table (`curriculum_catalog`).
"""
