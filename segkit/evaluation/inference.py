"""Prediction of one image of any size at its own resolution: whole-image or sliding window.

- ``whole``: the image goes through the training resize policy (``resize`` squashes,
  ``letterbox`` pads), the model predicts once, and the prediction is mapped back
  (``geometry.unfit``: padding removed, resized to the original size).
- ``tiled``: the image is scaled to a working scale (the training policy's ``rescale`` for crop
  policies, else ``scale``), and a window of the model's input size slides over it with
  ``overlap``; overlapping tiles are blended with weights that fall towards the tile borders,
  where a convolutional network sees the least context. Only ``batch_size`` tiles and one
  probability map at the working scale are held at once, so memory is bounded whatever the
  image size.

``auto`` picks ``tiled`` for crop policies (the model was trained on crops at that scale) and
``whole`` otherwise. Test-time augmentation averages the predictions of the image and its
horizontal and vertical flips.
"""

from __future__ import annotations

import numpy as np

from segkit.config.inference import InferenceConfig
from segkit.core.scores import labels_from_probabilities
from segkit.data import geometry


class Predictor:
    """Probabilities and labels of images of any size, from a model of fixed input size.

    Args:
        model: a Keras model [B, S, S, C] in [0, 1] -> [B, S, S, K] (K = 1: sigmoid, binary).
        policy: the training resize policy (``geometry.Policy``); ``policy.size`` must be S.
        settings: inference settings (the ``inference`` config node's schema, checked by
            ``segkit.config.validate``).
    """

    def __init__(self, model, policy: geometry.Policy, settings: InferenceConfig):
        self.model, self.policy, self.settings = model, policy, settings
        self.size = int(model.input_shape[1])
        self.channels = int(model.input_shape[-1])
        self.outputs = int(model.output_shape[-1])
        self.mode = settings.mode
        if self.mode == "auto":
            self.mode = "tiled" if policy.crops else "whole"

    def working_scale(self, height: int, width: int) -> float:
        """The factor tiled inference scales an image of this size by."""
        if self.policy.crops:
            return geometry.output_scale(self.policy, height, width)
        return self.settings.scale or 1.0

    def request(self, height: int, width: int) -> tuple[int, int]:
        """The smallest (height, width) an image must be decoded at for this prediction."""
        if self.mode == "whole":
            return geometry.request(self.policy, height, width)
        return geometry.decode_size(height, width, self.working_scale(height, width))

    def probabilities(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Probabilities float32 [H, W, K] at ``size`` (the original (height, width)) of an
        image uint8 [h, w, C] (possibly decoded at a reduced scale)."""
        height, width = size
        if self.mode == "whole":
            policy = whole_image_policy(self.policy)
            probs = self._predict(geometry.fit_image(image, policy)[None])[0]
            return geometry.unfit(probs, policy, height, width, source=image.shape[:2])
        scale = self.working_scale(height, width)
        work_h, work_w = max(1, round(height * scale)), max(1, round(width * scale))
        # Kept uint8: a float copy of a full-resolution image would cost 4x its memory.
        work = image
        if work.shape[:2] != (work_h, work_w):
            work = geometry.resize_image(image, work_h, work_w)
        probs = self._sliding_window(work)
        return geometry.resize_image(probs, height, width)

    def labels(self, probs: np.ndarray) -> np.ndarray:
        """Label map uint8 [H, W] of probabilities: thresholded (binary) or argmax."""
        return labels_from_probabilities(probs, self.settings.threshold).astype(np.uint8)

    def _sliding_window(self, image: np.ndarray) -> np.ndarray:
        """Blended tile predictions over an image uint8 [h, w, C] at the working scale."""
        size = self.size
        h, w = image.shape[:2]
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        if pad_h or pad_w:
            image = np.pad(
                image,
                ((0, pad_h), (0, pad_w), (0, 0)),
                constant_values=self.policy.pad_value,
            )
        H, W = image.shape[:2]  # noqa: N806
        stride = max(1, int(size * (1.0 - self.settings.overlap)))
        tops, lefts = _starts(H, size, stride), _starts(W, size, stride)
        weight = _tile_weight(size)
        total = np.zeros((H, W, self.outputs), np.float32)
        weights = np.zeros((H, W, 1), np.float32)
        corners = [(t, left) for t in tops for left in lefts]
        for i in range(0, len(corners), self.settings.batch_size):
            chunk = corners[i : i + self.settings.batch_size]
            batch = np.stack([image[t : t + size, c : c + size] for t, c in chunk])
            probs = self._predict(batch)
            for (t, c), p in zip(chunk, probs, strict=True):
                total[t : t + size, c : c + size] += p * weight
                weights[t : t + size, c : c + size] += weight
        return (total / weights)[:h, :w]

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Model probabilities float32 [B, S, S, K] of images [B, S, S, C] in 0..255, averaged
        over flips when ``tta`` is on."""
        x = batch.astype(np.float32) / 255.0
        if not self.settings.tta:
            return np.asarray(self.model.predict_on_batch(x), np.float32)
        variants = np.concatenate([x, x[:, :, ::-1], x[:, ::-1, :]])
        out = np.asarray(self.model.predict_on_batch(variants), np.float32)
        n = len(x)
        return (out[:n] + out[n : 2 * n, :, ::-1] + out[2 * n :, ::-1, :]) / 3.0


def whole_image_policy(policy: geometry.Policy) -> geometry.Policy:
    """The policy whole-image inference fits with: the training one, except that a model
    trained on crops sees the whole image squashed to its input size."""
    if policy.crops:
        return geometry.Policy("resize", policy.size, None, policy.pad_value, policy.ignore_index)
    return policy


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts covering [0, length) with windows of ``size``; the last ends at the end."""
    starts = list(range(0, max(1, length - size + 1), stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def _tile_weight(size: int) -> np.ndarray:
    """[S, S, 1] blending weights: a separable ramp, highest in the centre, never zero."""
    ramp = np.minimum(np.arange(size) + 1, np.arange(size, 0, -1)).astype(np.float32)
    ramp = np.minimum(ramp / (size / 4.0), 1.0)  # flat in the middle half
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp)[..., None]
