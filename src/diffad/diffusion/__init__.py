"""The EDM-preconditioned denoiser D(x; sigma): UNet, training loop, sampler, DDIM reconstruction."""
