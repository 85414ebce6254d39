"""Running a setup tool (python -m venv, pip, apt-get, dpkg) so that an interrupt ends it with edgeopt.

``subprocess.run`` kills its own child on an exception, but not the child's children: ``python -m venv`` runs
ensurepip, pip runs its own processes, and those went on writing into a directory edgeopt was removing, for a
minute after "interrupted". A tool here runs in a session (process group) of its own, and on any exception in the
parent (SIGINT, SIGTERM turned into KeyboardInterrupt) the whole group is killed and waited for before the
exception goes on, so the clean-up that follows removes a directory nothing writes into any more.
"""
from __future__ import annotations

import os
import signal
import subprocess


def run_group(cmd: list, cwd=None, env=None, timeout=None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)``, killing the tool's whole process group if the
    parent is interrupted (or the timeout passes: ``subprocess.TimeoutExpired`` as usual)."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)
