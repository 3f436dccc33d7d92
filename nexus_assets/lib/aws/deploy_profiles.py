"""Production instance profiles rendered from the files under `deploy/`.

`deploy/dagster.yaml` is the one production profile (Postgres storage, queued runs, monitoring,
retries, pools); a run launcher block (`deploy/launchers/<name>.yaml`) is merged into it for ECS,
celery worker hosts or Docker containers, and on Kubernetes Dagster's Helm chart writes the
instance from `deploy/helm/values.yaml`.
`k8s_instance_config` reproduces what the chart (1.13) writes for the keys this project uses, so a
test can validate it with Dagster's config schema without a cluster. Per-pool limits live in
`deploy/pools.yaml` because Dagster keeps them in its database, not in dagster.yaml.
"""

from __future__ import annotations

import re
from copy import deepcopy
from pathlib import Path
from typing import Any

import yaml

DEPLOY_DIRNAME = "deploy"
# default: DefaultRunLauncher (a subprocess per run, docker-compose); ecs: a Fargate task per run;
# celery: a celery task per run on worker hosts (RabbitMQ broker, Redis results); docker: a container per run.
LAUNCHERS = ("default", "ecs", "celery", "docker")


class DeployConfigError(ValueError):
    """A deploy file that is missing or does not hold what it should."""


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DeployConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise DeployConfigError(f"{path}: expected a mapping at the top level")
    return data


def render_instance(
    deploy_dir: Path,
    launcher: str = "default",
    max_concurrent_runs: int | None = None,
) -> dict[str, Any]:
    """The production dagster.yaml as a dict, with the chosen run launcher (and run limit, for tests)."""
    if launcher not in LAUNCHERS:
        raise DeployConfigError(f"unknown launcher {launcher!r}: use one of {', '.join(LAUNCHERS)}")
    config = _load(deploy_dir / "dagster.yaml")
    if launcher != "default":
        block = _load(deploy_dir / "launchers" / f"{launcher}.yaml")
        if set(block) != {"run_launcher"}:
            raise DeployConfigError(f"{deploy_dir / 'launchers' / launcher}.yaml: must hold only run_launcher")
        config.update(block)
    if max_concurrent_runs is not None:
        config.setdefault("concurrency", {}).setdefault("runs", {})["max_concurrent_runs"] = max_concurrent_runs
    return config


def instance_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def pool_limits(deploy_dir: Path) -> dict[str, int]:
    """{pool: limit} from deploy/pools.yaml (limits are whole numbers >= 0)."""
    path = deploy_dir / "pools.yaml"
    limits = _load(path)
    bad = {k: v for k, v in limits.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0}
    if bad:
        raise DeployConfigError(f"{path}: pool limits must be whole numbers >= 0, got {bad}")
    return {str(k): int(v) for k, v in limits.items()}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _k8s_run_launcher(values: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The run_launcher block the chart's `dagsterYaml.runLauncher.k8s` template writes."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config: dict[str, Any] = {
        "load_incluster_config": k8s.get("loadInclusterConfig", True),
        "job_namespace": k8s.get("jobNamespace") or namespace,
        "image_pull_policy": k8s.get("imagePullPolicy", "Always"),
        "service_account_name": values.get("serviceAccount", {}).get("name") or "dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + [m["name"] for m in k8s.get("envConfigMaps", []) if "name" in m],
    }
    if k8s.get("kubeconfigFile"):
        config["kubeconfig_file"] = k8s["kubeconfigFile"]
    if values.get("imagePullSecrets"):
        config["image_pull_secrets"] = deepcopy(values["imagePullSecrets"])
    if "image" in k8s:
        image = k8s["image"]
        config["job_image"] = f"{image['repository']}:{image['tag']}"
    if k8s.get("envSecrets"):
        config["env_secrets"] = [s["name"] for s in k8s["envSecrets"] if "name" in s]
    for key, snake in (
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("securityContext", "security_context"),
    ):
        if k8s.get(key):
            config[snake] = deepcopy(k8s[key])
    if k8s.get("runK8sConfig"):  # the chart writes its sections (podSpecConfig, ...) in snake case
        config["run_k8s_config"] = {_snake(k): deepcopy(v) for k, v in k8s["runK8sConfig"].items()}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def k8s_instance_config(values: dict[str, Any], namespace: str = "nexus") -> dict[str, Any]:
    """The dagster.yaml the Helm chart writes from `values` (the parts this project sets)."""
    pg = values["postgresql"]
    daemon = values.get("dagsterDaemon", {})
    queued = daemon.get("runCoordinator", {}).get("config", {}).get("queuedRunCoordinator", {})
    monitoring = daemon.get("runMonitoring", {})
    retries = daemon.get("runRetries", {})
    config: dict[str, Any] = {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": pg["postgresqlUsername"],
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "hostname": pg["postgresqlHost"],
                    "db_name": pg["postgresqlDatabase"],
                    "port": pg.get("service", {}).get("port", 5432),
                    "scheme": pg.get("postgresqlScheme", "postgresql"),
                }
            }
        },
        "run_launcher": _k8s_run_launcher(values, namespace),
        "run_coordinator": {
            "module": "dagster",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": queued.get("maxConcurrentRuns", -1),
                "tag_concurrency_limits": deepcopy(queued.get("tagConcurrencyLimits", [])),
            },
        },
        "run_monitoring": {
            "enabled": monitoring.get("enabled", True),
            "start_timeout_seconds": monitoring.get("startTimeoutSeconds", 300),
            "poll_interval_seconds": monitoring.get("pollIntervalSeconds", 120),
        },
        "run_retries": {
            "enabled": retries.get("enabled", False),
            "max_retries": retries.get("maxRetries", 0),
            "retry_on_asset_or_op_failure": retries.get("retryOnAssetOrOpFailure", True),
        },
        "telemetry": {"enabled": False},
    }
    return config


def load_values(path: Path) -> dict[str, Any]:
    return _load(path)
