"""`edgeopt targets` and `edgeopt models`: the built-in and user target profiles and model specs (list, show,
check). Never imports TensorFlow."""
from __future__ import annotations

import click

from .common import Group, dump, handle_errors, main


@main.group(cls=Group)
def targets():
    """List, show and check target profiles."""


@targets.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def targets_list(as_json):
    """List the built-in targets."""
    from ..registry import list_targets

    ts = list_targets()
    if as_json:
        return dump([t.model_dump(mode="json") for t in ts])
    for t in ts:
        click.echo(f"{t.name:<24} {t.device.arch:<7} {t.runtime.name}/{t.runtime.format} {t.quantization:<8} "
                   f"{t.runtime.threads} threads  {t.description}")


@targets.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def targets_show(name, as_json):
    """Show one target (name or YAML path), fully resolved with defaults."""
    import yaml

    from ..registry import load_target

    t = load_target(name).model_dump(mode="json")
    dump(t) if as_json else click.echo(yaml.safe_dump(t, sort_keys=False, width=100).rstrip())


@targets.command("check")
@click.argument("file", type=click.Path())
@handle_errors
def targets_check(file):
    """Validate a target YAML file; exit 2 with the field and the fix if it is wrong."""
    from ..errors import InputError
    from ..specs import load_target_file
    from ..validate.budgets import host_latency_problem

    t = load_target_file(file)
    if problem := host_latency_problem(t):  # what a build on this machine would refuse
        raise InputError(problem)
    click.echo(f"{file}: OK (target {t.name}, {t.device.arch}, {t.quantization})")


# ---------------------------------------------------------------------------------------------- models
@main.group(cls=Group)
def models():
    """List and show reference model specs."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def models_list(as_json):
    """List the built-in model specs."""
    from ..registry import list_models

    ms = list_models()
    if as_json:
        return dump([m.model_dump(mode="json") for m in ms])
    for m in ms:
        click.echo(f"{m.name:<24} {m.model_label:<14} {m.data.dataset or 'files':<10} {m.description}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def models_show(name, as_json):
    """Show one model spec (name or YAML path), fully resolved with defaults."""
    import yaml

    from ..registry import load_model_spec

    m = load_model_spec(name).model_dump(mode="json")
    dump(m) if as_json else click.echo(yaml.safe_dump(m, sort_keys=False, width=100).rstrip())
