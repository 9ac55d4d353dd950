"""A callback that logs the predictions of a few fixed validation images as one image per epoch,
so the masks can be watched forming in the MLflow UI (the run's images, by step)."""

from __future__ import annotations

import keras
import numpy as np

from segkit.core.scores import labels_from_probabilities
from segkit.data.loader import SampleLoader
from segkit.evaluation.figures import prediction_strip

KEY = "val_predictions"


class PredictionSamples(keras.callbacks.Callback):
    """After each epoch: predict ``images`` and log image | truth | prediction rows.

    Args:
        tracker: the run's tracker (``log_image``).
        images: uint8 [N, S, S, C] as the model sees them (fitted, not augmented).
        masks: uint8 [N, S, S] labels.
        num_classes: classes including background.
        threshold: foreground threshold of binary models.
    """

    def __init__(self, tracker, images, masks, num_classes: int, threshold: float = 0.5):
        super().__init__()
        self.tracker, self.images, self.masks = tracker, images, masks
        self.num_classes, self.threshold = num_classes, threshold

    def on_epoch_end(self, epoch, logs=None):
        # A plain forward pass, not predict_on_batch: under a tf.distribute strategy that would
        # split the batch across replicas (padding it) and, with several workers, wait for
        # collectives the other workers never join (only the chief has this callback).
        x = self.images.astype(np.float32) / 255.0
        probs = keras.ops.convert_to_numpy(self.model(x, training=False)).astype(np.float32)
        labels = labels_from_probabilities(probs, self.threshold).astype(np.uint8)
        strip = prediction_strip(self.images, self.masks, labels, self.num_classes)
        self.tracker.log_image(strip, KEY, step=epoch)


def prediction_samples(cfg, index, tracker) -> list[keras.callbacks.Callback]:
    """The callback for a training run, or none (``tracking.sample_predictions: 0``, tracking
    off, or no validation samples)."""
    count = int(cfg.tracking.get("sample_predictions", 0) or 0)
    samples = index.splits.get("val", [])[:count]
    if count <= 0 or getattr(tracker, "run_id", None) is None or not samples:
        return []
    loader = SampleLoader(
        samples, index.labels, cfg.dataset, training=False, cache_dir=cfg.cache_dir
    )
    pairs = [loader(i) for i in range(len(samples))]
    images = np.stack([p[0] for p in pairs])
    masks = np.stack([p[1] for p in pairs])
    return [PredictionSamples(tracker, images, masks, int(cfg.dataset.num_classes))]
