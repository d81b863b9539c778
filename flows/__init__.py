"""Prefect orchestration of the DVC pipeline (glue only: DVC owns the stage graph and the cache).

``flows.retrain``     the ``retrain`` flow (one category) and the ``retrain-all`` fan-out
``flows.data_watch``  retrain when the raw data's content hash changed since the last accepted run
``flows.serve``       a single-process alternative to workers: every schedule served by one process
"""

# first: importing the package turns the tools' analytics off (diffad.core.quiet) before any flow module
# imports Prefect, DVC or Great Expectations (a worker runs none of our shells)
import diffad.core  # noqa: F401
