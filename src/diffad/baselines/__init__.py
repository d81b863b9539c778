"""PatchCore and PaDiM on the same backbone as the diffusion methods: the yardsticks."""
