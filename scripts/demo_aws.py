"""`make demo-aws`: the demo build in aws mode against a local moto S3/DynamoDB server.

Starts moto on a free loopback port, bootstraps the bucket and tables, uploads the sample PDFs to
`raw-curriculum/`, builds every partition through the same Dagster instance as `make demo`, then
prints where everything landed. Nothing reaches AWS; the server stops when the script ends.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        **os.environ,
        "NEXUS_ENV": "aws",
        "NEXUS_S3_BUCKET": "nexus-curriculum-demo",
        "NEXUS_AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_REGION": "us-east-1",
        # moto accepts any credentials; these are placeholders, never real keys.
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        # moto evaluates bucket policies without their conditions: the bootstrap's policy (deny unencrypted
        # puts and plain HTTP) would refuse every object request, so the demo bucket goes without it.
        "NEXUS_S3_BUCKET_POLICY": "off",
        "NEXUS_DATA_DIR": str(ROOT / "data" / "aws-work"),  # the local working mirror of the bucket
    }
    nexus = [str(Path(sys.executable).with_name("nexus"))]
    try:
        print(f"moto S3/DynamoDB endpoint: {env['NEXUS_AWS_ENDPOINT_URL']}", flush=True)
        for args in (["aws", "bootstrap"], ["sample-data"], ["build"], ["jobs", "--days", "1"]):
            print(f"\n$ nexus {' '.join(args)}", flush=True)
            subprocess.run(nexus + args, env=env, check=True)
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "NEXUS_ENV",
                    "NEXUS_S3_BUCKET",
                    "NEXUS_AWS_ENDPOINT_URL",
                    "AWS_REGION",
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                )
            }
        )
        from nexus_assets.lib.aws.aws_config import AwsSettings

        settings = AwsSettings.from_env(os.environ)
        keys = [o["Key"] for o in settings.object_store().list_keys("")]
        print(f"\nWhere things landed in s3://{settings.bucket}/ ({len(keys)} objects):")
        grouped = Counter("/".join(k.split("/")[:2]) for k in keys if not k.startswith("vkp/"))
        for prefix, count in sorted(grouped.items()):
            print(f"  {prefix}/...  {count} objects")
        for key in sorted(k for k in keys if k.startswith("vkp/")):
            print(f"  {key}")
        items = settings.client("dynamodb").scan(TableName=settings.records_table)["Items"]
        print(
            f"\nDynamoDB {settings.records_table}: {len(items)} items (asset × partition), "
            f"{settings.jobs_table}: job history above"
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
