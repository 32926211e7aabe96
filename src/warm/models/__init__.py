"""Model loading and saving, the input contract of a model directory, the shared init, the runtime (device,
precision, trainer arguments) and the packaged policy."""
