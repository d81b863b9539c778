"""diffad: anomaly detection and localization with diffusion and score models.

Layers, each importing only itself and the ones before it (the order and the reasons are kept in
tests/unit/test_import_layers.py, which checks it): ``core`` -> ``artifacts`` -> ``data`` ->
``metrics`` -> ``viz`` -> ``components`` (shared by several methods) -> ``methods/<name>/`` (one
folder per method, none importing another) -> ``config`` -> ``registry`` -> ``inference`` (the
served path) -> ``evaluation`` (measures through it) -> ``feedback`` -> ``monitoring`` -> ``cli``.
The stage scripts (``stages/``), the flows and the dashboard sit on top.
"""
