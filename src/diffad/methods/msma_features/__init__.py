"""MSMA in feature space: score norms of an EDM denoiser trained on the backbone's patch features."""
