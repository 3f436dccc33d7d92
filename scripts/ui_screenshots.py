"""Screenshots of the Dagster UI for the docs: the asset graph, one partition's checks, a table asset's
column schema and row count, and the chunk-length histogram table; with `--first-run`, a new user's first
hour: the folders as partitions of a fresh instance, a run launched from the launchpad, a backfill of the
rest, and the catalog after a PDF is dropped into a new folder with the upload sensor on.

Starts `dagster-webserver` on a free port against a built instance (DAGSTER_HOME and NEXUS_DATA_DIR
of `make demo`), drives Debian's headless Chromium (`/usr/bin/chromium`, apt package `chromium`)
through Playwright (`pip install -e '.[screenshots]'`; no browser is downloaded), and saves PNGs
under docs/. Usage:

    make screenshots            # or: python scripts/ui_screenshots.py [--out docs]
    python scripts/ui_screenshots.py --first-run /tmp/first-run   # the first hour, on a new instance
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 860}
STARTUP_TIMEOUT_S = 180
RUN_TIMEOUT_S = 900  # a partition's build on a busy 2-core machine, the backfill's five, the upload's two runs
JOB_PAGE = "/locations/nexus_assets/jobs/curriculum_build_job"
FIRST_BUILT = "informatika/kelas_10"  # launched from the launchpad
UPLOADED = ("biologi/kelas_11", "biologi/kelas_12")  # the sample folder copied into a new folder
sys.path.insert(0, str(PROJECT_ROOT))  # the webserver helpers the tests use (no pytest needed)
from nexus_assets_tests.support.webserver import (  # noqa: E402
    free_port,
    start_process,
    stop_process_group,
    wait_for_location,
    webserver_command,
)


def dismiss_dialogs(page) -> None:
    """The first visit shows a community sign-up dialog: skip it."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=8000)
        skip.click()
    except Exception:  # noqa: BLE001 -- no dialog this time
        pass


def shot_asset_graph(page, url: str) -> None:
    """All groups, expanded, so the lineage reads ingest -> index -> publish."""
    page.goto(f"{url}/asset-groups")
    dismiss_dialogs(page)
    page.get_by_text("publish").first.wait_for()
    page.mouse.click(VIEWPORT["width"] - 200, VIEWPORT["height"] - 120, button="right")  # graph background
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.get_by_text("vkp_package").first.wait_for()


def shot_partition_checks(page, url: str) -> None:
    """text_chunks' checks tab: the latest partition's verdicts and metadata."""
    page.goto(f"{url}/assets/text_chunks?view=checks")
    dismiss_dialogs(page)
    page.get_by_text("chunk_health").first.wait_for()


def shot_column_schema(page, url: str) -> None:
    """text_chunks' overview: the row count of the latest materialization and the Columns table
    (dagster/column_schema: names, types, descriptions)."""
    page.goto(f"{url}/assets/text_chunks")
    dismiss_dialogs(page)
    page.get_by_text("Row count").first.wait_for()
    page.get_by_text("content_sha256").first.wait_for()


