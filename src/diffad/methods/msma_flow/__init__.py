"""MSMA with PatchFlow: a position-conditioned normalizing flow over per-patch score norms."""
