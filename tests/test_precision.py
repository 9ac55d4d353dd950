"""``trainer.precision=auto``: the rule for each kind of hardware, and this machine's choice."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from segkit.core.errors import ConfigError
from segkit.training import precision
from segkit.training.precision import Hardware, choose


@pytest.mark.parametrize(
    ("hardware", "policy"),
    [
        (Hardware(((7, 0),)), "mixed_float16"),  # V100: tensor cores
        (Hardware(((9, 0), (9, 0))), "mixed_float16"),  # H100s
        (Hardware(((6, 1),)), "float32"),  # Pascal: no fast float16
        (Hardware(((8, 6), (6, 1))), "float32"),  # the slowest replica decides
        (Hardware((), frozenset({"avx2", "avx512_bf16"})), "mixed_bfloat16"),
        (Hardware((), frozenset({"amx_bf16", "amx_tile"})), "mixed_bfloat16"),
        (Hardware((), frozenset({"avx2", "avx512f"})), "float32"),
        (Hardware(((7, 5),), frozenset({"avx512_bf16"})), "mixed_float16"),  # GPU trains
    ],
)
def test_rule_for_each_kind_of_hardware(hardware, policy):
    chosen, reason = choose(hardware)
    assert chosen == policy
    assert reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\nbogomips\t: 1\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def test_configured_policy_is_kept_and_auto_follows_this_machine():
    assert precision.resolve("float32") == ("float32", "set in trainer.precision")
    assert precision.resolve("auto") == choose(precision.detect_hardware())


def run_script(name: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=3600,
    )


@pytest.mark.slow
def test_bfloat16_validation_dice_stays_within_001_of_float32(tmp_path):
    # The `make train` run (20 epochs on the synthetic task) under both policies: ~15 min on 2 CPUs.
    result = run_script("check_precision.py", "--policies", "float32,mixed_bfloat16", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "within 0.01 of float32: ok" in result.stdout


def test_configured_policy_is_checked_against_the_hardware():
    old_gpu = precision.Hardware(gpu_capabilities=((7, 5),))
    with pytest.raises(ConfigError, match="trainer.precision=mixed_bfloat16.*7.5"):
        precision.check("mixed_bfloat16", old_gpu)
    assert "slow here" in precision.check("mixed_float16", precision.Hardware())
    assert "slow here" in precision.check("mixed_bfloat16", precision.Hardware())
    assert precision.check("mixed_float16", old_gpu) == "set in trainer.precision"
    assert precision.check("float32", precision.Hardware()) == "set in trainer.precision"