def shot_chunk_histogram(page, url: str) -> None:
    """text_chunks' latest materialization: the chunk-length histogram, a TableMetadataValue shown as a table."""
    page.goto(f"{url}/assets/text_chunks?view=events")
    dismiss_dialogs(page)
    page.get_by_text("chunk_length_histogram").first.wait_for()
    page.get_by_text("chars_min").first.wait_for()
    # The metadata list scrolls inside its pane: bring the rows just above the histogram to the top.
    page.get_by_text("chunk_len_min", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")


def gql(url: str, query: str, variables: dict | None = None) -> dict:
    """One GraphQL request to the webserver (what the UI sends); its `data`, or SystemExit with the errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise SystemExit(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def wait_for(what: str, probe, timeout_s: float = RUN_TIMEOUT_S):
    """Poll `probe()` every 3 s until it returns something true; SystemExit after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(3)
    return found


def run_of(url: str, partition: str) -> dict | None:
    """The latest run of `partition` (runId, jobName, status)."""
    runs = gql(
        url,
        "query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}, limit: 1) {"
        " ... on Runs { results { runId jobName status } } } }",
        {"tags": [{"key": "dagster/partition", "value": partition}]},
    )["runsOrError"]["results"]
    return runs[0] if runs else None


def finished(status: str, what: str) -> bool:
    if status in ("FAILURE", "CANCELED", "FAILED", "COMPLETED_FAILED"):
        raise SystemExit(f"{what} ended {status}: see the webserver and daemon logs")
    return status in ("SUCCESS", "COMPLETED", "COMPLETED_SUCCESS")


def open_materialize_dialog(page, url: str) -> None:
    """curriculum_build_job's page, "Materialize all": the launchpad of a partition build."""
    page.goto(f"{url}{JOB_PAGE}")
    dismiss_dialogs(page)
    page.get_by_role("button", name="Materialize all").first.click()
    page.get_by_text("Partition selection").first.wait_for()


def shot_launchpad_run(page, url: str) -> None:
    """One partition launched from the launchpad (the job's "Materialize all", one key picked), then
    its run page once it succeeded: one job name, the key as people say it, every step and check."""
    open_materialize_dialog(page, url)
    page.get_by_text("Select a partition or create one").first.click()
    page.keyboard.type(FIRST_BUILT)
    page.get_by_text("Select all (1)").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Launch 1 run").click()
    run = wait_for(f"the run of {FIRST_BUILT}", lambda: run_of(url, FIRST_BUILT), 120)
    wait_for(f"run {run['runId']}", lambda: finished(run_of(url, FIRST_BUILT)["status"], f"run of {FIRST_BUILT}"))
    page.goto(f"{url}/runs/{run['runId']}")
    page.get_by_text("Success").first.wait_for()


def latest_backfill(url: str) -> dict | None:
    backfills = gql(
        url, "{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id status } } } }"
    )["partitionBackfillsOrError"]["results"]
    return backfills[0] if backfills else None


def shot_backfill(page, url: str) -> None:
    """The launchpad's "Missing" partitions (the five not built yet) as one backfill, and its page once done."""
    open_materialize_dialog(page, url)
    page.get_by_role("button", name="Missing", exact=True).click()
    page.get_by_text("5 partitions").first.wait_for()
    page.get_by_role("button", name="Launch backfill").click()
    backfill = wait_for("the backfill", lambda: latest_backfill(url), 120)
    wait_for(f"backfill {backfill['id']}", lambda: finished(latest_backfill(url)["status"], "the backfill"))
    page.goto(f"{url}/runs/b/{backfill['id']}?tab=runs")  # its runs: one per partition, keyed as people say it
    try:
        page.get_by_text("matematika/kelas_11").first.wait_for(timeout=30_000)
    except Exception:  # noqa: BLE001 -- a UI that lists no partition keys there: the overview, with its counts
        page.goto(f"{url}/runs/b/{backfill['id']}")
        page.get_by_text("Succeeded").first.wait_for()


def shot_catalog_after_upload(page, url: str, data: Path) -> None:
    """raw_upload_sensor switched on (its toggle under Automation), PDFs dropped into a new folder; the
    catalog once the upload's build and the catalog's automation run have gone: the new folder's row."""
    import pandas as pd

    page.goto(f"{url}/automation")
    dismiss_dialogs(page)
    row = page.locator("[class*=ListItem_listItem]").filter(has_text="raw_upload_sensor")
    row.locator("label").last.click()  # the sensor's switch (the first label is the row's selection box)
    wait_for("raw_upload_sensor to run", lambda: sensor_running(url, "raw_upload_sensor"), 60)
    source, target = (data / "raw-curriculum" / key for key in UPLOADED)
    shutil.copytree(source, target)
    catalog = data / "processed" / "catalog.parquet"

    def listed() -> bool:
        if not catalog.exists():
            return False
        frame = pd.read_parquet(catalog)
        subject, grade = UPLOADED[1].split("/")
        row = frame[(frame["subject"] == subject) & (frame["grade"] == grade)]
        return bool(len(row)) and row["vkp_version"].notna().all()

    wait_for(f"the catalog to list {UPLOADED[1]}", listed)
    page.goto(f"{url}/assets/curriculum_catalog?view=events")  # the latest materialization's table
    page.get_by_text(UPLOADED[1].split("/")[1], exact=True).first.wait_for()  # a subject and a grade column
    page.get_by_text("chunks", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")  # the rows


def sensor_running(url: str, name: str) -> bool:
    state = gql(
        url,
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState { status } } } }",
        {"s": {"repositoryLocationName": "nexus_assets", "repositoryName": "__repository__", "sensorName": name}},
    )["sensorOrError"]
    return state.get("sensorState", {}).get("status") == "RUNNING"


