"""The trivial job of bench_scale_out.py: one partitioned asset whose step only waits.

A run of it costs what the launch path costs (queue, broker, a worker loading the code and writing
its events to Postgres) plus the wait, so the throughput ratio between worker counts measures the
run-level distribution itself, not the CPU. Loaded by the benchmark's daemon and by every celery
worker (`benchmarks.scale_out_defs` on PYTHONPATH).
"""

import os
import time

import dagster as dg

PARTITIONS = tuple(f"p{i:02d}" for i in range(int(os.environ.get("BENCH_TRIVIAL_PARTITIONS", "12"))))
WAIT_S = float(os.environ.get("BENCH_TRIVIAL_WAIT_S", "8"))

trivial_partitions_def = dg.StaticPartitionsDefinition(list(PARTITIONS))


@dg.asset(partitions_def=trivial_partitions_def)
def trivial_wait(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Wait WAIT_S seconds (an I/O-bound step: what a worker does with no CPU of its own to spend)."""
    time.sleep(WAIT_S)
    return dg.MaterializeResult(metadata={"partition": context.partition_key, "host_pid": os.getpid()})


# One process per run, as the project's own job (a celery pool process may not fork step processes).
defs = dg.Definitions(assets=[trivial_wait], executor=dg.in_process_executor)
