"""Optimizers and learning-rate schedules: registries of builders, ``OPTIMIZERS`` and ``SCHEDULES``.

A later training phase (``segkit.training.fit``) compiles a new optimizer whose schedule continues
where the first phase's left off, scaled: ``ScaledSchedule``. It is registered under segkit's
serialization package name, so checkpoints saved by any segkit version name it the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import lookup


@keras.saving.register_keras_serializable(package="segkit")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``scale * schedule(step + offset)``: a schedule resumed by a new optimizer, scaled.

    A fine-tuning phase compiles a new optimizer, whose step count starts at 0; the offset keeps
    the schedule where the first phase left it.
    """

    def __init__(self, schedule, scale: float, offset: int):
        self.schedule, self.scale, self.offset = schedule, float(scale), int(offset)

    def __call__(self, step):
        return self.scale * self.schedule(step + self.offset)

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "scale": self.scale,
            "offset": self.offset,
        }

    @classmethod
    def from_config(cls, config):
        schedule = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(schedule, config["scale"], config["offset"])


def build_schedule(
    trainer: DictConfig, steps_per_epoch: int, scale: float = 1.0, start_epoch: int = 0
):
    """Learning rate per step: a float (constant) or a cosine decay with linear warm-up.

    ``scale`` and ``start_epoch`` serve a later training phase: the rate is ``scale`` times the
    schedule's, starting ``start_epoch`` epochs into it.
    """
    name = option_value(trainer.schedule.name)
    schedule = lookup(SCHEDULES, name, "trainer.schedule.name")(trainer, steps_per_epoch)
    if isinstance(schedule, float):
        return schedule * scale
    if scale == 1.0 and start_epoch == 0:
        return schedule
    return ScaledSchedule(schedule, scale, start_epoch * steps_per_epoch)


def _constant(trainer: DictConfig, steps_per_epoch: int) -> float:
    """The learning rate itself, every step."""
    return float(trainer.optimizer.lr)


def _cosine(trainer: DictConfig, steps_per_epoch: int):
    """Cosine decay over the run to ``min_lr_ratio`` of the rate, after an optional linear
    warm-up from 1 % of it over ``warmup_epochs``."""
    opt, sched = trainer.optimizer, trainer.schedule
    total = max(1, steps_per_epoch * int(trainer.epochs))
    warmup = min(total - 1, steps_per_epoch * int(sched.warmup_epochs))
    if warmup > 0:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=float(opt.lr) * 0.01,
            warmup_target=float(opt.lr),
            warmup_steps=warmup,
            decay_steps=total - warmup,
            alpha=float(sched.min_lr_ratio),
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=float(opt.lr), decay_steps=total, alpha=float(sched.min_lr_ratio)
    )


# trainer.schedule.name -> builder (trainer node, steps per epoch) -> a float or a schedule.
SCHEDULES: dict[str, Callable] = {"constant": _constant, "cosine": _cosine}


def _adam(opt: DictConfig, lr) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=lr, weight_decay=float(opt.weight_decay) or None)


def _adamw(opt: DictConfig, lr) -> keras.optimizers.Optimizer:
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(opt.weight_decay))


def _sgd(opt: DictConfig, lr) -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(
        learning_rate=lr, momentum=float(opt.momentum), weight_decay=float(opt.weight_decay) or None
    )


# trainer.optimizer.name -> builder (optimizer node, learning rate or schedule) -> optimizer.
OPTIMIZERS: dict[str, Callable[[DictConfig, object], keras.optimizers.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
}


def build_optimizer(
    trainer: DictConfig, steps_per_epoch: int, lr_scale: float = 1.0, start_epoch: int = 0
) -> keras.optimizers.Optimizer:
    """The optimizer of ``trainer.optimizer`` with the learning-rate schedule (see
    ``build_schedule`` for ``lr_scale`` and ``start_epoch``)."""
    lr = build_schedule(trainer, steps_per_epoch, lr_scale, start_epoch)
    name = option_value(trainer.optimizer.name)
    return lookup(OPTIMIZERS, name, "trainer.optimizer.name")(trainer.optimizer, lr)
