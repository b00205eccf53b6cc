"""Helpers shared by the benchmarks: the machine's description and the emotion test texts."""

import os
import platform
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "emotion"


def machine() -> str:
    """One line saying what the numbers were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return (f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}")


def test_split() -> tuple[list[str], list[str]]:
    """The 2,000 test texts and their labels."""
    rows = [line.rsplit(";", 1) for line in (SHARED / "test.txt").read_text().splitlines()]
    return [text for text, _ in rows], [label for _, label in rows]


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM; unlike ru_maxrss, not inherited at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")
