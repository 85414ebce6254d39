"""Latency over a grid of runtime options (threads x XNNPACK on/off), after warm-up, with percentiles."""
from __future__ import annotations

from .. import runtimes
from ..console import detail
from ..runtimes import RuntimeOptions


def grid(target_threads: int, delegates) -> list[RuntimeOptions]:
    """1 thread and the target's threads, each with XNNPACK on and off (on only if the target allows it)."""
    threads = sorted({1, target_threads})
    xnn = [True, False] if "xnnpack" in delegates else [False]
    return [RuntimeOptions(threads=t, xnnpack=x) for t in threads for x in xnn]


def measure(path, tokens, options_list, warmup: int = 20, iterations: int = 200, quiet: bool = False) -> list:
    out = []
    for opts in options_list:
        sess = runtimes.load(path, opts)
        st = sess.benchmark(tokens, warmup=warmup, iterations=iterations)
        detail(quiet, f"  latency {path.name if hasattr(path, 'name') else path}: threads={opts.threads} "
                      f"xnnpack={'on' if opts.xnnpack else 'off'} (applied: {st.delegate_applied}) "
                      f"p50 {st.p50_ms:.4f} ms p90 {st.p90_ms:.4f} ms"
                      + (f" [XNNPACK refused: {st.delegate_error[:80]}]" if st.delegate_error else ""))
        out.append(st)
    return out


def pick(stats: list, threads: int, xnnpack: bool):
    """The row a latency budget is checked against: the target's thread count and delegate setting."""
    for s in stats:
        if s.threads == threads and s.xnnpack == xnnpack:
            return s
    return None


class LatencyValidator:
    """The build machine's latency over the request's grid of runtime options (labelled with the machine: the
    build machine's clock, never a device's)."""

    name = "latency"
    section = None  # the build composes it into the manifest's metrics

    def applies(self, req) -> bool:
        return req.latency is not None

    def measure(self, req, so_far):
        from .base import Latency

        plan = req.latency
        rows = measure(req.path, req.split.x[:plan.inputs], list(plan.options), plan.warmup, plan.iterations,
                       req.quiet)
        return Latency(tuple(rows))
