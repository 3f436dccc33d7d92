"""Celery settings of the run workers (`python -m celery -A dagster_celery.app worker`).

dagster_celery's worker app imports a module of this name when it is on PYTHONPATH; the launcher in
deploy/launchers/celery.yaml reads the same two variables, so the daemon and every worker agree on
the broker (RabbitMQ) and the result backend (Redis; rpc:// cannot answer the run monitor).
"""

import os

broker_url = os.environ.get("DAGSTER_CELERY_BROKER_URL", "pyamqp://guest@localhost:5672//")
result_backend = os.environ.get("DAGSTER_CELERY_BACKEND_URL", "redis://localhost:6379/0")
# One run at a time per worker process, nothing reserved ahead (see deploy/launchers/celery.yaml).
worker_prefetch_multiplier = 1
task_acks_late = False
broker_connection_retry_on_startup = True
# A run's task state (STARTED, then SUCCESS or FAILURE) is what the run monitor reads.
task_track_started = True
result_expires = 7 * 24 * 3600
