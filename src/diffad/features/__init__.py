"""The pretrained EfficientNet-Lite0 backbone (offline weights) and its feature maps."""
