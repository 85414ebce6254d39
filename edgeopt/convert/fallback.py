"""The fallback chain: the deployed conversion in the plan's quantization, then each of the target's
``fallback`` modes in order. A converter that fails or crashes is an outcome, recorded (mode, signal or error, the
model's layer types), never a lost build; with nothing left to try it is one line, exit 2, naming the fix."""
from __future__ import annotations

from ..console import log
from ..errors import ConversionError, ConverterCrash
from ..results import Attempt, Conversion


def convert_with_fallbacks(b, tp, k: str, model) -> tuple[bytes, str, Conversion]:
    """The deployed file of target plan ``tp``, converted through build session ``b`` (its memoized conversions):
    returns (bytes, deployed mode, the record of every attempt)."""
    from ..sources import layer_types_of

    chain = [tp.ptq, *[m for m in tp.target.fallback if m != tp.ptq]]
    attempts = []
    for mode in chain:
        try:
            data = b.convert(k, model, mode, tp.representative_samples, tp.target)
        except (ConverterCrash, ConversionError) as e:
            crash = isinstance(e, ConverterCrash)
            rec = Attempt(mode=mode, outcome="crashed" if crash else "failed", error=e.how if crash else e.what,
                          layer_types=tuple(sorted(layer_types_of(model))))
            attempts.append(rec)
            log(b.quiet, f"[edgeopt] {tp.target.name}: converting {mode} {rec.outcome} ({rec.error})"
                         + (f"; falling back to {chain[len(attempts)]}" if len(attempts) < len(chain) else ""))
            continue
        attempts.append(Attempt(mode=mode, outcome="converted"))
        return data, mode, Conversion(asked=tp.ptq, deployed=mode, attempts=tuple(attempts), fell_back=mode != tp.ptq)
    last = attempts[-1]
    tried = ", ".join(f"{a.mode} {a.outcome} ({a.error})" for a in attempts)
    raise ConversionError(f"{tp.target.name}: no conversion of {b.p.spec.name} succeeded: {tried}; layer types "
                          f"{', '.join(last.layer_types)}. Fix: add a fallback to the target (e.g. fallback: "
                          f"[dynamic, float32]) or choose another quantization with --ptq.")
