"""RL fine-tuning against a warm reward: `warm rl`, its evaluations, and `warm rl-report`."""
