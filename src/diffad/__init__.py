"""diffad: anomaly detection and localization with diffusion and score models."""

__version__ = "0.1.0"
