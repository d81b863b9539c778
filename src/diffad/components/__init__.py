"""Parts several methods share: the detector interface and registry, the EDM pixel denoiser
(``denoiser/``), the pretrained backbone and its patch embedding, the coreset, the MSMA score norms.
Nothing here imports a method."""
