"""MSMA, multiscale score-matching analysis: the score norms of an image at many noise levels
(scores.py), a Gaussian mixture over the per-image norms (mixture.py) and the PatchFlow over the
per-patch norms (patchflow/), whose -log p is the heatmap."""
