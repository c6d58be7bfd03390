"""Where the configuration and scenario files live.

A built wheel carries them inside the package; an editable install reads the repository's
top-level `conf/` and `templates/`.
"""

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled_or_repo(name: str) -> Path:
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


CONF_DIR = _bundled_or_repo("conf")
TEMPLATES_DIR = _bundled_or_repo("templates")


def default_home() -> Path:
    """catalog.db and cache.db: $TIMEPOINT_HOME, else .timepoint/ in the working directory."""
    return Path(os.environ.get("TIMEPOINT_HOME", ".timepoint"))
