"""Every setting of the platform, read from the environment once (`Settings.from_env`) and passed down.

The entry points read it: the `nexus` command when it starts, the Dagster code location when it loads
(`nexus_assets/defs/settings.py`). Everything below them takes values, never the environment, so a
setting has one name, one parser and one error message, and a test passes the settings it means.
`docs/configuration.md` lists the variables; a test keeps it in step with `VARIABLES`.

Two things are read later on purpose: `NEXUS_DATA_DIR` by the data-directory resources when a run
starts (`nexus build` runs several data directories in one process), and the fault points of the
reliability tests (`lib/core/fault_points.py`), which must reach killed child processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nexus_assets.lib.core.numbers import parse_number

if TYPE_CHECKING:  # imported where parsed: `nexus --help` and an up-to-date build stay light
    from nexus_assets.lib.aws.aws_config import AwsSettings
    from nexus_assets.lib.aws.aws_retry import RetrySettings
    from nexus_assets.lib.distribution.http_fetch import FetchSettings
    from nexus_assets.lib.index.chunking import ChunkBudget
    from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits

# Not ours, but read by the settings: TESSDATA_PREFIX changes what OCR reads (part of a build's fingerprint),
# AWS_REGION names aws mode's region (the definitions show it as an EnvVar when it is set).
ALSO_KEPT = ("TESSDATA_PREFIX", "AWS_REGION", "AWS_DEFAULT_REGION")
Deployment = Literal["local", "aws"]
Executor = Literal["in_process", "multiprocess"]
ChromaMode = Literal["local", "server"]

# name → what it sets (its default). The one list of the platform's variables (docs/configuration.md).
VARIABLES: dict[str, str] = {
    "NEXUS_ENV": "deployment: local (default) or aws",
    "NEXUS_DATA_DIR": "data directory (./data)",
    "NEXUS_S3_BUCKET": "aws mode: the bucket holding raw-curriculum/, processed/ and vkp/ (required)",
    "NEXUS_DYNAMODB_TABLE": "aws mode: table of small materializations (NexusAssetRecords)",
    "NEXUS_JOBS_TABLE": "aws mode: job history table (ETLPipelineJobs)",
    "AWS_REGION": "AWS region (AWS_DEFAULT_REGION, else us-east-1)",
    "NEXUS_AWS_ENDPOINT_URL": "S3, DynamoDB and SQS endpoint (moto, LocalStack, an S3-compatible store)",
    "NEXUS_KMS_KEY_ID": "aws mode: SSE-KMS key (empty: SSE-S3, AES256)",
    "NEXUS_S3_STORAGE_CLASS": "aws mode: storage class of processed objects (STANDARD_IA)",
    "NEXUS_CLOUDFRONT_DISTRIBUTION_ID": "aws mode: CloudFront distribution invalidated on publication",
    "NEXUS_SQS_QUEUE_URL": "aws mode: queue of S3 event notifications (empty: the sensor lists the bucket)",
    "NEXUS_S3_BUCKET_POLICY": "`nexus aws bootstrap` sets the bucket policy: on (default) or off",
    "NEXUS_AWS_RETRY_MODE": "botocore retry mode: standard (default), adaptive or legacy",
    "NEXUS_AWS_MAX_ATTEMPTS": "calls per AWS request, the first included (8)",
    "NEXUS_AWS_CONNECT_TIMEOUT": "seconds to connect to AWS (10)",
    "NEXUS_AWS_READ_TIMEOUT": "seconds to wait for an AWS response (60)",
    "NEXUS_EMBEDDER_BACKEND": "embedding back end: local (default), bedrock or bedrock_fallback",
    "NEXUS_BEDROCK_ENDPOINT_URL": "Bedrock endpoint (AWS's public one)",
    "NEXUS_MODEL_CACHE": "converted models and engine measurements ($XDG_CACHE_HOME/nexus-assets)",
    "NEXUS_CHROMA_MODE": "local (default) or server: also publish collections to a Chroma server",
    "NEXUS_CHROMA_HOST": "Chroma server host (127.0.0.1)",
    "NEXUS_CHROMA_PORT": "Chroma server port (8000)",
    "NEXUS_CHROMA_SSL": "Chroma server over TLS: true or false (false)",
    "NEXUS_CHROMA_TOKEN": "secret: Chroma server token (an EnvVar, read by the resource at run time)",
    "NEXUS_EXECUTOR": "run steps in_process (default) or multiprocess",
    "NEXUS_EXECUTOR_MAX_CONCURRENT": "steps at once with the multiprocess executor (2)",
    "NEXUS_STEP_RETRIES": "retries of a failed step (3)",
    "NEXUS_STEP_RETRY_DELAY": "seconds before the first step retry, doubling (1)",
    "NEXUS_REBUILD_CRON": "weekly full rebuild schedule (0 2 * * 0)",
    "NEXUS_REBUILD_TIMEZONE": "its time zone (Asia/Jakarta)",
    "NEXUS_VKP_KEEP_VERSIONS": "package versions kept per partition (5)",
    "NEXUS_CATALOG_EXPIRY_DAYS": "days a signed catalog.json stays valid (30)",
    "NEXUS_CATALOG_MAX_VALIDITY_DAYS": "longest validity a catalog may be signed with, or a school accepts (365)",
    "NEXUS_PULL_CONNECT_TIMEOUT": "`nexus vkp pull`: seconds to connect to the mirror (10)",
    "NEXUS_PULL_READ_TIMEOUT": "`nexus vkp pull`: seconds one read from the mirror may wait (30)",
    "NEXUS_PULL_CATALOG_DEADLINE": "`nexus vkp pull`: seconds to get the catalog, retries included (120)",
    "NEXUS_PULL_REQUEST_DEADLINE": "`nexus vkp pull`: seconds one package request may take (14400)",
    "NEXUS_PULL_MIN_RATE": "`nexus vkp pull`: bytes/s a download must average over the rate window (1024)",
    "NEXUS_PULL_RATE_WINDOW": "`nexus vkp pull`: seconds of that window (30)",
    "NEXUS_PULL_ATTEMPTS": "`nexus vkp pull`: requests per file, the first included (5)",
    "NEXUS_PULL_MAX_WAIT": "`nexus vkp pull`: longest pause between tries, Retry-After capped to it (60, max 3600)",
    "NEXUS_PULL_SCHEMES": "`nexus vkp pull`: schemes the catalog may use (https,http,file,s3)",
    "NEXUS_MAX_PDF_MB": "largest PDF read, MiB (500)",
    "NEXUS_MAX_PDF_PAGES": "most pages per PDF (2000)",
    "NEXUS_MAX_EXTRACTION_SECONDS": "seconds of extraction per file, OCR included (1800)",
    "NEXUS_MAX_PAGE_CHARS": "characters of text one page may yield, else its file is refused (50000)",
    "NEXUS_MAX_FILE_CHARS": "characters of text one file may yield, else it is refused (10000000)",
    "NEXUS_MAX_EXTRACTION_MEMORY_MB": "address space of an extraction worker, MiB, RLIMIT_AS; 0: none (4096)",
    "NEXUS_MAX_FILE_CHUNKS": "chunks one file may have, else it is left out of the index (20000)",
    "NEXUS_MAX_PARTITION_CHUNKS": "chunks one partition may have; files past it are left out (150000)",
    "NEXUS_OCR": "auto (default: where Tesseract is installed) or off",
    "NEXUS_OCR_LANGUAGES": "Tesseract languages (ind+eng)",
    "NEXUS_SIGNING_KEY_FILE": "PEM file of the Ed25519 package signing key",
    "NEXUS_SIGNING_KEY": "secret: the signing key as PEM text",
    "NEXUS_SIGNING_KEY_SECRET_ID": "aws mode: Secrets Manager secret holding the signing key",
    "NEXUS_VKP_PUBLIC_KEY": "public key `nexus vkp verify/pull` trust (file or PEM text)",
    "NEXUS_GOLDEN_QUESTIONS": "golden questions file of the retrieval_quality check",
    "NEXUS_GOLDEN_MIN_RECALL": "recall the retrieval_quality check requires (0.7; checked by the check)",
}


TEST_HOOKS = ("NEXUS_FAULT_POINT", "NEXUS_FAULT_MARKER")  # reliability tests only: lib/core/fault_points.py


def variables_table() -> str:
    """VARIABLES as the Markdown table of docs/configuration.md (a test keeps the page in step)."""
    rows = [f"| `{name}` | {meaning} |" for name, meaning in VARIABLES.items()]
    return "\n".join(["| variable | what it sets (default) |", "|---|---|", *rows])


def _default_retry() -> RetrySettings:
    from nexus_assets.lib.aws.aws_retry import RetrySettings

    return RetrySettings()


def _default_limits() -> ExtractionLimits:
    from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits

    return ExtractionLimits()


def _default_fetch() -> FetchSettings:
    from nexus_assets.lib.distribution.http_fetch import FetchSettings

    return FetchSettings()


def _fetch_from_env(environ: Mapping[str, str]) -> FetchSettings:
    """The pull's network bounds (NEXUS_PULL_*): every timeout positive, at least one attempt, known schemes."""
    from nexus_assets.lib.distribution.http_fetch import MAX_WAIT_CEILING, FetchSettings

    base = FetchSettings()
    values = {}
    for name, variable in (
        ("connect_timeout", "NEXUS_PULL_CONNECT_TIMEOUT"),
        ("read_timeout", "NEXUS_PULL_READ_TIMEOUT"),
        ("catalog_deadline", "NEXUS_PULL_CATALOG_DEADLINE"),
        ("request_deadline", "NEXUS_PULL_REQUEST_DEADLINE"),
        ("rate_window", "NEXUS_PULL_RATE_WINDOW"),
    ):
        value = _number(environ, variable, getattr(base, name))
        if not 0 < value < 10**7:
            raise ValueError(f"{variable}={value!r} must be a positive number of seconds below 10000000")
        values[name] = value
    values["min_rate"] = _number(environ, "NEXUS_PULL_MIN_RATE", base.min_rate)
    if values["min_rate"] > 10**12:
        raise ValueError(f"NEXUS_PULL_MIN_RATE={values['min_rate']!r} bytes/s is more than any link carries")
    # The longest pause between attempts, which a mirror's Retry-After is capped to: a mirror must not choose
    # how long a school's pull sleeps holding its lock, so it is bounded like the deadlines it sits within.
    values["max_wait"] = _number(environ, "NEXUS_PULL_MAX_WAIT", base.max_wait, maximum=MAX_WAIT_CEILING)
    attempts = int(_number(environ, "NEXUS_PULL_ATTEMPTS", base.attempts, int))
    if not 1 <= attempts <= 100:
        raise ValueError(f"NEXUS_PULL_ATTEMPTS={attempts} must be in 1..100")
    raw = environ.get("NEXUS_PULL_SCHEMES", "").strip().lower()
    schemes = tuple(s.strip() for s in raw.split(",") if s.strip()) if raw else base.schemes
    unknown = sorted(set(schemes) - {"https", "http", "file", "s3"})
    if unknown:
        raise ValueError(f"NEXUS_PULL_SCHEMES={raw!r}: unknown scheme(s) {unknown}; use https, http, file, s3")
    return FetchSettings(attempts=attempts, schemes=schemes, **values)


