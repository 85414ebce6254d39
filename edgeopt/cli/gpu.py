"""CLI commands for LiteRT's GPU accelerator: ``gpu setup`` (the software Vulkan driver), ``gpu list`` (which
adapter would be used), ``gpu check ARTIFACT`` (partition and numerics of one file), registered on
``edgeopt.cli.common.main``."""
from __future__ import annotations

import click

from .common import Group, dump, handle_errors, main


@main.group(cls=Group)
def gpu():
    """LiteRT's GPU accelerator (WebGPU over Vulkan): set up a software driver, list adapters, check a file."""


@gpu.command("setup")
@click.option("--force", is_flag=True, help="Download and unpack again even when it is already set up.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def gpu_setup(force, as_json):
    """Set up Mesa's lavapipe (a software Vulkan device, from Debian bookworm-backports) and the Vulkan loader in
    the user cache, without root (idempotent). A real GPU's Vulkan driver, when installed, is used instead."""
    from ..gpu import install

    st = install.setup(quiet=as_json, force=force)
    if as_json:
        return dump(st)
    info = st["info"]
    click.echo(f"gpu: software Vulkan driver {'set up' if st['changed'] else 'already set up'} at {st['root']} "
               f"(Mesa {info['packages'].get('mesa-vulkan-drivers', '?')}, {info['size_bytes'] / 1e6:.1f} MB"
               + (f", {info['setup_seconds']:.0f} s" if st["changed"] else "") + f"): {info['adapter']['name']}, "
               f"software")


@gpu.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def gpu_list(as_json):
    """The adapter a GPU run would use: the system's Vulkan driver (a real GPU) when it has one, else the software
    driver of ``edgeopt gpu setup``; whether it is software."""
    from ..gpu import run

    ls = run.list_adapters()
    if as_json:
        return dump(ls)
    for name, key in (("system Vulkan drivers", "system"), ("software driver (edgeopt gpu setup)", "software")):
        a = ls[key].get("adapter")
        click.echo(f"  {name}: " + (f"{a['name']} ({a['backend']}, {a['type']}{', software' if a['software'] else ''})"
                                    if a else f"no adapter ({ls[key].get('reason')})"))
    sel = ls["selected"]
    if sel is None:
        click.echo(f"gpu: no GPU adapter. Fix: {run.SETUP_CMD} (a software Vulkan device), or install the GPU's "
                   f"Vulkan driver")
    else:
        click.echo(f"gpu: would use {sel['name']} ({sel['driver']}" + (", software: function and numerics only, no "
                                                                         "latency" if sel["software"] else "") + ")")
