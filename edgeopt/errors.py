"""Every error class edgeopt raises or catches, in one place. Each user-facing error carries an exit code and a
one-line message: what is wrong, where, how to fix it (``what``, ``where`` and ``fix`` are fields of the error,
so code that reports only what went wrong reads ``err.what`` instead of cutting the message apart).

The CLI prints ``str(err)`` on one line and exits with ``err.exit_code``; ``EDGEOPT_DEBUG=1`` shows the
traceback instead. The last classes here are outcomes that never reach the user as errors: a converter process
that died (recorded, then a fallback is tried), a tune candidate stopped early or left without a cost (a trial's
outcome), a cache entry that failed verification (removed and recomputed).
"""
from __future__ import annotations

import difflib
import signal
from typing import Optional

FIX_MARK = " Fix: "

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_BUDGET = 3
EXIT_INTERNAL = 1


class EdgeOptError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with. Raised either with one message (``"WHERE: WHAT. Fix:
    FIX."``) or with the fields (``what=..., where=..., fix=...``), from which the message is written; either way
    the fields are set once, here."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: Optional[str] = None, *, what: Optional[str] = None, where: Optional[str] = None,
                 fix: Optional[str] = None):
        if message is None:
            message = (f"{where}: " if where else "") + (what or "").rstrip(".") + "." + (
                f"{FIX_MARK}{fix}" if fix else "")
        # One line, always: a multi-line message would break the CLI's contract.
        message = " ".join(str(message).split())
        super().__init__(message)
        if what is None:
            head, _, tail = message.partition(FIX_MARK)
            what, fix = head.rstrip(" ."), (tail or None) if fix is None else fix
        self.what, self.where, self.fix = what, where, fix


class InputError(EdgeOptError):
    """Bad input from the user: a file, a field, a name, a flag."""

    exit_code = EXIT_INPUT


class NotFoundError(InputError):
    """An unknown model, target or dataset name."""


class SpecError(InputError):
    """A ModelSpec / TargetProfile / Recipe file that does not validate."""


class DataError(InputError):
    """A dataset that is missing, malformed, empty, or fails its checksum."""


class ArtifactError(InputError):
    """A model file that cannot be read (corrupt, wrong format)."""


class OutputError(InputError):
    """An output location that cannot be written."""


class ConversionError(EdgeOptError):
    """The converter refused the model (unsupported op, type, ...)."""

    exit_code = EXIT_INPUT


class RuntimeFailure(EdgeOptError):
    """A runtime failed to load or run an artifact."""


class EmulatorError(EdgeOptError):
    """The emulated environment is missing, incomplete or inconsistent (exit 2: the fix is on the user's side)."""

    exit_code = EXIT_INPUT


class RemoteError(EdgeOptError):
    """The board cannot be reached or used as configured (exit 2: the fix is on the user's side)."""

    exit_code = EXIT_INPUT


class ClientError(EdgeOptError):
    """A client environment is missing or broken (exit 2: the fix is on the user's side)."""

    exit_code = EXIT_INPUT


class GpuError(EdgeOptError):
    """The GPU driver environment is missing or cannot be set up (exit 2: the fix is on the user's side)."""

    exit_code = EXIT_INPUT


# ------------------------------------------------------------------ outcomes, handled where they are raised
class ConverterCrash(Exception):
    """The converter process died (a signal, or an exit without a reply)."""

    def __init__(self, mode: str, returncode: int):
        self.mode, self.returncode = mode, returncode
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            self.how = f"{name} (exit {128 - returncode})"
        else:
            self.how = f"exit {returncode} without a result"
        super().__init__(f"the TFLite converter crashed converting {mode}: {self.how}")


class Hopeless(Exception):
    """A tune candidate stopped early: its dev accuracy during fine-tuning cannot meet the accuracy budget."""


class NoCost(Exception):
    """A tune candidate that ran but could not be costed (the counter failed on it): a failed trial, recorded."""


class BadEntry(Exception):
    """A cache entry that failed verification (the message says how)."""


def suggest(name: str, candidates) -> str:
    """' Did you mean x?' or '' (for error messages)."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
