"""edgeopt: an edge-deployment compiler for on-device NLP models.

Public API (importing it does not import TensorFlow)::

    import edgeopt
    plan = edgeopt.plan("banking77-cnn", ["pixel-7"])
    results = edgeopt.build(plan)                   # one BuildResult per target (typed manifest, notebook display)
    spec = edgeopt.spec_from_data(train=df)         # your data: a DataFrame or (texts, labels)
    edgeopt.predict("build/banking77-cnn/pixel-7", ["I lost my card"])

See docs/python.md.
"""
from ._version import __version__


def plan(model, targets, out=None, ptq=None, recipe=None, passes=None, use_cache=True, formats="target",
         emulate=False, count=None, on_device=False):
    """Resolve and check a build (no training): model/target names or paths, optional recipe file, pass configs
    (``edgeopt.recipe.PruneConfig`` ...) keyed by pass name; ``count``: count instructions per inference on the
    target's CPU (None: when its budgets or cost model are about instructions); ``on_device``: measure latency on
    the target's board (device.remote, over SSH)."""
    from .pipeline import plan as _plan

    return _plan(model, list(targets), out=out, ptq=ptq, recipe=recipe, passes=passes, use_cache=use_cache,
                 formats=formats, emulate=emulate, count=count, on_device=on_device)


def build(plan_or_model, targets=None, quiet=False, latency=None, **plan_kw):
    """Run a plan (or plan ``plan_or_model`` for ``targets`` first); returns one BuildResult per target."""
    from .pipeline import LatencySettings, Plan
    from .pipeline import build as _build

    from .console import native_quiet

    p = plan_or_model if isinstance(plan_or_model, Plan) else plan(plan_or_model, targets or [], **plan_kw)
    with native_quiet():  # LiteRT's and TensorFlow's native log lines off the notebook / terminal
        return _build(p, quiet=quiet, latency=latency or LatencySettings())


def tune(model, target, **kw):
    """Search ``target``'s space (runtime, quantization, XNNPACK, threads, compression) for the best artifact of
    ``model`` under its budgets, on the dev split; build the pick. See ``edgeopt.search.run.tune`` for the options
    (out, trials, timeout, objective, storage, study, resume, dry_run, quiet, latency, teachers, on_device)."""
    from .console import native_quiet
    from .search import tune as _tune

    with native_quiet():
        return _tune(model, target, **kw)


def evaluate(model, target, candidate=None, split="dev", **kw):
    """Measure one candidate (``edgeopt.Candidate``; default the target's preset) of ``model`` on ``target``:
    quality on ``split``, size, the device's cost signal and the build machine's latency. For many candidates
    keep one ``edgeopt.Evaluator`` (it shares trained passes and conversions between them)."""
    from .console import native_quiet
    from .search import evaluate as _evaluate

    with native_quiet():
        return _evaluate(model, target, candidate, split, **kw)


def count_instructions(artifact, cpu="cortex-a76", xnnpack=True, text=None):
    """Instructions per inference of a ``.tflite``/``.onnx`` file on an emulated arm64 core (``edgeopt emulator
    list``; needs ``edgeopt emulator setup``) or on ``"x86"`` (valgrind), batch 1, one thread: a dict with
    ``instructions`` (None with ``error`` when it could not be counted), ``spread`` and ``seconds``. An
    instruction count, not a time. ``text`` is encoded by the tokenizer beside the artifact (else all-<unk>)."""
    from .emulator.counter import count_artifact

    return count_artifact(artifact, cpu, xnnpack, text)


def __getattr__(name):  # without importing anything heavy at ``import edgeopt``
    if name in ("Candidate", "Evaluator"):
        from . import search as _t

        return getattr(_t, name)
    if name == "LatencySettings":  # warm-up and timed calls of every latency measurement
        from .pipeline.plan import LatencySettings

        return LatencySettings
    if name in ("InputError", "EdgeOptError"):  # what a call with bad input raises
        from . import errors

        return getattr(errors, name)
    if name == "machine_info":  # what this machine is (latency labels)
        from .runtimes.base import machine_info

        return machine_info
    raise AttributeError(f"module 'edgeopt' has no attribute {name!r}")


def spec_from_data(train, dev=None, test=None, text_column="text", label_column="label", arch="text_cnn",
                   name="mydata", data_dir=None):
    """A ModelSpec for your own data: each split a pandas DataFrame or a pair ``(texts, labels)`` (dev and test carved
    from train, seeded, when absent); the reference architecture ``arch`` (text_cnn, bilstm, transformer) with its
    reference settings. ``edgeopt.build(spec, ["pixel-7"])`` builds it."""
    from .ownspec import spec_from_data as _sfd

    return _sfd(train, dev, test, text_column, label_column, arch, name, data_dir)


def spec_from_csv(train, dev=None, test=None, text_column="text", label_column="label", arch="text_cnn", name=None):
    """A ModelSpec for CSV/JSONL files, as ``edgeopt build --csv`` makes it."""
    from .ownspec import spec_from_files

    return spec_from_files(train, dev, test, text_column, label_column, arch, name)


def load(path, quiet=True):
    """A deployed file (``.tflite``/``.onnx``, or a build directory) ready to classify text: the tokenizer and
    labels beside it (a build) or inside it (MediaPipe metadata). ``load(p).predict(["text"])``. No TensorFlow."""
    from .predict import load as _load

    return _load(path, quiet=quiet)


def predict(path, texts, top_k=3):
    """Classify ``texts`` (a string or a list) with the deployed file at ``path``: for each text its top labels
    with probabilities (a tagger: its tags and entities), as ``edgeopt predict`` prints them."""
    from .console import native_quiet

    if isinstance(texts, str):
        texts = [texts]
    with native_quiet():
        return load(path).predict(list(texts), top_k=top_k)


def load_target(ref):
    from .registry import load_target as _lt

    return _lt(ref)


def load_model_spec(ref):
    from .registry import load_model_spec as _lm

    return _lm(ref)


__all__ = ["__version__", "plan", "build", "tune", "evaluate", "count_instructions", "Candidate", "Evaluator", "LatencySettings",
           "load_target", "load_model_spec", "machine_info", "spec_from_data", "spec_from_csv", "load", "predict",
           "InputError",
           "EdgeOptError"]
