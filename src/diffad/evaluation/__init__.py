"""Measuring: `evaluate` (score, calibrate, measure), operating points (thresholds.py), reports."""
