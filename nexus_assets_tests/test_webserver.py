"""The UI path: `dagster-webserver` on the repo's workspace.yaml, checked and driven through its GraphQL API.

One module-scoped setup builds two partitions with the CLI (which registers their folders as
partitions), starts the webserver on a free loopback port against the same instance and data directory,
and the tests then read the assets, partitions and materializations the UI shows and launch one more
partition the way the launchpad does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_assets_tests.support.webserver import (
    ASSETS,
    JOB,
    LOCATION,
    PROJECT_ROOT,
    REPOSITORY,
    Webserver,
    free_port,
    partition_key,
    start_process,
    stop_process_group,
    wait_until_loaded,
    webserver_command,
)

pytestmark = pytest.mark.slow

# (subject, grade) built with the CLI before the webserver is queried: each registers its folder.
BUILT = (("informatika", "kelas_10"), ("matematika", "kelas_11"))
# A folder never built: registered like the UI's "Add partition" dialog, then launched like the launchpad.
LAUNCHED = ("informatika", "kelas_11")
# Instance settings the test adds to the repo's dagster.yaml: runs launch at once, without dagster-daemon.
IMMEDIATE_RUN_COORDINATOR = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 180


def _write_instance_config(home: Path) -> None:
    """The repo's dagster.yaml plus the immediate run coordinator; fails unless Dagster accepts it."""
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    repo_config = (PROJECT_ROOT / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(repo_config.rstrip("\n") + "\n" + IMMEDIATE_RUN_COORDINATOR)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # DefaultRunCoordinator is an alias of SyncInMemoryRunCoordinator: anything but the queued one.
        assert not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.get_settings("concurrency")["runs"]["max_concurrent_runs"] == 2


def _build_partitions(env: dict[str, str]) -> None:
    """`nexus build --subject S --grade G` for every BUILT partition, in one subprocess."""
    calls = "; ".join(f"rc = rc or main(['build', '--subject', {s!r}, '--grade', {g!r}])" for s, g in BUILT)
    script = f"import sys\nfrom nexus_assets.cli import main\nrc = 0\n{calls}\nsys.exit(rc)\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"nexus build failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory, sample_raw_root: Path) -> Iterator[Webserver]:
    """Two partitions built by the CLI, and a webserver on the repo's workspace.yaml over the same instance."""
    root = tmp_path_factory.mktemp("webserver")
    data_dir = root / "data"
    shutil.copytree(sample_raw_root, data_dir / "raw-curriculum")
    home = root / "dagster_home"
    _write_instance_config(home)
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}

    port = free_port()
    log_path = root / "webserver.log"
    # Started before the build so the code location loads while the partitions build; dynamic
    # partitions and materializations are read from the instance at query time.
    process = start_process(webserver_command(port), env, log_path)
    server = Webserver(f"http://127.0.0.1:{port}", process, log_path, data_dir, home)
    try:
        _build_partitions(env)
        wait_until_loaded(server)
        yield server
    finally:
        stop_process_group(process)


