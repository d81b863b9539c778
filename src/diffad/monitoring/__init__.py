"""Production monitoring: the scores log of `diffad predict`, drift statistics, the monitor decision."""
