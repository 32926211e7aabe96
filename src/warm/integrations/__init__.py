"""warm's rewards inside other libraries' trainers (TRL's GRPOTrainer and RLOOTrainer: `warm.integrations.trl`).

Nothing is imported here, so `import warm.integrations` costs nothing; import the submodule you need.
"""
