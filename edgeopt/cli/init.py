"""`edgeopt init NAME --csv TRAIN.csv`: write the ModelSpec that `edgeopt build --csv TRAIN.csv` builds, for
editing (edgeopt/ownspec.py). Never imports TensorFlow."""
from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors, main


@main.command()
@click.argument("name")
@click.option("--csv", "csv_train", required=True, type=click.Path(),
              help="The training data: a CSV (or JSONL) file with a text column and a label column.")
@click.option("--dev", "csv_dev", default=None, type=click.Path(), help="The dev file (default: carved from train).")
@click.option("--test", "csv_test", default=None, type=click.Path(), help="The test file (default: carved from train).")
@click.option("--text-column", default="text", show_default=True, help="The text column.")
@click.option("--label-column", default="label", show_default=True, help="The label column.")
@click.option("--arch", type=click.Choice(["text_cnn", "bilstm", "transformer"]), default="text_cnn",
              show_default=True, help="The architecture, with its reference spec's settings.")
@click.option("--out", "-o", default=None, type=click.Path(), help="The spec file to write (default NAME.yaml).")
@handle_errors
def init(name, csv_train, csv_dev, csv_test, text_column, label_column, arch, out):
    """Write NAME.yaml: the ModelSpec `edgeopt build --csv` would build (the reference settings, your files), to
    edit and build with `edgeopt build NAME.yaml`. Never overwrites a file."""
    from ..ownspec import spec_from_files, write_spec

    path = Path(out) if out else Path(f"{name}.yaml")
    spec = spec_from_files(csv_train, csv_dev, csv_test, text_column, label_column, arch, name,
                           relative_to=path.parent)
    write_spec(path, spec, Path(csv_train).name)
    click.echo(f"wrote {path}: {spec.description}; seq_len {spec.tokenizer.seq_len}. Build it: edgeopt build {path}")
