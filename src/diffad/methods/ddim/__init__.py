"""DDIM reconstruction (after DDAD): distance between an image and its denoised reconstruction."""
