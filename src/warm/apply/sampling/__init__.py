"""Sampling answers from a policy: the prompts it reads, the per-row sampler, and `warm generate`."""
