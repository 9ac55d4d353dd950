"""segkit: config-driven experiments for U-Net-family segmentation models."""

__version__ = "0.1.0"