def shot_first_run(page, url: str) -> None:
    """A fresh instance after the daemon's first tick: raw_pdfs' partitions are the folders, keyed
    `<subject>/<grade>`, none built yet (curriculum_folders_sensor registered them)."""
    page.goto(f"{url}/assets/raw_pdfs?view=partitions")
    dismiss_dialogs(page)
    page.get_by_text("informatika/kelas_10").first.wait_for()


def shot_launchpad(page, url: str) -> None:
    """The asset's Materialize dialog: one partition picked by its key, as people say it."""
    page.goto(f"{url}/assets/raw_pdfs")
    dismiss_dialogs(page)
    page.get_by_role("button", name="Materialize").first.click()
    page.get_by_text("Partition selection").first.wait_for()
    page.get_by_text("Select a partition or create one").first.click()
    page.keyboard.type("informatika/kelas_10")
    page.get_by_text("Select all (1)").click()  # all of the one the filter leaves
    page.keyboard.press("Escape")
    page.get_by_text("1 partition", exact=True).first.wait_for()


SHOTS = {
    "ui_asset_graph.png": shot_asset_graph,
    "ui_partition_checks.png": shot_partition_checks,
    "ui_column_schema.png": shot_column_schema,
    "ui_chunk_histogram.png": shot_chunk_histogram,
}
# `--first-run`: a fresh instance and the sample folders, webserver and daemon; in this order, each
# shot's actions are the next one's starting point (nothing built, one partition, all, one uploaded).
FIRST_RUN_SHOTS = {
    "ui_first_run.png": shot_first_run,
    "ui_launchpad_partition.png": shot_launchpad,
    "ui_launchpad_run.png": shot_launchpad_run,
    "ui_backfill.png": shot_backfill,
    "ui_catalog_after_upload.png": shot_catalog_after_upload,
}
SHOTS.update(FIRST_RUN_SHOTS)


def shoot(url: str, out: Path, names: list[str], data: Path | None = None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        for name in names:
            shot = SHOTS[name]
            if shot is shot_catalog_after_upload:
                shot(page, url, data)
            else:
                shot(page, url)
            print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)
            page.mouse.move(VIEWPORT["width"] - 2, VIEWPORT["height"] - 2)  # no hover tooltip in the picture
            page.wait_for_timeout(2500)  # let the layout and fonts settle
            path = out / name
            page.screenshot(path=str(path))
            saved.append(path)
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(SHOTS),
        default=list(SHOTS),
        help="take only these screenshots (default: all)",
    )
    parser.add_argument(
        "--first-run",
        metavar="DIR",
        type=Path,
        help="shoot a fresh instance under DIR (sample folders only, daemon running): " + ", ".join(FIRST_RUN_SHOTS),
    )
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)", file=sys.stderr)
        return 2
    if args.first_run:
        return first_run(args.first_run, args.out)
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        print("error: DAGSTER_HOME must name the instance of a build (run `make demo` first)", file=sys.stderr)
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(webserver_command(port), None, Path(home) / "ui_screenshots_webserver.log")
    try:
        try:
            wait_for_location(url, process, STARTUP_TIMEOUT_S)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        for path in shoot(url, args.out, args.only):
            print(f"wrote {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}")
    finally:
        stop_process_group(process)
    return 0


def first_run(root: Path, out: Path) -> int:
    """A new DAGSTER_HOME and data directory with the sample PDFs, the webserver and the daemon; the shots
    once the daemon's folders sensor has registered the partitions."""
    import subprocess

    from nexus_assets_tests.support.webserver import daemon_command

    home, data = root / "dagster_home", root / "data"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    nexus = Path(sys.executable).with_name("nexus")
    subprocess.run([str(nexus), "--data-dir", str(data), "sample-data"], env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = start_process(webserver_command(port), env, root / "webserver.log")
    daemon = None
    try:
        wait_for_location(url, webserver, STARTUP_TIMEOUT_S)
        # after the webserver made the instance's SQLite schema: two processes creating it at once collide
        daemon = start_process(daemon_command(), env, root / "daemon.log")
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        log = root / "daemon.log"
        while "registered" not in (log.read_text(errors="replace") if log.exists() else ""):
            if time.monotonic() > deadline:
                raise SystemExit("the daemon's curriculum_folders_sensor registered nothing: see daemon.log")
            time.sleep(2)
        for path in shoot(url, out, list(FIRST_RUN_SHOTS), data):
            print(f"wrote {path}")
    finally:
        if daemon is not None:
            stop_process_group(daemon)
        stop_process_group(webserver)
    return 0


if __name__ == "__main__":
    sys.exit(main())
