"""Training: precision, distribution, optimizers, losses, Keras metrics, callbacks, checkpoints,
signals, a run's resumable state, and the fit loop with its phases."""
