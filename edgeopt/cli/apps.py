"""CLI commands for the app end of a build: ``predict`` and ``client setup | list`` (registered on
``edgeopt.cli.common.main``; one module per command group)."""
from __future__ import annotations

import sys

import click

from .common import Group, dump, handle_errors, main


@main.command()
@click.argument("artifact", type=click.Path())
@click.argument("texts", nargs=-1)
@click.option("--top-k", "-k", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Labels shown per text, best first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the artifact, the tokenizer's source and "
                                                       "every text's top-k labels with scores.")
@handle_errors
def predict(artifact, texts, top_k, as_json):
    """Run TEXTS (or each line of standard input) through ARTIFACT: a build directory, or a .tflite/.onnx file.

    The tokenizer and labels are those beside the artifact (its build directory) or, for a .tflite on its own,
    those inside its metadata. Scores are softmax probabilities. No TensorFlow is imported.
    """
    from ..errors import InputError
    from ..predict import format_predictions, load

    if not texts:
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no text given. Fix: pass TEXT arguments or pipe lines on standard input.")
        texts = _stdin_lines()
        if not texts:
            raise InputError("standard input held no text. Fix: one text a line.")
    p = load(artifact)
    rows = p.predict(list(texts), top_k)
    if as_json:
        return dump({"artifact": str(p.artifact), "tokenizer": p.source, "top_k": top_k, "predictions": rows})
    click.echo(f"# {p.artifact} (tokenizer and labels: {p.source})")
    click.echo(format_predictions(rows))


MAX_LINE_CHARS = 100_000  # a text to classify; a longer line is not a sentence (or it is /dev/zero)
MAX_LINES = 1_000_000


def _stdin_lines() -> list[str]:
    """The non-empty lines of standard input, each read with a limit: a line past MAX_LINE_CHARS or input past
    MAX_LINES is refused in one line, never read without end."""
    from ..errors import InputError

    texts = []
    while True:
        ln = sys.stdin.readline(MAX_LINE_CHARS + 1)
        if not ln:
            return texts
        if len(ln) > MAX_LINE_CHARS and not ln.endswith("\n"):
            raise InputError(f"standard input: line {len(texts) + 1} is longer than {MAX_LINE_CHARS:,} characters; "
                             f"not a text to classify. Fix: one text a line.")
        if ln.strip():
            texts.append(ln.rstrip("\r\n"))
            if len(texts) > MAX_LINES:
                raise InputError(f"standard input: more than {MAX_LINES:,} lines. Fix: split the input.")


@main.group(cls=Group)
def client():
    """The real client libraries run as checks (MediaPipe Tasks): set up, list."""


@client.command("setup")
@click.option("--force", is_flag=True, help="Rebuild even when already set up.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def client_setup(force, as_json):
    """Create the MediaPipe environments (metadata writer, TextClassifier) in EDGEOPT_CLIENT_DIR (idempotent)."""
    from ..clients import env

    res = env.setup(quiet=as_json, force=force)
    if as_json:
        return dump(res)
    for st in res:
        click.echo(f"{st['name']}: {'set up' if st['changed'] else 'already set up'} at {st['path']} "
                   f"({st['package']}, {st['size_bytes'] / 1e6:.0f} MB)")


@client.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def client_list(as_json):
    """The client environments, what each is for, and whether it is ready."""
    from ..clients import env

    res = [env.status(n) for n in env.ENVS]
    if as_json:
        return dump(res)
    for st in res:
        click.echo(f"{st['name']}: {'ready' if st['ready'] else 'NOT ready: ' + '; '.join(st['problems'])} "
                   f"({st['package']}; {st['role']}; {st['path']})")
