"""Best-of-N: candidate pools, the exact subset estimator, its curves, and `warm bon`."""
