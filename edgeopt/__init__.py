"""edgeopt: an edge-deployment compiler for on-device NLP models.

Public API (importing it does not import TensorFlow)::

    import edgeopt
    plan = edgeopt.plan("banking77-cnn", ["pixel-7"])
    results = edgeopt.build(plan)
"""
__version__ = "0.1.0"


def plan(model, targets, out=None, ptq=None):
    from .pipeline import plan as _plan

    return _plan(model, list(targets), out=out, ptq=ptq)


def build(plan_or_model, targets=None, out=None, ptq=None, quiet=False):
    from .pipeline import Plan, build as _build, plan as _plan

    p = plan_or_model if isinstance(plan_or_model, Plan) else _plan(plan_or_model, list(targets or []), out, ptq)
    return _build(p, quiet=quiet)


def load_target(ref):
    from .registry import load_target as _lt

    return _lt(ref)


def load_model_spec(ref):
    from .registry import load_model_spec as _lm

    return _lm(ref)


__all__ = ["__version__", "plan", "build", "load_target", "load_model_spec"]
