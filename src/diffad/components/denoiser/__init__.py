"""The EDM pixel denoiser D(x; sigma): preconditioning, UNet, loss, sampler, training, checkpoints."""
