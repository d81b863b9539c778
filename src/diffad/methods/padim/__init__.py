"""PaDiM: Mahalanobis distance of each patch feature to a Gaussian per position."""
