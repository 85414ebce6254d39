"""The `edgeopt` command: a package with one module per command group (build, cache, catalog, evidence, apps, gpu, init, tune)
and their shared parts in ``common``. Thin: parse flags, call the API, print. `--help`, `targets`, `models` and
`inspect` never import TensorFlow."""
from . import apps, build, cache, catalog, evidence, gpu, init, tune  # noqa: F401  (register every command on ``main``)
from .common import entry, main, native_log_tail

__all__ = ["entry", "main", "native_log_tail"]

if __name__ == "__main__":  # pragma: no cover
    main()
