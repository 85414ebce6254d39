"""Running a setup tool (python -m venv, pip, apt-get, dpkg) so that an interrupt ends it with edgeopt.

``subprocess.run`` kills its own child on an exception, but not the child's children: ``python -m venv`` runs
ensurepip, pip runs its own processes, and those went on writing into a directory edgeopt was removing, for a
minute after "interrupted". Here, on any exception in the parent (SIGINT, or SIGTERM turned into
KeyboardInterrupt), the tool and every process under it (found through ``/proc``: no library lists a process tree
without a new dependency) are killed and waited for before the exception goes on, so the clean-up that follows
removes a directory nothing writes into any more. The tool stays in edgeopt's process group, so a signal to the
group (a terminal's Ctrl-C, a supervisor's killpg) reaches it as before.
"""
from __future__ import annotations

import os
import signal
import subprocess


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (children first found, then theirs), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name (field 2) may hold spaces and parentheses
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def kill_tree(p: subprocess.Popen) -> None:
    """SIGKILL ``p`` and everything under it, then reap ``p``."""
    for pid in [*_descendants(p.pid), p.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    p.wait()


def run_group(cmd: list, cwd=None, env=None, timeout=None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)``, killing the tool and every process under it if
    the parent is interrupted (or the timeout passes: ``subprocess.TimeoutExpired`` as usual)."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        kill_tree(p)
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)
