"""Prefect orchestration of the DVC pipeline (glue only: DVC owns the stage graph and the cache).

``flows.retrain``     the ``retrain`` flow (one category) and the ``retrain-all`` fan-out
``flows.data_watch``  retrain when the raw data's content hash changed since the last accepted run
``flows.serve``       a single-process alternative to workers: every schedule served by one process
"""

import diffad  # noqa: F401, E402  (first: it turns the tools' analytics off before Prefect is imported)
