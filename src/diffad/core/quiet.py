"""Nothing phones home: the analytics-off variables every entry point sets for itself.

DVC, Great Expectations and Prefect each send usage data unless told not to, and a worker, a
server host or a cron job does not run the shell a user configured. So every entry point
(``diffad``, ``python -m flows.*``, a flow run started by a Prefect worker) calls
:func:`quiet_environment` before any of them is imported; a value the user set is kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

QUIET = {
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
}


def quiet_environment(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set every :data:`QUIET` variable that ``env`` (default ``os.environ``) lacks; return ``env``."""
    env = os.environ if env is None else env
    for name, value in QUIET.items():
        env.setdefault(name, value)
    return env
