"""Every anomaly-detection method, one folder each (``<name>/detector.py`` registers it)."""
