"""Serving: the fitted models of a category, the model bundle, ``diffad predict`` and the
dashboard's live scoring. Measuring (metrics, thresholds, reports) is :mod:`diffad.evaluation`."""
