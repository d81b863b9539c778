"""MSMA with a Gaussian mixture over an image's multiscale score norms (image scores only)."""
