"""The one place edgeopt's version is written (imported by the package, the CLI, manifests and cache keys)."""
__version__ = "0.1.0"
