"""The poller's fork server (`stratoflow.workers.forkserver`) and its client
(`stratoflow.workers.forkspawn`), with real processes: what a forked child is, its exit
codes, signals, and what happens when the server or the poller goes away."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import stratoflow
from stratoflow.workers import forkspawn
from stratoflow.workers.forkspawn import (
    ForkedProcess,
    ForkServer,
    ForkServerError,
    ForkServerSpawner,
    fork_available,
    forkable,
    spawner_for,
)
from stratoflow.workers.processes import ChildProcess
from stratoflow.workers.warm import WarmSpawner

pytestmark = pytest.mark.skipif(not fork_available(), reason="the fork server needs Linux")

CHILD = '''
"""What a forked child does, by its first argument; it writes what it sees to argv[2]."""
import atexit
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

what, out = sys.argv[1], Path(sys.argv[2])
os.dup2(os.open(f"{out}.err", os.O_WRONLY | os.O_CREAT), 2)  # what it prints on stderr


def report(**extra):
    out.write_text(json.dumps({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sid": os.getsid(0),
        "threads": threading.active_count(),
        "random": random.random(),
        "argv": sys.argv,
        "main": __name__,
        **extra,
    }))


if what == "report":
    report()
elif what == "exit":
    sys.exit(int(sys.argv[3]))
elif what == "exit-message":
    sys.exit("the ledger does not balance")
elif what == "os-exit":
    os._exit(int(sys.argv[3]))
elif what == "raise":
    raise RuntimeError("a flow that crashes")
elif what == "kill-self":
    os.kill(os.getpid(), signal.SIGKILL)
elif what == "sleep":
    out.write_text("sleeping")
    time.sleep(float(sys.argv[3]))
    out.write_text("woke up")
elif what == "at-exit":
    # A non-daemon thread is joined, then atexit handlers run: in that order.
    def late():
        time.sleep(0.3)
        out.write_text("thread done")
    atexit.register(lambda: out.write_text(out.read_text() + ", atexit ran"))
    threading.Thread(target=late).start()
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "forked_child.py").write_text(textwrap.dedent(CHILD))
    sdk = str(Path(stratoflow.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), sdk])}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[ForkServer]:
    # Nothing preloaded: these tests are about the protocol, not the imports.
    server = ForkServer(env, preload=(), service_models=())
    assert server.wait_ready(30), server.error
    yield server
    server.close()


def wait(process: ChildProcess, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while (code := process.poll()) is None:
        assert time.monotonic() < deadline, f"process {process.pid} still runs"
        time.sleep(0.01)
    return code


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def child(what: str, out: Path, *args: str) -> list[str]:
    return ["-m", "forked_child", what, str(out), *args]


def test_a_forked_child_is_a_process_of_its_own(server: ForkServer, tmp_path: Path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    processes = [server.spawn(child("report", out)) for out in (first, second)]
    assert [wait(p) for p in processes] == [0, 0]
    seen = [json.loads(out.read_text()) for out in (first, second)]
    assert [s["pid"] for s in seen] == [p.pid for p in processes]
    assert {s["ppid"] for s in seen} == {server.process.pid}
    # A session of its own (a signal to the server's group does not reach it), one
    # thread, `random` reseeded, and the program is `python -m forked_child ...`.
    assert [s["sid"] for s in seen] == [s["pid"] for s in seen]
    assert [s["threads"] for s in seen] == [1, 1]
    assert seen[0]["random"] != seen[1]["random"]
    assert seen[0]["main"] == "__main__"
    assert Path(seen[0]["argv"][0]).name == "forked_child.py"
    assert seen[0]["argv"][1:] == ["report", str(first)]


@pytest.mark.parametrize(
    ("what", "args", "code"),
    [
        ("exit", ("0",), 0),
        ("exit", ("3",), 3),
        ("exit-message", (), 1),
        ("os-exit", ("7",), 7),
        ("raise", (), 1),
        ("kill-self", (), -signal.SIGKILL),
    ],
)
def test_exit_codes_are_popens(
    server: ForkServer,
    tmp_path: Path,
    what: str,
    args: tuple[str, ...],
    code: int,
):
    process = server.spawn(child(what, tmp_path / "out", *args))
    assert wait(process) == code
    assert server.alive  # a child's crash is the child's only
    printed = (tmp_path / "out.err").read_text()
    if what == "raise":
        assert "RuntimeError: a flow that crashes" in printed
    if what == "exit-message":
        assert printed == "the ledger does not balance\n"


def test_a_child_exits_after_its_threads_and_atexit_handlers(server: ForkServer, tmp_path: Path):
    out = tmp_path / "out"
    assert wait(server.spawn(child("at-exit", out))) == 0
    assert out.read_text() == "thread done, atexit ran"


def test_terminate_and_kill_reach_the_child(server: ForkServer, tmp_path: Path):
    outs = [tmp_path / "terminated", tmp_path / "killed"]
    terminated, killed = (server.spawn(child("sleep", out, "60")) for out in outs)
    eventually(lambda: all(out.exists() for out in outs))
    terminated.terminate()
    killed.kill()
    assert (wait(terminated), wait(killed)) == (-signal.SIGTERM, -signal.SIGKILL)
    # Signalling a child that ended is a no-op: the server signals only children it has
    # not reaped, whose pid no other process can have.
    killed.kill()
    assert server.alive


def test_the_server_dying_kills_its_children_and_the_poller_notices(
    server: ForkServer, tmp_path: Path
):
    out = tmp_path / "out"
    process = server.spawn(child("sleep", out, "60"))
    eventually(out.exists)
    os.kill(server.process.pid, signal.SIGKILL)
    assert wait(process) == -signal.SIGKILL  # what the poller reads: the run crashed
    eventually(lambda: gone(process.pid))  # killed by the kernel with its parent
    assert not server.alive
    with pytest.raises(ForkServerError, match=r"gone|died"):
        server.spawn(child("report", tmp_path / "late"))
    process.kill()  # the server is gone: nothing to signal, and no error


def test_the_poller_going_away_leaves_running_children_to_finish(
    server: ForkServer, tmp_path: Path
):
    out = tmp_path / "out"
    server.spawn(child("sleep", out, "1"))
    eventually(out.exists)
    # The poller's end closes (a SIGKILLed poller's does too): the server forks no
    # more, waits for its running child, and exits.
    server.close(timeout=20)
    assert out.read_text() == "woke up"
    assert server.process.returncode == 0


def test_the_spawner_restarts_a_dead_server(env: dict[str, str], tmp_path: Path):
    spawner = ForkServerSpawner(preload=(), service_models=())
    command = [sys.executable, *child("report", tmp_path / "out")]
    try:
        spawner.prime(env)
        first = spawner(command, env)
        assert isinstance(first, ForkedProcess)
        assert wait(first) == 0
        assert spawner.server is not None
        dead = spawner.server
        os.kill(dead.process.pid, signal.SIGKILL)
        eventually(lambda: not dead.alive)
        second = spawner(command, env)
        assert isinstance(second, ForkedProcess)
        assert wait(second) == 0
        assert spawner.server is not dead
        assert spawner.server.alive
    finally:
        spawner.close()


def test_a_server_that_cannot_start_leaves_runs_to_fresh_processes(
    env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    spawner = ForkServerSpawner(preload=("no_such_module_anywhere",), service_models=())
    out = tmp_path / "out"
    try:
        process = spawner([sys.executable, *child("report", out)], env)
        assert not isinstance(process, ForkedProcess)  # a spawned process (Popen)
        assert wait(process) == 0
        assert out.exists()
        assert "preloading failed" in caplog.text
        assert "fresh processes for the next 30 s" in caplog.text
        # Within that time, the next run does not wait for another failed start.
        started = time.monotonic()
        assert wait(spawner([sys.executable, *child("exit", out, "0")], env)) == 0
        assert spawner.server is not None and not spawner.server.alive
        assert time.monotonic() - started < 15
    finally:
        spawner.close()


def test_a_server_never_ready_is_killed_and_not_waited_for_again(
    env: dict[str, str], tmp_path: Path
):
    (tmp_path / "slow_import.py").write_text("import time\ntime.sleep(60)\n")
    spawner = ForkServerSpawner(preload=("slow_import",), service_models=(), ready_timeout=0.5)
    out = tmp_path / "out"
    try:
        started = time.monotonic()
        first = spawner([sys.executable, *child("report", out)], env)
        second = spawner([sys.executable, *child("exit", out, "0")], env)
        assert not isinstance(first, ForkedProcess) and not isinstance(second, ForkedProcess)
        assert (wait(first), wait(second)) == (0, 0)
        assert time.monotonic() - started < 10  # one wait of 0.5 s, not one per run
        assert spawner.server is not None
        assert spawner.server.process.wait(10) == -signal.SIGKILL
    finally:
        spawner.close()


def test_a_server_that_cannot_even_be_started_leaves_runs_to_fresh_processes(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_server(*_: object, **__: object) -> ForkServer:
        raise OSError("no more processes")

    monkeypatch.setattr(forkspawn, "ForkServer", no_server)
    spawner = ForkServerSpawner()
    process = spawner([sys.executable, *child("exit", tmp_path / "out", "4")], env)
    assert not isinstance(process, ForkedProcess)
    assert wait(process) == 4
    spawner.close()


def test_a_server_silent_past_the_timeout_is_not_waited_for(server: ForkServer, tmp_path: Path):
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ForkServerError, match="silent"):
            server.spawn(child("sleep", tmp_path / "late", "60"), timeout=0.3)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    # Forked after all, once the server went on: killed, as nobody waits for it. (The
    # server answers in order: by this next answer, that fork's was read.)
    assert wait(server.spawn(child("exit", tmp_path / "next", "0"))) == 0
    eventually(lambda: not children_of(server.process.pid))
    assert server.alive


def test_after_a_silent_server_the_next_runs_do_not_wait_for_it(
    env: dict[str, str], tmp_path: Path
):
    spawner = ForkServerSpawner(preload=(), service_models=(), reply_timeout=2.0)
    spawner.prime(env)
    assert spawner.server is not None and spawner.server.wait_ready(30)
    pid = spawner.server.process.pid
    command = [sys.executable, *child("exit", tmp_path / "out", "0")]
    os.kill(pid, signal.SIGSTOP)
    try:
        first = spawner(command, env)  # waits for the server's answer, in vain
        asked = time.monotonic()
        second = spawner(command, env)
        assert time.monotonic() - asked < 1.5  # not another 2 s wait
        assert [isinstance(p, ForkedProcess) for p in (first, second)] == [False, False]
        assert [wait(p) for p in (first, second)] == [0, 0]
    finally:
        os.kill(pid, signal.SIGCONT)
        spawner.close()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def test_the_default_server_preloads_a_flow_runs_modules_without_a_thread(
    env: dict[str, str], tmp_path: Path
):
    server = ForkServer(env)
    try:
        assert server.wait_ready(60), server.error  # not ready if preloading left a thread
        out = tmp_path / "out"
        code = (
            "import json, sys, threading; "
            "from stratoflow.backends.aws import clients; "
            "s = clients.new_session('us-east-1'); "
            f"open({str(out)!r}, 'w').write(json.dumps(["
            "'stratoflow.workers.execute' in sys.modules, "
            "clients._preloaded is not None, "
            "threading.active_count()]))"
        )
        (tmp_path / "probe.py").write_text(code)
        assert wait(server.spawn(["-m", "probe"])) == 0
        assert json.loads(out.read_text()) == [True, True, 1]
    finally:
        server.close()


def test_only_python_dash_m_commands_are_forked():
    assert forkable([sys.executable, "-m", "stratoflow.cli", "flow-run", "execute", "r"]) == [
        "-m",
        "stratoflow.cli",
        "flow-run",
        "execute",
        "r",
    ]
    assert forkable(["strato", "flow-run", "execute", "r"]) is None
    assert forkable([sys.executable, "script.py"]) is None


def test_the_start_method_setting_chooses_the_spawner(monkeypatch: pytest.MonkeyPatch):
    assert isinstance(spawner_for("forkserver"), ForkServerSpawner)
    assert isinstance(spawner_for("spawn"), WarmSpawner)
    monkeypatch.setattr(forkspawn.sys, "platform", "darwin")
    assert isinstance(spawner_for("forkserver"), WarmSpawner)
