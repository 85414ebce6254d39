"""`edgeopt cache list|clean`: what edgeopt downloaded or set up (edgeopt/cachedirs.py), its size, and removing it.
Never imports TensorFlow."""
from __future__ import annotations

import click

from .common import Group, dump, handle_errors, main


@main.group(cls=Group)
def cache():
    """List and remove what edgeopt downloaded or set up (EDGEOPT_CACHE_DIR, default ~/.cache/edgeopt)."""


@cache.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def cache_list(as_json):
    """Each cache entry: what it is, where, how big."""
    from .. import writer as w
    from ..cachedirs import listing

    rows = listing()
    if as_json:
        return dump(rows)
    for r in rows:
        click.echo(f"{r['name']:<26} {w.size(r['size_bytes']) if r['exists'] else '-':>9}  {r['path']}")
        click.echo(f"{'':<26} {'':>9}  {r['what']}")
    click.echo(f"{'total':<26} {w.size(sum(r['size_bytes'] for r in rows)):>9}")


@cache.command("clean")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every entry.")
@handle_errors
def cache_clean(names, everything):
    """Remove NAMES (artifacts, counts, datasets, teachers, data, clients, emulator, gpu) or --all. Environments
    are set up again on next use; only what edgeopt wrote is removed."""
    from .. import writer as w
    from ..cachedirs import clean, entries
    from ..errors import InputError

    if not names and not everything:
        raise InputError("edgeopt cache clean: nothing named. Fix: name entries (see `edgeopt cache list`) or give "
                         "--all.")
    done = clean(tuple(e.name for e in entries()) if everything else names)
    for d in done:
        click.echo(f"removed {d['name']} ({w.size(d['size_bytes'])}): {d['path']}")
    if not done:
        click.echo("nothing to remove")
