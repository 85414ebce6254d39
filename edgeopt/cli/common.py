"""What every command module of the CLI shares: the root group ``main`` (``edgeopt``), the one-line error
handling (``handle_errors``, usage errors through ``Group``), ``dump`` for ``--json``, shared options, the console
script ``entry`` (SIGTERM as Ctrl-C, native log lines off the terminal). Command modules import from here and
never from each other."""
from __future__ import annotations

import functools
import json
import os
import sys

import click

from .._version import __version__
from ..errors import EdgeOptError
from ..urls import scrub

MAX_ITER = 1_000_000  # timed calls: more than enough for any percentile; larger counts only exhaust memory


def options(*decorators):
    """Click options shared by several commands, applied in order (one definition, one help text)."""
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return apply


# MODEL as the user's own Keras file (build, tune)
model_file_options = options(
    click.option("--data", "data", default=None, help="With MODEL a model file: the data (a built-in dataset name, "
                                                      "or a data YAML with a 'data:' section)."),
    click.option("--vocab", "vocab", default=None, type=click.Path(),
                 help="With MODEL a model file: the vocabulary it was trained with (one token a line)."),
    click.option("--hf-tokenizer", "hf_tokenizer", default=None, type=click.Path(),
                 help="With MODEL a model file: the Hugging Face tokenizers JSON it was trained with."),
    click.option("--fit", is_flag=True, help="With MODEL a model file: train it on the data first (from its weights)."),
    click.option("--trust-model-code", is_flag=True,
                 help="Allow Lambda layers in a model file (their Python code runs when it is loaded)."),
    click.option("--custom-module", default=None, help="Module defining the custom Keras layers a model file uses."),
    click.option("--labels", "labels", default=None, type=click.Path(),
                 help="With MODEL a model file: its output labels in output order, one a line (default: the data's "
                      "order, a CSV's labels sorted)."))

# every latency measurement's warm-up and timed calls (build, tune)
latency_options = options(
    click.option("--latency-warmup", type=click.IntRange(0, MAX_ITER), default=50, show_default=True,
                 help="Untimed calls before each latency measurement."),
    click.option("--latency-iterations", type=click.IntRange(10, MAX_ITER), default=500, show_default=True,
                 help="Timed calls per latency configuration (percentiles are taken over these)."))


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except EdgeOptError as e:
            if os.environ.get("EDGEOPT_DEBUG") == "1":
                raise
            click.echo(f"edgeopt: error: {scrub(str(e))}", err=True)  # a URL's password never shows
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            conv = sys.modules.get("edgeopt.convert.worker")
            if conv is not None:  # the converter process ends with us, not after its next conversion
                conv.worker().kill()
            click.echo("edgeopt: interrupted; nothing half-written was left in place.", err=True)
            # every clean-up ran while the interrupt unwound the stack; TensorFlow's own teardown at exit takes a
            # second or more, so the process ends here
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(130)
    return wrapper


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C: staging directories removed, nothing half-written


def _quiet_native_logs() -> None:
    """Send what native code (TensorFlow's C++ logging, the TFLite converter, XNNPACK's INFO lines) writes to file
    descriptor 2 to a temporary file, while Python's sys.stderr (edgeopt's progress and errors) keeps the terminal.
    The captured lines are shown when edgeopt fails with an internal error. EDGEOPT_DEBUG=1 leaves fd 2 alone."""
    import atexit
    import tempfile

    try:
        sys.stderr.flush()
        keep = os.dup(2)
        log = tempfile.TemporaryFile(prefix="edgeopt-native-")
        os.dup2(log.fileno(), 2)
    except OSError:
        return
    sys.stderr = open(keep, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    _NATIVE_LOG.append(log)
    atexit.register(log.close)


_NATIVE_LOG: list = []


def native_log_tail(lines: int = 20) -> str:
    if not _NATIVE_LOG:
        return ""
    f = _NATIVE_LOG[0]
    f.flush()
    f.seek(0)
    return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])


def entry():
    """The `edgeopt` console script: SIGTERM handled like Ctrl-C, native log lines off the terminal."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    if os.environ.get("EDGEOPT_DEBUG") != "1":
        _quiet_native_logs()
    try:
        main()
    except Exception:
        tail = native_log_tail()
        if tail:
            print(f"native log (last lines):\n{tail}", file=sys.stderr)
        raise


def dump(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


class Group(click.Group):
    """Usage errors (a bad flag value, a missing argument) in the one-line form every other error has."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            if os.environ.get("EDGEOPT_DEBUG") == "1":
                raise
            cmd = e.ctx.command_path if e.ctx is not None else ctx.command_path
            click.echo(f"edgeopt: error: {scrub(' '.join(e.format_message().split()))} Fix: see `{cmd} --help`.",
                       err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeopt")
def main():
    """edgeopt: build, compress, convert and validate text models for edge devices."""
