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
    click.option("--pad-token", default=None,
                 help="With --vocab or --hf-tokenizer: the padding token the model was trained with (default <pad>; "
                      "a tokenizers file: its own padding token), e.g. [PAD]."),
    click.option("--unk-token", default=None,
                 help="With --vocab: the unknown-word token the model was trained with (default <unk>), e.g. [UNK]."),
    click.option("--fit", is_flag=True, help="With MODEL a model file: train it on the data first (from its weights)."),
    click.option("--trust-model-code", is_flag=True,
                 help="Allow Lambda layers in a model file (their Python code runs when it is loaded)."),
    click.option("--custom-module", default=None, help="Module defining the custom Keras layers a model file uses."),
    click.option("--labels", "labels", default=None, type=click.Path(),
                 help="With MODEL a model file: its output labels in output order, one a line (default: the data's "
                      "order, a CSV's labels sorted)."))

# your own data in one command (build, tune, init): a spec made from CSV/JSONL files (edgeopt/ownspec.py)
own_data_options = options(
    click.option("--csv", "csv_train", default=None, type=click.Path(),
                 help="Your training data: a CSV (or JSONL) file with a text column and a label column. Builds the "
                      "reference architecture on it (MODEL is then left out; see --arch)."),
    click.option("--dev", "csv_dev", default=None, type=click.Path(),
                 help="With --csv: the dev file (default: a seeded, stratified 10% of the training file)."),
    click.option("--test", "csv_test", default=None, type=click.Path(),
                 help="With --csv: the test file (default: a seeded, stratified 10% of the training file, taken "
                      "first)."),
    click.option("--text-column", default="text", show_default=True, help="With --csv: the text column."),
    click.option("--label-column", default="label", show_default=True, help="With --csv: the label column."),
    click.option("--arch", type=click.Choice(["text_cnn", "bilstm", "transformer"]), default=None,
                 help="With --csv: the architecture (default text_cnn), with its reference spec's settings."),
    click.option("--name", "spec_name", default=None, help="With --csv: the model's name (default: the file's)."))


def own_data_spec(model, csv_train, csv_dev, csv_test, text_column, label_column, arch, spec_name):
    """The ModelSpec that --csv means, or None when --csv is not given (its companions are refused alone)."""
    from ..errors import InputError

    if csv_train is None:
        given = [f for f, v in (("--dev", csv_dev), ("--test", csv_test), ("--arch", arch), ("--name", spec_name),
                                ("--text-column", text_column != "text" and text_column),
                                ("--label-column", label_column != "label" and label_column)) if v]
        if given:
            raise InputError(f"{given[0]} applies with --csv TRAIN.csv. Fix: add --csv, or set it in the spec.")
        return None
    if model is not None:
        raise InputError(f"--csv builds the reference architecture on your data; MODEL {model!r} was also given. "
                         f"Fix: drop MODEL (choose the architecture with --arch), or, for your own model file, give "
                         f"MODEL with --data FILE.yaml.")
    from ..ownspec import spec_from_files

    return spec_from_files(csv_train, csv_dev, csv_test, text_column, label_column, arch or "text_cnn", spec_name)


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
    from ..console import mark_redirected

    mark_redirected(log)  # the library's own native_quiet() leaves it be
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
    args = sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    if "-v" in args or "--verbose" in args:  # -v: native log lines on the terminal too (read before parsing)
        os.environ["EDGEOPT_VERBOSE"] = "1"
    if os.environ.get("EDGEOPT_DEBUG") != "1" and os.environ.get("EDGEOPT_VERBOSE") != "1":
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
@click.option("--verbose", "-v", is_flag=True, help="More detail: every latency configuration, native log lines.")
def main(verbose):
    """edgeopt: build, compress, convert and validate text models for edge devices."""
    if verbose:
        os.environ["EDGEOPT_VERBOSE"] = "1"
