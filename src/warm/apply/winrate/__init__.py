"""Win rates of two policies judged by a reward model: `warm winrate`."""
