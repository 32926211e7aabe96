"""warm's rewards inside other libraries' trainers (TRL's GRPOTrainer and RLOOTrainer: `warm.integrations.reward_function.WarmRewardFunction`).

Nothing is imported here, so `import warm.integrations` costs nothing; import the submodule you need.
"""
