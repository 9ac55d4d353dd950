"""The commands: the ``Run`` that assembles a training run, evaluate, predict, inspect, compare,
the sweep callback, and the command-line error handling they share."""
