"""Configuration the commands read, shipped in the package (so a wheel installed anywhere has it).

`dagster.yaml` (the local instance profile: telemetry off, pools, run limit) and `deploy/` (the
production profile, run launchers, pool limits) are links to the checkout's own files, their one home;
a wheel or sdist carries copies. Read them through `nexus_assets.instance.profile`.
"""
