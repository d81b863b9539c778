"""The artifact contract: every path under reports/, models/ and runs/ (:mod:`.layout`) and the
shape of every JSON artifact with typed readers and writers (:mod:`.records`, :mod:`.runs`).

Stages write through it, the flows and the dashboard read through it; nothing else spells an
artifact's path or key.
"""

from diffad.artifacts.layout import (
    BundleDir,
    ProjectLayout,
    ReportsDir,
    RunsDir,
    ValidationDir,
)
from diffad.artifacts.records import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "BundleDir", "ProjectLayout", "ReportsDir", "RunsDir", "ValidationDir"]
