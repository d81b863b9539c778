"""Prefect orchestration of the DVC pipeline (glue only: DVC owns the stage graph and the cache).

``flows.retrain``     the ``retrain`` flow (one category) and the ``retrain-all`` fan-out
``flows.data_watch``  retrain when the raw data's content hash changed since the last accepted run
``flows.serve``       a single-process alternative to workers: every schedule served by one process
"""

from diffad.quiet import quiet_environment

# before Prefect, DVC or Great Expectations is imported by any flow module (a worker runs none of our shells)
quiet_environment()
