"""`python -m bench._process_probe OUT ARGS...`: `strato ARGS...`, and at its exit this
process's CPU time and memory written to OUT as JSON (for bench/process_start.py).

CPU time is the process's own: a forked child's count starts at its fork (POSIX resets
a child's usage), a spawned process's includes starting Python and importing. Memory
is from /proc/self/smaps_rollup: `private_kb` is what this process alone holds (a
forked child shares the rest with its fork server until it writes to it).
"""

from __future__ import annotations

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def _write(out: Path) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]
    memory = {key: int(value.split()[0]) for key, value in (line.split(":", 1) for line in rollup)}
    out.write_text(
        json.dumps(
            {
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "rss_kb": memory["Rss"],
                "private_kb": memory["Private_Clean"] + memory["Private_Dirty"],
            }
        )
    )


if __name__ == "__main__":
    atexit.register(_write, Path(sys.argv[1]))
    sys.argv = ["strato", *sys.argv[2:]]
    runpy.run_module("stratoflow.cli", run_name="__main__")
