"""How many CPU threads the local model gets by default: one per physical core we may use."""
from __future__ import annotations

import os
import re
from pathlib import Path


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1  # respects taskset/cgroup cpusets
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def physical_cores() -> int:
    """CPUs available to us, counting each physical core once (SMT siblings add little to llama.cpp)."""
    threads_per_core = 1
    try:
        info = Path("/proc/cpuinfo").read_text()
        siblings = re.search(r"^siblings\s*:\s*(\d+)", info, re.M)
        cores = re.search(r"^cpu cores\s*:\s*(\d+)", info, re.M)
        if siblings and cores and int(cores.group(1)) > 0:
            threads_per_core = max(1, int(siblings.group(1)) // int(cores.group(1)))
    except OSError:  # not Linux: assume two threads per core, as most laptops have
        threads_per_core = 2
    return max(1, available_cpus() // threads_per_core)


def auto_threads() -> int:
    """Threads when `local.threads` is 0: one per physical core.

    The worker runs them with OMP_WAIT_POLICY=PASSIVE (see local_worker). Measured with
    Qwen2.5-Coder-0.5B on 2 cores, ~450 prompt tokens (bench/local_generation.py):
    idle, 2 spinning threads: first token 3.1 s, 39 tokens/s; 2 passive: 3.1 s, 21/s; 1: 6.1 s,
    24/s. With one other busy process: 2 spinning threads collapsed to 13 s and 0.3 tokens/s,
    2 passive gave 6.2 s and 21/s, 1 thread 6.0 s and 23/s. Passive threads on every core
    halve the idle wait for the first token and cost nothing under load.
    """
    return physical_cores()
