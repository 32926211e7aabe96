"""warm: Weight Averaged Reward Models (Ramé et al., 2024, arXiv 2401.12187)."""

__version__ = "0.1.0"
