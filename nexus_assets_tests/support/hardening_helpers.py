"""Small aws-mode builds for the hardening tests: a one-page PDF, the `nexus` CLI, direct moto access.

Builds run `nexus build` in a subprocess (as a data engineer would), in aws mode, with S3 and DynamoDB
reached through `NEXUS_AWS_ENDPOINT_URL` (moto, or the fault proxy in front of it) and the embedding
back end on the loopback Bedrock fake (`fake_bedrock.py`): no model to load, so a build of the tiny
partition is a few seconds of Dagster. Retries are kept short by configuration, never by sleeping:
3 attempts per AWS call (NEXUS_AWS_MAX_ATTEMPTS) and one step retry 0.2 s later (NEXUS_STEP_RETRIES,
NEXUS_STEP_RETRY_DELAY).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.core.job_tracking import JobRecord
from nexus_assets_tests.support import make_aws_env
from nexus_assets_tests.support.fake_bedrock import FakeBedrock
from nexus_assets_tests.support.fault_proxy import FaultProxy

SUBJECT, GRADE = "uji", "kelas_1"  # the tiny partition: uji/kelas_1
PARTITION_KEY = f"{SUBJECT}/{GRADE}"
MAX_ATTEMPTS, STEP_RETRIES = 3, 1
FAST_RETRIES = {
    "NEXUS_AWS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "NEXUS_STEP_RETRIES": str(STEP_RETRIES),
    "NEXUS_STEP_RETRY_DELAY": "0.2",
}
_TOPICS = {
    "algoritma": "Algoritma adalah urutan langkah logis untuk menyelesaikan masalah. Setiap langkah harus jelas.",
    "jaringan": "Jaringan komputer menghubungkan perangkat agar dapat bertukar data melalui kabel atau nirkabel.",
    "basis_data": "Basis data menyimpan data terstruktur dalam tabel yang terdiri atas baris dan kolom.",
    "keamanan": "Keamanan informasi menjaga kerahasiaan, keutuhan dan ketersediaan data dari ancaman.",
    "pemrograman": "Pemrograman adalah proses menulis instruksi yang dijalankan komputer untuk suatu tugas.",
}


def tiny_pdf(topic: str, note: str = "") -> bytes:
    """A one-page PDF with a few paragraphs on `topic` (a text layer: no OCR, two or three chunks).

    `note` ends each paragraph, so two PDFs on one topic differ in content (not only in name).
    """
    import pymupdf

    sentence = _TOPICS[topic]
    text = "\n\n".join(
        f"Bagian {i + 1}. " + " ".join([sentence] * 5) + (f" Catatan {note}." if note else "") for i in range(3)
    )
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(50, 50, 550, 800), text, fontsize=9)
    data = doc.tobytes()
    doc.close()
    return data


def upload_pdf(settings: AwsSettings, topic: str, unique: bool = False) -> str:
    """Upload a tiny PDF on `topic`; `unique`: under a new name and with new content, whatever ran before."""
    note = uuid.uuid4().hex[:6] if unique else ""
    key = f"raw-curriculum/{SUBJECT}/{GRADE}/{topic}{'_' + note if note else ''}.pdf"
    settings.object_store().put_bytes(
        key, tiny_pdf(topic, note), storage_class="STANDARD", content_type="application/pdf"
    )
    return key


def nexus(*args: str, env: dict[str, str], check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "nexus_assets.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"nexus {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def build(env: dict[str, str], data_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    return nexus("--data-dir", str(data_dir), "build", "--subject", SUBJECT, "--grade", GRADE, env=env, check=check)


def direct_settings(base: dict[str, str], moto_endpoint: str) -> AwsSettings:
    """The deployment's bucket and tables, reached straight at moto (never through the fault proxy)."""
    return replace(AwsSettings.from_env(base), endpoint_url=moto_endpoint)


def job_records(settings: AwsSettings) -> list[JobRecord]:
    return [r for r in settings.job_store().recent(days=1) if r.partition == PARTITION_KEY]


def last_job(settings: AwsSettings) -> JobRecord:
    return sorted(job_records(settings), key=lambda r: r.timestamp)[-1]


def catalog_item(settings: AwsSettings) -> dict[str, Any]:
    key = {"pk": {"S": "vkp_catalog"}, "sk": {"S": f"{SUBJECT}/{GRADE}"}}
    return (
        settings.client("dynamodb")
        .get_item(TableName=settings.records_table, Key=key, ConsistentRead=True)
        .get("Item", {})
    )


def record_item(settings: AwsSettings, asset: str) -> dict[str, Any]:
    key = {"pk": {"S": asset}, "sk": {"S": PARTITION_KEY}}
    return (
        settings.client("dynamodb")
        .get_item(TableName=settings.records_table, Key=key, ConsistentRead=True)
        .get("Item", {})
    )


@contextmanager
def faultable_aws(
    moto_endpoint: str, dagster_home: Path, base_overrides: dict[str, str] | None = None, **build_env: str
) -> Iterator[tuple[FaultProxy, AwsSettings, dict[str, str]]]:
    """A bootstrapped bucket and tables holding the tiny partition, and the environment of builds that
    reach them through a fault proxy and embed with the Bedrock fake: (proxy, settings straight at moto,
    build environment). `base_overrides` change the aws-mode variables (e.g. planted credentials)."""
    with FaultProxy(moto_endpoint) as proxy, FakeBedrock() as bedrock, pytest.MonkeyPatch.context() as mp:
        base = {**make_aws_env(moto_endpoint), **(base_overrides or {})}
        for name, value in base.items():
            mp.setenv(name, value)
        mp.delenv("NEXUS_DATA_DIR", raising=False)
        settings = direct_settings(base, moto_endpoint)
        bootstrap(settings)
        upload_pdf(settings, "algoritma")
        env = {
            **os.environ,
            **base,
            **FAST_RETRIES,
            "NEXUS_AWS_ENDPOINT_URL": proxy.endpoint_url,
            "NEXUS_EMBEDDER_BACKEND": "bedrock",
            "NEXUS_BEDROCK_ENDPOINT_URL": bedrock.endpoint_url,
            "DAGSTER_HOME": str(dagster_home),
            **build_env,
        }
        yield proxy, settings, env
