"""What every other package uses: errors, atomic files, logs, typed YAML, torch runtime, map helpers.

Importing it turns the tools' usage analytics off (every entry point imports it first, through any
diffad module): nothing phones home from the stages, `diffad`, the flows or the dashboard, unless
the user set those variables. Prefect's telemetry heartbeat also raced its own SQLite database.
"""

from diffad.core.quiet import QUIET as QUIET_ENV
from diffad.core.quiet import quiet_environment as _quiet_environment

_quiet_environment()

__all__ = ["QUIET_ENV"]
