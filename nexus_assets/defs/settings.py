"""The code location's settings (`nexus_assets.settings.Settings`), read once when Dagster loads it.

Definitions, resources, sensors and schedules take their values from here; a run's worker process
loads the code location again and so reads the same environment the daemon or webserver was given.
What a run reads while it executes goes through the module attribute (`code_location.SETTINGS`), so
`nexus build`, which executes runs in its own process, hands them the command's settings (`using`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nexus_assets.settings import Settings

SETTINGS = Settings.from_env()


@contextmanager
def using(settings: Settings) -> Iterator[Settings]:
    """Runs executed in this process within the block see `settings` (the command's own)."""
    global SETTINGS
    previous, SETTINGS = SETTINGS, settings
    try:
        yield settings
    finally:
        SETTINGS = previous


def automation_on() -> bool:
    """Sensors and schedules start running in aws mode (production) and stopped locally (turn them on in
    the UI)."""
    return SETTINGS.deployment == "aws"
