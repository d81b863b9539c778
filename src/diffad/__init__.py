"""diffad: anomaly detection and localization with diffusion and score models."""

import os as _os

__version__ = "0.1.0"

# Nothing phones home from any entry point (the stages, `diffad`, the flows, the dashboard all import
# this package first): the tools' usage analytics are off unless the user set these. Prefect's
# telemetry heartbeat also raced its own SQLite database ("database is locked" tracebacks).
QUIET_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
}
for _name, _value in QUIET_ENV.items():
    _os.environ.setdefault(_name, _value)
