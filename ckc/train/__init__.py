"""Training: data, schedule, checkpoints, exports, curves and the training loop."""
