"""`warm check`: the reward of a model through every tool that loads it, against warm's own."""
