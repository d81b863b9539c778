"""PatchCore: nearest-neighbour distance to a coreset of good patch features."""
