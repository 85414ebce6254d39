"""Typed errors. Each carries an exit code and a one-line message: what is wrong, where, how to fix it.

The CLI prints ``str(err)`` on one line and exits with ``err.exit_code``; ``EDGEOPT_DEBUG=1`` shows the
traceback instead.
"""
from __future__ import annotations

import difflib

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_BUDGET = 3
EXIT_INTERNAL = 1


class EdgeOptError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str):
        # One line, always: a multi-line message would break the CLI's contract.
        super().__init__(" ".join(str(message).split()))


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


def suggest(name: str, candidates) -> str:
    """' Did you mean x?' or '' (for error messages)."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
