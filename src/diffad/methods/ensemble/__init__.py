"""The standardised average of msma_gmm, msma_flow and ddim."""