def _default_chunk_budget() -> ChunkBudget:
    from nexus_assets.lib.index.chunking import ChunkBudget

    return ChunkBudget()


def _default_model_cache() -> Path:
    from nexus_assets.lib.index.embedding_engines import model_cache_dir

    return model_cache_dir({})


def _flag(value: str, variable: str, default: bool) -> bool:
    choice = value.strip().lower()
    if not choice:
        return default
    if choice in ("1", "true", "yes", "on"):
        return True
    if choice in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{variable}={value!r}: use on or off")


def _number(
    environ: Mapping[str, str], variable: str, default: float, kind: type = float, maximum: float | None = None
) -> float:
    """A non-negative, finite number in ASCII (at most `maximum`): `nan` passes every `<` test as False, so a NaN
    time limit or retry delay would silently mean "never" (a build that hangs, deaf to Ctrl-C), and `inf` the same."""
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    value = parse_number(raw, variable, kind)
    if value < 0:
        raise ValueError(f"{variable}={raw!r} must not be negative")
    if maximum is not None and value > maximum:
        raise ValueError(f"{variable}={raw!r} must be at most {maximum:g}")
    return value


def _port(environ: Mapping[str, str], variable: str, default: int) -> int:
    value = int(_number(environ, variable, default, int))
    if not 1 <= value <= 65535:
        raise ValueError(f"{variable}={value}: a TCP port is 1..65535")
    return value


