"""Model loading, the shared init and precision. Constants here are importable without torch or transformers,
so the command line starts fast (`warm merge` and `warm --help` never import a model library they do not use)."""

DEFAULT_BACKBONE = "packaged:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16")
