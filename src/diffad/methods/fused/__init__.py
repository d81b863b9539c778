"""A weighted fusion of diffusion and feature-memory maps, weights fitted on calibration images."""
