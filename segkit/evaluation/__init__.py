"""Evaluation at the original resolution, prediction of images of any size, and model I/O.

``challenge`` (per-image and challenge scores), ``inference`` (whole-image and sliding-window
prediction), ``postprocess``, ``figures``, ``evaluator`` (a split), ``model_io`` (load and log
models), ``callbacks`` (validation predictions per epoch), ``commands`` (the entry points' work).
"""
