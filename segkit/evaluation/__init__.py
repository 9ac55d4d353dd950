"""Evaluation and inference: prediction of images of any size (``inference``), post-processing,
per-image and challenge scores (``challenge``), a split's evaluation at the original resolution
(``evaluator``), figures, the per-epoch validation predictions (``callbacks``) and the model to
evaluate (``model_source``)."""
