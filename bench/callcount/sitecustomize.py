"""Counts the AWS API calls of a whole process tree (benchmarks only).

A benchmark puts this directory first on PYTHONPATH of a process it starts (a worker)
and sets STRATOFLOW_BENCH_CALLS to a directory: every Python process of the tree (the
worker, its flow-run processes) then hooks every botocore session it creates with
`bench/calls.py`'s CallLog and writes the log to `<directory>/<pid>.json` when it exits.
Without STRATOFLOW_BENCH_CALLS this module does nothing.
"""

from __future__ import annotations

import os

_DIRECTORY = os.environ.get("STRATOFLOW_BENCH_CALLS")

if _DIRECTORY:
    import atexit
    import importlib.util
    import json
    import pathlib
    import sys

    import botocore.handlers

    _spec = importlib.util.spec_from_file_location(
        "_stratoflow_bench_calls", pathlib.Path(__file__).resolve().parent.parent / "calls.py"
    )
    assert _spec is not None and _spec.loader is not None
    _calls = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_calls)
    _log = _calls.CallLog()
    # Every botocore session registers the builtin handlers when it is created.
    botocore.handlers.BUILTIN_HANDLERS += [
        ("provide-client-params", _log.before),
        ("before-parameter-build.dynamodb", _calls.remember_params),
        ("after-call.dynamodb", _log.after),
    ]

    def _write() -> None:
        if sum(_log.calls.values()):
            path = pathlib.Path(_DIRECTORY) / f"{os.getpid()}.json"
            path.write_text(json.dumps({**_log.dump(), "argv": sys.argv[1:]}))

    atexit.register(_write)
