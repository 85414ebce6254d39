"""What edgeopt says while it works, on standard error; standard output is kept for results (``--json``).

- :func:`log`: one line, unless ``quiet`` (``-q``, ``--json``).
- :func:`progress`: a bar with ETA (tqdm) for work counted in steps (training epochs, tune trials), or, on a
  standard error that is not a terminal (CI logs, pipes), one line per step, so a log stays readable.
- :func:`working`: the elapsed time of one long step whose length is unknown beforehand (a MediaPipe environment,
  the emulator, the GPU driver, an instruction count, a GPU pass): a live timer on a terminal, a line every
  ``every`` seconds elsewhere, and the step's duration when it ends.
- :func:`native_quiet`: what native code (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate", TensorFlow's
  C++ logging, the converter) writes to file descriptor 2 goes to a temporary file for the duration, so a library
  call from Python prints nothing native. ``EDGEOPT_VERBOSE=1`` (``-v``) leaves it on the terminal.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

VERBOSE_ENV = "EDGEOPT_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def detail(quiet: bool, msg: str) -> None:
    """A line shown only with ``-v``."""
    if not quiet and verbose():
        print(msg, file=sys.stderr, flush=True)


def _tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Lines:
    """A progress 'bar' for a log: one line per step."""

    def __init__(self, total, desc):
        self.total, self.desc, self.n, self.t0 = total, desc, 0, time.perf_counter()

    def update(self, n: int = 1, note: str = "") -> None:
        self.n += n
        el = time.perf_counter() - self.t0
        eta = ""
        if self.total and self.n and self.n < self.total:
            eta = f", about {el / self.n * (self.total - self.n):.0f} s left"
        of = f"/{self.total}" if self.total else ""
        print(f"  {self.desc} {self.n}{of}{': ' + note if note else ''} ({el:.1f} s{eta})", file=sys.stderr,
              flush=True)

    def write(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, total, desc):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=f"  {desc}", file=sys.stderr, dynamic_ncols=True, leave=True,
                        bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}")

    def update(self, n: int = 1, note: str = "") -> None:
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(n)

    def write(self, msg: str) -> None:
        self.bar.write(msg, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class _Silent:
    def update(self, n: int = 1, note: str = "") -> None:
        pass

    def write(self, msg: str) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def progress(total, desc: str, quiet: bool):
    """``with progress(40, "train epochs", quiet) as p: ... p.update(1, "loss 0.41")``."""
    p = _Silent() if quiet else _Bar(total, desc) if _tty() else _Lines(total, desc)
    try:
        yield p
    finally:
        p.close()


@contextlib.contextmanager
def working(desc: str, quiet: bool, every: float = 30.0):
    """A long step of unknown length: a live timer on a terminal, a line every ``every`` s in a log, and its
    duration at the end (``desc: done in 73 s``)."""
    if quiet:
        yield
        return
    t0 = time.perf_counter()
    stop = threading.Event()
    tty = _tty()
    print(f"[edgeopt] {desc} ...", file=sys.stderr, flush=True)

    def tick():
        while not stop.wait(1.0 if tty else every):
            el = time.perf_counter() - t0
            if tty:
                print(f"\r  {desc}: {el:.0f} s", end="", file=sys.stderr, flush=True)
            else:
                print(f"  {desc}: still working ({el:.0f} s)", file=sys.stderr, flush=True)

    th = threading.Thread(target=tick, daemon=True)
    th.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        th.join()
        el = time.perf_counter() - t0
        print(("\r" if tty else "") + f"  {desc}: {'done' if ok else 'stopped'} in {el:.0f} s",
              file=sys.stderr, flush=True)


@contextlib.contextmanager
def native_quiet():
    """File descriptor 2 to a temporary file for the duration (native log lines), Python's ``sys.stderr`` kept on
    the terminal when it writes to fd 2. A no-op with EDGEOPT_VERBOSE=1 or when fd 2 is already redirected by the
    command line (edgeopt's own console script)."""
    import tempfile

    if verbose() or _REDIRECTED:
        yield
        return
    try:
        sys.stderr.flush()
        keep = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    try:
        uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):  # a notebook's stream: not file descriptor 2
        uses_fd2 = False
    saved_stream = sys.stderr
    sink = tempfile.TemporaryFile(prefix="edgeopt-native-")
    os.dup2(sink.fileno(), 2)
    if uses_fd2:
        sys.stderr = open(os.dup(keep), "w", buffering=1, encoding="utf-8", errors="replace")
    _REDIRECTED.append(sink)
    try:
        yield
    finally:
        _REDIRECTED.remove(sink)
        if uses_fd2:
            try:
                sys.stderr.flush()
                sys.stderr.close()
            except OSError:
                pass
            sys.stderr = saved_stream
        os.dup2(keep, 2)
        os.close(keep)
        sink.close()


_REDIRECTED: list = []


def mark_redirected(sink) -> None:
    """The console script redirected fd 2 for the whole process (cli/common.py): nested calls leave it be."""
    _REDIRECTED.append(sink)
