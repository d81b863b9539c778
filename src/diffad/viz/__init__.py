"""Pictures out: heatmap overlays, montages, sample grids."""
