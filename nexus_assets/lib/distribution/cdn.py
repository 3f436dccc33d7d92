"""CloudFront invalidation after a publication, so school servers see the new catalog at once."""

from __future__ import annotations

import uuid
from typing import Any


def invalidate(client: Any, distribution_id: str, paths: list[str]) -> str:
    """Invalidate `paths` on the distribution; returns the invalidation id."""
    response = client.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": uuid.uuid4().hex},
    )
    return response["Invalidation"]["Id"]
