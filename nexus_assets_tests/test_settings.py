"""nexus_assets/settings.py: every setting parsed once, from one list, and nothing below the entry points
reads the environment."""

import re
from pathlib import Path

import pytest

from nexus_assets.lib.aws.aws_retry import RetrySettings
from nexus_assets.lib.aws.storage import LocalStorage, open_storage
from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.settings import TEST_HOOKS, VARIABLES, Settings, variables_table

PACKAGE = Path(__file__).resolve().parents[1] / "nexus_assets"
# Where reading the environment is allowed, and why (docs/configuration.md says the same).
ENVIRONMENT_READERS = {
    "settings.py": "the one reader",
    "lib/core/layout.py": "NEXUS_DATA_DIR, read when a run starts",
    "build.py": "NEXUS_DATA_DIR, pointed at each data directory `nexus build` runs, then restored",
    "lib/core/fault_points.py": "the reliability tests' fault points, in killed child processes",
    "instance.py": "DAGSTER_HOME, Dagster's own variable",
    "lib/core/cpu_info.py": "the math libraries' own instruction-set caps (ONEDNN_MAX_CPU_ISA, ...), which they read "
    "from this process's environment: part of the CPU a cached engine choice was measured on",
}


def test_defaults_come_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(model_cache=settings.model_cache)
    assert (settings.deployment, settings.aws, settings.embedder_backend, settings.retry) == (
        "local",
        None,
        "local",
        RetrySettings(),
    )


def test_values_are_parsed_into_their_types_and_secrets_never_show() -> None:
    settings = Settings.from_env(
        {
            "NEXUS_ENV": "aws",
            "NEXUS_S3_BUCKET": "b",
            "NEXUS_S3_BUCKET_POLICY": "off",
            "NEXUS_AWS_MAX_ATTEMPTS": "3",
            "NEXUS_CHROMA_PORT": "9000",
            "NEXUS_CHROMA_SSL": "true",
            "NEXUS_EXECUTOR": "multiprocess",
            "NEXUS_STEP_RETRY_DELAY": "0.5",
            "NEXUS_MAX_PDF_PAGES": "7",
            "NEXUS_OCR": "off",
            "NEXUS_CATALOG_EXPIRY_DAYS": "2",
            "NEXUS_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----hidden-pem-body",
            "NEXUS_MODEL_CACHE": "/tmp/models",
            "HOME": "/home/x",
        }
    )
    assert settings.aws is not None and settings.aws.bucket == "b" and not settings.aws.bucket_policy
    assert settings.aws.retry.max_attempts == settings.retry.max_attempts == 3
    assert (settings.chroma_port, settings.chroma_ssl, settings.executor) == (9000, True, "multiprocess")
    assert (settings.step_retry_delay, settings.limits.max_pages, settings.ocr) == (0.5, 7, False)
    assert (settings.catalog_expiry_days, settings.model_cache) == (2.0, Path("/tmp/models"))
    assert "hidden-pem-body" not in repr(settings) and "HOME" not in settings.environment
    # A bucket named in local mode serves `nexus aws bootstrap`, never switches the storage to S3.
    local = Settings.from_env({"NEXUS_S3_BUCKET": "b"})
    assert local.aws is not None and isinstance(open_storage(DataLayout(Path("/tmp/d")), local), LocalStorage)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEXUS_ENV", "cloud"),
        ("NEXUS_EXECUTOR", "threads"),
        ("NEXUS_EMBEDDER_BACKEND", "titan"),
        ("NEXUS_CHROMA_MODE", "remote"),
        ("NEXUS_CHROMA_PORT", "eighty"),
        ("NEXUS_CHROMA_SSL", "maybe"),
        ("NEXUS_STEP_RETRIES", "-1"),
        ("NEXUS_AWS_MAX_ATTEMPTS", "0"),
        ("NEXUS_MAX_PDF_MB", "big"),
        ("NEXUS_OCR", "sometimes"),
        ("NEXUS_CATALOG_EXPIRY_DAYS", "0"),
        ("NEXUS_S3_BUCKET_POLICY", "strict"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, value: str) -> None:
    environ = {variable: value}
    if variable == "NEXUS_S3_BUCKET_POLICY":
        environ["NEXUS_S3_BUCKET"] = "b"
    with pytest.raises(ValueError, match=variable):
        Settings.from_env(environ)


def test_every_variable_the_code_names_is_in_the_one_list() -> None:
    named = {
        match
        for path in PACKAGE.rglob("*.py")
        for match in re.findall(r"[\"'](NEXUS_[A-Z0-9_]+)[\"']", path.read_text())
    }
    assert named - set(VARIABLES) - set(TEST_HOOKS) == set(), "add them to VARIABLES in nexus_assets/settings.py"


def test_nothing_below_the_entry_points_reads_the_environment() -> None:
    reads = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^\]]+\](?!\s*=)|environ\s*=\s*os\.environ")
    found = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if reads.search(path.read_text())}
    assert found <= set(ENVIRONMENT_READERS), (
        f"read through nexus_assets.settings instead: {found - set(ENVIRONMENT_READERS)}"
    )


def test_the_configuration_page_lists_every_variable() -> None:
    page = (PACKAGE.parent / "docs" / "configuration.md").read_text()
    assert variables_table() in page, "regenerate it: python -m nexus_assets.settings"


def test_the_command_refuses_a_bad_setting_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from nexus_assets.cli import main

    monkeypatch.setenv("NEXUS_CHROMA_PORT", "eighty")
    assert main(["--data-dir", str(tmp_path), "jobs"]) == 2
    assert "bad setting: NEXUS_CHROMA_PORT='eighty'" in capsys.readouterr().err


def test_aws_resources_name_the_variables_that_are_set() -> None:
    """aws mode's resource values are EnvVars where a variable is set (the UI shows its name), else defaults."""
    from nexus_assets.definitions import aws_resources

    settings = Settings.from_env({"NEXUS_ENV": "aws", "NEXUS_S3_BUCKET": "b", "AWS_REGION": "eu-west-1"})
    aws = aws_resources(settings)["data_dir"].aws
    assert (aws.bucket.env_var_name, aws.region.env_var_name) == ("NEXUS_S3_BUCKET", "AWS_REGION")
    assert aws.records_table == "NexusAssetRecords", "unset: the default, not an EnvVar"
