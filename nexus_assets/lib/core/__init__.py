"""Core: what every stage uses; it names no stage of its own.

Where every input and output lives (`layout`), the tables passed between steps and their column
docs (`tables`, `table_schemas`), content-addressed caches (`caches`), the one home of sha256 digests
(`hashing`), parquet reads without Arrow's thread pools (`parquet_io`), and the process-level helpers:
per-partition file locks (`partition_lock`), process identity (`process_identity`), shared SQLite in
WAL mode (`sqlite_wal`), the job history (`job_tracking`), build fingerprints (`build_fingerprint`),
crash-test fault points (`fault_points`) and what the CPU can do (`cpu_info`).
"""
