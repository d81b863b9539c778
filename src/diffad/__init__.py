"""diffad: anomaly detection and localization with diffusion and score models."""

from diffad.quiet import QUIET as QUIET_ENV
from diffad.quiet import quiet_environment as _quiet_environment

__version__ = "0.1.0"

# Nothing phones home from any entry point (the stages, `diffad`, the flows, the dashboard all import
# this package first): the tools' usage analytics are off unless the user set these. Prefect's
# telemetry heartbeat also raced its own SQLite database ("database is locked" tracebacks).
_quiet_environment()

__all__ = ["QUIET_ENV"]
