"""What this machine's CPU is and has: its model name, feature flags, and the CPUs this process may
run on. One copy, read by training (the fastest settings), deployment (which paths can run, and a
timing's validity) and the benchmarks."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU listed in ``cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(flags: frozenset[str]) -> bool:
    """Whether a CPU with these flags computes in bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (``platform.processor()`` where ``cpuinfo`` has none)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, object]:
    """This machine as results record it: CPU model, logical cores and the installed torch version."""
    try:
        from importlib.metadata import version

        torch_version: str | None = version("torch")
    except Exception:  # noqa: BLE001  (a version is a label; its absence is not an error)
        torch_version = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch_version}


def span(starts: list[str], finishes: list[str]) -> dict[str, object]:
    """The first start, the last finish (ISO 8601 strings) and the wall seconds between them."""
    from datetime import datetime

    first, last = min(starts), max(finishes)
    seconds = (datetime.fromisoformat(last.replace("Z", "+00:00"))
               - datetime.fromisoformat(first.replace("Z", "+00:00"))).total_seconds()
    return {"first_start": first, "last_finish": last, "wall_s": seconds}