def test_six_partitioned_assets_with_built_partitions(webserver: Webserver) -> None:
    """The asset graph shows the six assets, each with one partition per built folder, keyed `<subject>/<grade>`
    (no subject × grade cross product: `informatika/kelas_11` has no folder built, so no partition)."""
    data = webserver.gql(
        "{ assetNodes { assetKey { path } groupName isPartitioned partitionKeysByDimension { name partitionKeys } } }"
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert sorted(nodes) == sorted([*ASSETS, "curriculum_catalog"])
    assert {n["groupName"] for n in nodes.values()} == {"ingest", "index", "publish"}
    assert not nodes.pop("curriculum_catalog")["isPartitioned"], "the catalog has one row per partition"
    for name, node in nodes.items():
        assert node["isPartitioned"], name
        [dimension] = node["partitionKeysByDimension"]
        assert set(dimension["partitionKeys"]) == {partition_key(s, g) for s, g in BUILT}, name


@pytest.mark.parametrize(("subject", "grade"), BUILT)
def test_latest_materializations_of_built_partitions(webserver: Webserver, subject: str, grade: str) -> None:
    """Every asset has a latest materialization for each partition the CLI built, with its metadata."""
    key = partition_key(subject, grade)
    run_ids = set()
    for asset in ASSETS:
        data = webserver.gql(
            "query($path: [String!]!, $key: String!) { assetOrError(assetKey: {path: $path}) {"
            " __typename ... on Asset { assetMaterializations(limit: 1, partitions: [$key]) {"
            " partition runId metadataEntries { label } } } } }",
            {"path": [asset], "key": key},
        )
        materializations = data["assetOrError"].get("assetMaterializations")
        assert materializations, f"{asset} has no materialization for {key}"
        latest = materializations[0]
        assert latest["partition"] == key
        labels = {m["label"] for m in latest["metadataEntries"]}
        if asset == "vkp_package":
            assert {"version", "vkp_path"} <= labels
        if asset == "pdf_text":
            assert "files" in labels
        run_ids.add(latest["runId"])
    assert len(run_ids) == 1, "one CLI run materializes all six assets of a partition"


def test_launchpad_launches_one_partition(webserver: Webserver) -> None:
    """Launch an unbuilt partition like the UI's launchpad: its partition tags, then launchRun; it publishes."""
    subject, grade = LAUNCHED
    key = partition_key(subject, grade)
    repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    added = webserver.gql(
        "mutation($repo: RepositorySelector!, $key: String!) {"
        ' addDynamicPartition(repositorySelector: $repo, partitionsDefName: "curriculum", partitionKey: $key)'
        " { __typename ... on PythonError { message } ... on UnauthorizedError { message } } }",
        {"repo": repo, "key": key},
    )["addDynamicPartition"]
    assert added["__typename"] == "AddDynamicPartitionSuccess", added
    asset_keys = [{"path": [a]} for a in ASSETS]
    data = webserver.gql(
        "query($job: String!, $repo: String!, $location: String!, $key: String!, $assets: [AssetKeyInput!]) {"
        " pipelineOrError(params: {pipelineName: $job, repositoryName: $repo, repositoryLocationName: $location}) {"
        " __typename ... on Pipeline { partition(partitionName: $key, selectedAssetKeys: $assets) {"
        " tagsOrError { __typename ... on PartitionTags { results { key value } } ... on PythonError { message } }"
        " } } ... on PythonError { message } } }",
        {"job": JOB, "repo": REPOSITORY, "location": LOCATION, "key": key, "assets": asset_keys},
    )
    job = data["pipelineOrError"]
    assert job["__typename"] == "Pipeline", job
    assert job["partition"], f"partition {key} is not registered"
    tags_or_error = job["partition"]["tagsOrError"]
    assert tags_or_error["__typename"] == "PartitionTags", tags_or_error
    tags = {t["key"]: t["value"] for t in tags_or_error["results"]}
    assert tags["dagster/partition"] == key

    launched = webserver.gql(
        "mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename"
        " ... on LaunchRunSuccess { run { runId status } }"
        " ... on RunConfigValidationInvalid { errors { message } }"
        " ... on InvalidSubsetError { message } ... on PythonError { message } } }",
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": JOB,
                    "assetSelection": asset_keys,
                },
                "runConfigData": {},
                "executionMetadata": {
                    "tags": [{"key": k, "value": v} for k, v in tags.items()]
                    + [{"key": "dagster/from_ui", "value": "true"}]
                },
            }
        },
    )["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        webserver.fail(f"launchRun returned {launched['__typename']}: {json.dumps(launched)[:3000]}")
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = launched["run"]["status"]
    while status not in {"SUCCESS", "FAILURE", "CANCELED"} and time.monotonic() < deadline:
        time.sleep(1)
        status = webserver.gql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})[
            "runOrError"
        ].get("status")
    if status != "SUCCESS":
        webserver.fail(f"run {run_id} for {key} ended as {status} (limit {RUN_TIMEOUT_S}s)")

    vkp = webserver.data_dir / "vkp" / f"{subject}_{grade}_v1.0.0.vkp"
    assert vkp.is_file(), f"{vkp} was not published"
    data = webserver.gql(
        'query($key: String!) { assetOrError(assetKey: {path: ["vkp_package"]}) { ... on Asset {'
        " assetMaterializations(limit: 1, partitions: [$key]) { partition runId"
        " metadataEntries { label ... on PathMetadataEntry { path } } } } } }",
        {"key": key},
    )
    latest = data["assetOrError"]["assetMaterializations"]
    assert latest and latest[0]["runId"] == run_id and latest[0]["partition"] == key
    paths = {m["label"]: m.get("path") for m in latest[0]["metadataEntries"]}
    assert Path(paths["vkp_path"]) == vkp
