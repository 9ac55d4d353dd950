"""MLflow tracking: the tracker of a run, the store it talks to, Keras-flavour model logging, and
the parent runs and summaries of ``-m`` sweeps."""
