"""The code location's settings (`nexus_assets.settings.Settings`), read once when Dagster loads it.

Definitions, resources, sensors and schedules take their values from here; a run's worker process
loads the code location again and so reads the same environment the daemon or webserver was given.
"""

from nexus_assets.settings import Settings

SETTINGS = Settings.from_env()
