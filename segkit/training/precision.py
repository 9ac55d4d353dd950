"""``trainer.precision=auto``: the dtype policy this machine trains fastest under without harm.

- ``mixed_float16`` on GPUs with fast float16 (tensor cores: compute capability 7.0 or newer;
  they all have bfloat16 from 8.0 on too, but float16 keeps more mantissa bits and Keras scales
  the loss for it);
- ``mixed_bfloat16`` on a CPU with native bfloat16 (AVX512_BF16 or AMX_BF16 in its flags);
- ``float32`` otherwise (older GPUs, CPUs that would emulate 16-bit floats).

The facts are gathered by ``detect_hardware`` and the rule is the pure function ``choose``, so
that the rule can be tested for machines other than the one running the tests. A run sets the
policy before its model is built and restores the previous one after (``precision_policy``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from segkit.core.errors import ConfigError

# /proc/cpuinfo flags that mean the CPU computes bfloat16 natively (oneDNN uses them).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
FAST_FLOAT16_CAPABILITY = (7, 0)


@dataclass(frozen=True)
class Hardware:
    """What the precision rule looks at: GPU compute capabilities and CPU feature flags."""

    gpu_capabilities: tuple[tuple[int, int], ...] = ()
    cpu_flags: frozenset[str] = field(default_factory=frozenset)


def choose(hardware: Hardware) -> tuple[str, str]:
    """The dtype policy for ``hardware`` and the reason, as a short phrase for the log."""
    gpus = hardware.gpu_capabilities
    if gpus:
        slowest = min(gpus)
        version = f"{slowest[0]}.{slowest[1]}"
        if slowest >= FAST_FLOAT16_CAPABILITY:
            return "mixed_float16", f"GPU compute capability {version} has fast float16"
        return "float32", f"GPU compute capability {version} has no fast float16"
    native = sorted(set(BF16_CPU_FLAGS) & hardware.cpu_flags)
    if native:
        return "mixed_bfloat16", f"no GPU; the CPU has native bfloat16 ({', '.join(native)})"
    return "float32", "no GPU and no native bfloat16 on the CPU"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """Feature flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def detect_hardware() -> Hardware:
    """The GPUs TensorFlow sees (with their compute capability) and the CPU's flags."""
    import tensorflow as tf  # lazy: the rule (and its tests) need no TensorFlow

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        # A GPU that reports no capability (not CUDA) is treated as one without fast float16.
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return Hardware(tuple(capabilities), cpu_flags())


BFLOAT16_CAPABILITY = (8, 0)


def check(configured: str, hardware: Hardware) -> str:
    """Why ``configured`` suits ``hardware`` (or what it costs there).

    A policy that merely runs slowly is allowed with a warning in the reason: ``mixed_float16``
    on a CPU or an old GPU (emulated), ``mixed_bfloat16`` on a CPU without native bfloat16 (the
    results are right, and a config moved between machines keeps working).

    Raises:
        ConfigError: ``mixed_bfloat16`` on GPUs older than compute capability 8.0, which have
            no bfloat16 kernels for many of the model's ops (the run would fail mid-way).
    """
    gpus = hardware.gpu_capabilities
    if configured == "mixed_bfloat16" and gpus and min(gpus) < BFLOAT16_CAPABILITY:
        version = ".".join(str(v) for v in min(gpus))
        raise ConfigError(
            f"trainer.precision=mixed_bfloat16: this GPU (compute capability {version}) has no "
            "bfloat16 support; use trainer.precision=mixed_float16, float32 or auto"
        )
    if configured == "mixed_float16" and (not gpus or min(gpus) < FAST_FLOAT16_CAPABILITY):
        return "set in trainer.precision (slow here: float16 is emulated on this hardware)"
    if configured == "mixed_bfloat16" and not gpus and not set(BF16_CPU_FLAGS) & hardware.cpu_flags:
        return "set in trainer.precision (slow here: the CPU has no native bfloat16)"
    return "set in trainer.precision"


def resolve(configured: str) -> tuple[str, str]:
    """The dtype policy to train under and why: ``configured`` (checked against the hardware,
    see ``check``), or ``choose``'s for ``auto``.

    Raises:
        ConfigError: the configured policy cannot run on this hardware.
    """
    hardware = detect_hardware()
    if configured != "auto":
        return configured, check(configured, hardware)
    return choose(hardware)


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the duration of a run, then restore the previous one."""
    import keras  # lazy: the rule (and its tests) need no TensorFlow

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