def _at_least_one(environ: Mapping[str, str], variable: str, default: int) -> int:
    value = int(_number(environ, variable, default, int, maximum=1024))
    if value < 1:
        raise ValueError(f"{variable}={value}: at least 1")
    return value


# Step retries are for transient outages: 100 tries, or a first delay of an hour (doubling), is already far past
# what a build should wait; beyond it a typo (an extra zero, `inf`) would hold a build for days.
MAX_STEP_RETRIES = 100
MAX_RETRY_DELAY_S = 3600.0


def _choice(environ: Mapping[str, str], variable: str, choices: tuple[str, ...]) -> str:
    value = environ.get(variable, "").strip().lower() or choices[0]
    if value not in choices:
        raise ValueError(f"{variable}={value!r}: use {' or '.join(choices)} (default {choices[0]})")
    return value


@dataclass(frozen=True)
class Settings:
    """The platform's settings: defaults here, values from `from_env`."""

    deployment: Deployment = "local"
    data_dir: str = ""  # empty: ./data
    aws: AwsSettings | None = None  # the bucket and tables: always in aws mode, else when a bucket is named
    aws_endpoint_url: str | None = None  # also used in local mode: `nexus vkp pull s3://...`
    aws_region: str | None = None
    retry: RetrySettings = field(default_factory=_default_retry)
    sqs_queue_url: str = ""
    embedder_backend: str = "local"
    bedrock_endpoint_url: str | None = None
    model_cache: Path = field(default_factory=_default_model_cache)
    chroma_mode: ChromaMode = "local"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_ssl: bool = False
    executor: Executor = "in_process"
    executor_max_concurrent: int = 2
    step_retries: int = 3
    step_retry_delay: float = 1.0
    golden_min_recall: float = 0.7  # validated at start-up; the retrieval check reads its own snapshot
    rebuild_cron: str = "0 2 * * 0"  # Sunday 02:00
    rebuild_timezone: str = "Asia/Jakarta"
    keep_versions: int = 0  # 0: the catalog's default
    catalog_expiry_days: float = 30.0
    catalog_max_validity_days: float = 365.0
    fetch: FetchSettings = field(default_factory=_default_fetch)  # `nexus vkp pull`'s network bounds
    limits: ExtractionLimits = field(default_factory=_default_limits)
    chunk_budget: ChunkBudget = field(default_factory=_default_chunk_budget)
    ocr: bool = True  # False: never OCR, even where Tesseract is installed
    ocr_languages: str = "ind+eng"
    signing_key_file: str = ""
    signing_key: str = field(default="", repr=False)  # PEM text: never printed
    signing_key_secret_id: str = ""
    vkp_public_key: str = ""
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)  # NEXUS_* (+ ALSO_KEPT) as read

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse every variable of VARIABLES; a bad value raises ValueError naming the variable."""
        # The lib modules that own a setting's parser, imported here: `nexus --help` stays light.
        from nexus_assets.lib.aws.aws_config import AwsSettings
        from nexus_assets.lib.aws.aws_retry import RetrySettings
        from nexus_assets.lib.distribution.vkp_catalog import expiry_days, max_validity_days
        from nexus_assets.lib.index.chunking import ChunkBudget
        from nexus_assets.lib.index.embedding_engines import model_cache_dir
        from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits

        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        deployment = _choice(env, "NEXUS_ENV", ("local", "aws"))
        retry = RetrySettings.from_env(env)
        executor = _choice(env, "NEXUS_EXECUTOR", ("in_process", "multiprocess"))
        backend = _choice(env, "NEXUS_EMBEDDER_BACKEND", ("local", "bedrock", "bedrock_fallback"))
        return cls(
            deployment=deployment,  # type: ignore[arg-type]
            data_dir=get("NEXUS_DATA_DIR"),
            aws=AwsSettings.from_env(env, retry) if deployment == "aws" or get("NEXUS_S3_BUCKET") else None,
            aws_endpoint_url=get("NEXUS_AWS_ENDPOINT_URL") or None,
            aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION") or None,
            retry=retry,
            sqs_queue_url=get("NEXUS_SQS_QUEUE_URL"),
            embedder_backend=backend,
            bedrock_endpoint_url=get("NEXUS_BEDROCK_ENDPOINT_URL") or None,
            model_cache=model_cache_dir(env),
            chroma_mode=_choice(env, "NEXUS_CHROMA_MODE", ("local", "server")),  # type: ignore[arg-type]
            chroma_host=get("NEXUS_CHROMA_HOST") or cls.chroma_host,
            chroma_port=_port(env, "NEXUS_CHROMA_PORT", cls.chroma_port),
            chroma_ssl=_flag(get("NEXUS_CHROMA_SSL"), "NEXUS_CHROMA_SSL", False),
            executor=executor,  # type: ignore[arg-type]
            executor_max_concurrent=_at_least_one(env, "NEXUS_EXECUTOR_MAX_CONCURRENT", 2),
            step_retries=int(_number(env, "NEXUS_STEP_RETRIES", cls.step_retries, int, maximum=MAX_STEP_RETRIES)),
            step_retry_delay=_number(env, "NEXUS_STEP_RETRY_DELAY", cls.step_retry_delay, maximum=MAX_RETRY_DELAY_S),
            rebuild_cron=get("NEXUS_REBUILD_CRON") or cls.rebuild_cron,
            rebuild_timezone=get("NEXUS_REBUILD_TIMEZONE") or cls.rebuild_timezone,
            keep_versions=int(_number(env, "NEXUS_VKP_KEEP_VERSIONS", 0, int, maximum=10_000)),
            golden_min_recall=_number(env, "NEXUS_GOLDEN_MIN_RECALL", cls.golden_min_recall, maximum=1.0),
            catalog_expiry_days=expiry_days(env),
            catalog_max_validity_days=max_validity_days(env),
            fetch=_fetch_from_env(env),
            limits=ExtractionLimits.from_settings(environ=env),
            chunk_budget=ChunkBudget.from_env(env),
            ocr=_flag("" if get("NEXUS_OCR").lower() == "auto" else get("NEXUS_OCR"), "NEXUS_OCR", True),
            ocr_languages=get("NEXUS_OCR_LANGUAGES") or cls.ocr_languages,
            signing_key_file=get("NEXUS_SIGNING_KEY_FILE"),
            signing_key=env.get("NEXUS_SIGNING_KEY", ""),
            signing_key_secret_id=get("NEXUS_SIGNING_KEY_SECRET_ID"),
            vkp_public_key=get("NEXUS_VKP_PUBLIC_KEY"),
            environment={k: v for k, v in sorted(env.items()) if k.startswith("NEXUS_") or k in ALSO_KEPT},
        )


if __name__ == "__main__":  # `python -m nexus_assets.settings`: rewrite the table of docs/configuration.md
    page = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    marker = "<!-- generated from nexus_assets/settings.py VARIABLES: a test keeps this table in step -->\n"
    head = page.read_text().split(marker)[0]
    page.write_text(head + marker + variables_table() + "\n")
