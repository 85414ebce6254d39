"""Emulated validation: run an artifact on emulated arm64 CPUs (qemu-user) through the same runtime session the
host uses, and compare with the host.

Per CPU model: did it load, which ops the runtime rejected (if any), whether XNNPACK was applied (read from the
guest's loaded graph), the ops left outside the delegate, accuracy over the test split (or a declared sample),
and parity with the host's outputs on the same inputs:

- int8-output artifacts (a quantized output tensor): every output within 1 quantization step of the host's;
- float outputs: |guest - host| <= FLOAT_ATOL + FLOAT_RTOL * |host| per output (summation order and FMA differ
  between x86 and arm64 kernels);
- dynamic-range ("hybrid") models quantize activations at run time with ISA-specific integer kernels. ONNX
  Runtime's x86 AVX2 u8s8 kernels saturate in some rows (VPMADDUBSW's int16 pair sums); its arm64 kernels do
  not. Measured on banking77-cnn (jetson-orin-nano-cpu, 1,000 test sentences): 54 rows differ by more than
  1e-3, and on those the x86 host is 0.42-0.55 away from the float32 model while the emulated arm64 result is
  0.07-0.10 away: the host is the less exact one. The bound is stated on the logit scale: every row's largest
  difference <= HYBRID_RANGE x the host row's (max - min), and argmax agreement >= HYBRID_ARGMAX.

Emulated wall time is recorded as ``emulated_wall_seconds`` and is never device latency.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log, working
from ..errors import EmulatorError
from . import plugin
from .env import CPU_MODELS, guest_python, require_cpu_model, runtime_for, stage_request, status

FLOAT_ATOL, FLOAT_RTOL = 1e-4, 1e-3
HYBRID_RANGE, HYBRID_ARGMAX = 0.10, 0.99
STEP_LIMIT = 1.0
EMULATED_TIME_NOTE = "qemu wall time for the whole sample: emulation speed, NOT device latency"


def require_ready(arch: str = "arm64") -> Path:
    st = status(arch)
    if not st["ready"]:
        raise EmulatorError(f"the {arch} emulator is not ready: {'; '.join(st['problems'])}. Fix: edgeopt emulator "
                            f"setup --arch {arch}")
    return Path(st["root"])


def output_scale(artifact: Path, session) -> Optional[float]:
    """The quantization step of the model's output when it is computed in integers: the output tensor's scale,
    or, for an int8 graph that ends in DEQUANTIZE (float output), the scale of the integer tensor it dequantizes.
    None for float graphs."""
    if runtime_for(artifact) == "litert":
        scale, _ = session._out["quantization"]
        if session._out["dtype"] in (np.int8, np.uint8, np.int16) and scale:
            return float(scale)
        from ..inspect import read_tflite

        S, model, _ = read_tflite(artifact)
        sub = model.Subgraphs(0)
        out = sub.Outputs(0)
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            if out not in [op.Outputs(j) for j in range(op.OutputsLength())]:
                continue
            oc = model.OperatorCodes(op.OpcodeIndex())
            if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) != S.BuiltinOperator.DEQUANTIZE:
                return None
            t = sub.Tensors(op.Inputs(0))
            q = t.Quantization()
            if t.Type() in (S.TensorType.INT8, S.TensorType.UINT8, S.TensorType.INT16) and q is not None \
                    and q.ScaleLength() == 1:
                return float(q.Scale(0))
        return None
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(artifact))
    inits = {i.name: i for i in m.graph.initializer}
    out = m.graph.output[0].name
    for node in m.graph.node:
        if out in node.output and node.op_type == "DequantizeLinear" and node.input[1] in inits:
            s = numpy_helper.to_array(inits[node.input[1]])
            return float(s.reshape(-1)[0]) if s.size == 1 else None
    return None


def run_in_guest(r: Path, artifact: Path, tokens: np.ndarray, cpu: str, threads: int, xnnpack: bool,
                 timeout: float = 1800) -> tuple[Optional[np.ndarray], dict]:
    """(outputs or None, what the guest reported) for ``artifact`` on ``tokens`` under ``qemu -cpu cpu``."""
    work = Path(tempfile.mkdtemp(prefix="edgeopt-emu-"))
    try:
        stage_request(work, artifact, tokens, threads, xnnpack)
        t0 = time.perf_counter()
        p = guest_python(r, cpu, ["-m", "edgeopt.emulator.guest", str(work / "request.json")], timeout=timeout,
                         extra_path=[work / "pkgs"])
        wall = round(time.perf_counter() - t0, 2)
        if p.returncode != 0 or not (work / "result.json").is_file():
            sig = {-4: "SIGILL (an instruction this CPU model lacks)", -11: "SIGSEGV", -6: "SIGABRT"}
            why = sig.get(p.returncode, f"exit {p.returncode}")
            tail = " ".join(p.stderr.split())[-300:]
            return None, {"loaded": False, "crashed": True, "load_error": f"the emulated process died: {why}. {tail}",
                          "rejected_ops": [], "delegate_applied": False, "process_seconds": wall}
        res = json.loads((work / "result.json").read_text())
        res["process_seconds"] = wall
        out = np.load(work / "outputs.npy") if (work / "outputs.npy").is_file() else None
        return out, res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parity(host: np.ndarray, guest: np.ndarray, scale: Optional[float], hybrid: bool) -> dict:
    diff = np.abs(guest.astype(np.float64) - host.astype(np.float64))
    agree = float(np.mean(np.argmax(guest, 1) == np.argmax(host, 1)))
    if scale:
        steps = float(diff.max() / scale) if diff.size else 0.0
        return {"kind": "quantized output", "max_steps": round(steps, 3), "limit": f"<= {STEP_LIMIT:g} step",
                "exact_fraction": round(float(np.mean(diff < scale / 2)), 6), "argmax_agreement": round(agree, 6),
                "passed": steps <= STEP_LIMIT + 1e-3}
    span = np.maximum(host.max(1) - host.min(1), 1e-12)
    row_rel = float((diff.max(1) / span).max()) if diff.size else 0.0
    out = {"kind": "float output" + (" (dynamic-range kernels)" if hybrid else ""),
           "max_abs_diff": float(f"{diff.max():.3g}") if diff.size else 0.0,
           "p99_abs_diff": float(f"{np.quantile(diff, 0.99):.3g}") if diff.size else 0.0,
           "max_diff_vs_row_range": float(f"{row_rel:.3g}"), "argmax_agreement": round(agree, 6),
           "rows_differing_over_1e-3": int((diff.max(1) > 1e-3).sum()) if diff.size else 0}
    if hybrid:
        return {**out, "limit": f"max abs diff <= {HYBRID_RANGE:g} x the host row's range, argmax >= {HYBRID_ARGMAX:g}",
                "passed": row_rel <= HYBRID_RANGE and agree >= HYBRID_ARGMAX}
    return {**out, "limit": f"abs diff <= {FLOAT_ATOL:g} + {FLOAT_RTOL:g} x abs(host)",
            "passed": bool(np.all(diff <= FLOAT_ATOL + FLOAT_RTOL * np.abs(host)))}


def sample_indices(n: int, sample: Optional[int], seed: int) -> np.ndarray:
    if not sample or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:sample])


def validate(artifact: Path, tokens: np.ndarray, labels: np.ndarray, cpus: list[str], threads: int, xnnpack: bool,
             hybrid: bool = False, quiet: bool = False, arch: str = "arm64") -> dict:
    """Run ``artifact`` on the host and on each emulated CPU; the per-CPU table and an overall verdict."""
    from .. import runtimes
    from ..manifest import encode_correct
    from ..validate.accuracy import accuracy

    r = require_ready(arch)
    for c in cpus:
        require_cpu_model(c)  # all of them, before the host run
    counting = plugin.status(r)
    artifact = Path(artifact)
    sess = runtimes.load(artifact, runtimes.RuntimeOptions(threads=threads, xnnpack=xnnpack))
    host = sess.run(tokens)
    labels = np.asarray(labels)
    # a tagger's outputs (sentences, seq_len, tags) are compared and scored per real token (labels >= 0)
    keep = labels >= 0
    real = (lambda a: np.asarray(a)[keep]) if host.ndim == 3 else (lambda a: np.asarray(a))
    host, labels = real(host), real(labels)
    scale = output_scale(artifact, sess)
    out = {"artifact": artifact.name, "runtime": runtime_for(artifact), "threads": threads,
           "xnnpack_requested": xnnpack and runtime_for(artifact) == "litert", "examples": int(len(tokens)),
           "scored": int(len(labels)),  # rows scored: the examples, or a tagger's real tokens
           "output_scale": scale,
           "host": {"accuracy": round(accuracy(host, labels), 6), "delegate_applied": sess.delegate_applied},
           "cpus": [], "note": EMULATED_TIME_NOTE,
           "instructions_note": ("emulated instructions per inference (batch 1, 1 thread, qemu TCG plugin): an "
                                 "instruction count on the CPU model, not a time" if counting["ready"] else
                                 "not counted: " + "; ".join(counting["problems"]))}
    for cpu in cpus:
        log(quiet, f"[edgeopt] emulator: {artifact.name} on qemu -cpu {cpu} ({len(tokens)} examples)")
        guest, res = run_in_guest(r, artifact, tokens, cpu, threads, xnnpack)
        row = {"cpu": cpu, "loaded": res.get("loaded", False), "load_error": res.get("load_error"),
               "rejected_ops": res.get("rejected_ops", []), "delegate_applied": res.get("delegate_applied", False),
               "delegate_error": res.get("delegate_error"), "ops_after_delegation": res.get("ops_after_delegation"),
               "guest_machine": res.get("machine"), "runtime_version": res.get("runtime_version"),
               "emulated_wall_seconds": res.get("emulated_wall_seconds"), "process_seconds": res.get("process_seconds")}
        if guest is not None and np.ndim(guest) == 3:
            guest = real(guest)
        if guest is not None and len(guest) == len(host):
            row["accuracy"] = round(accuracy(guest, labels), 6)
            row["correct"] = encode_correct(np.asarray(guest).argmax(1) == np.asarray(labels))
            row["parity"] = parity(host, guest, scale, hybrid)
        else:
            row["accuracy"], row["parity"] = None, {"passed": False, "kind": "not run"}
        row["instructions"] = _instructions(r, artifact, tokens, cpu, quiet) if counting["ready"] and row[
            "loaded"] else None
        want_delegate = out["xnnpack_requested"]
        row["passed"] = bool(row["loaded"] and row["parity"]["passed"]
                             and (row["delegate_applied"] or not want_delegate or sess.delegate_applied is False))
        out["cpus"].append(row)
    out["passed"] = all(c["passed"] for c in out["cpus"])
    return out


def _instructions(r: Path, artifact: Path, tokens: np.ndarray, cpu: str, quiet: bool) -> dict:
    """Instructions per inference on the emulated ``cpu``."""
    from . import counter

    return _counted(artifact, tokens, cpu, quiet, lambda: _per_setting(
        artifact, lambda x: counter.count(r, artifact, tokens, cpu, x, quiet=quiet)))


# ------------------------------------------------------------------------------------- one count per file
def _count_key(artifact: Path, tokens: np.ndarray, cpu: str) -> str:
    """What a count depends on: the file's bytes, the one input it runs, the CPU, and the counting tools (edgeopt's
    counter and guest, qemu and the guest's runtimes for an arm64 core; valgrind, Python and the runtimes for x86)."""
    import hashlib
    import json as _json
    import subprocess
    import sys
    from importlib import metadata

    from .._version import __version__
    from . import env

    h = hashlib.sha256(Path(artifact).read_bytes())
    h.update(np.ascontiguousarray(np.asarray(tokens[:1], np.int32)).tobytes())
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("counter.py", "count.c", "guest.py")))
    ident = {"cpu": cpu, "edgeopt": __version__, "code": code.hexdigest()}
    if cpu == "x86":
        vg = shutil.which("valgrind")
        ident.update(valgrind=subprocess.run([vg, "--version"], capture_output=True, text=True).stdout.strip()
                     if vg else None, python=sys.version,
                     runtimes={d: _version_of(metadata, d) for d in ("ai-edge-litert", "onnxruntime", "numpy")})
    else:
        q = plugin.qemu_dynamic()
        ident.update(qemu=env.qemu_version(q) if q else None, guest=env.GUEST_HASHES, layout=env.LAYOUT_VERSION)
    h.update(_json.dumps(ident, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _version_of(metadata, dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _counted(artifact: Path, tokens: np.ndarray, cpu: str, quiet: bool, count) -> dict:
    """The counts of ``artifact`` on ``cpu``, counted once per file: a later count of the same bytes, input and tools
    (a verify, a rebuild, a tune's final build) reads the first one from the cache (EDGEOPT_CACHE_DIR/counts). The
    same file counted in two processes moved by up to 0.06% (qemu and callgrind: the runtimes' allocations), so a
    file has one count, not a new one each time it is asked for. A count that failed is not kept; a cache that
    cannot be written is skipped with a warning."""
    from ..data.datasets import cache_dir

    d = cache_dir() / "counts"
    key = _count_key(artifact, tokens, cpu)
    f = d / f"{key}.json"
    try:
        got = json.loads(f.read_text())
        if isinstance(got, dict) and got.get("key") == key and isinstance(got.get("instructions"), dict):
            log(quiet, f"[edgeopt] {Path(artifact).name}: instructions per inference on {cpu} counted before "
                       f"(cache {key[:12]})")
            return {**got["instructions"], "cached": True}
    except (OSError, ValueError):
        pass
    with working(f"counting instructions per inference of {Path(artifact).name} on {cpu}"
                 + (" (callgrind)" if cpu == "x86" else " (emulated)"), quiet):
        out = count()
    from ..writer import count as fmt_count

    log(quiet, f"  {Path(artifact).name} on {cpu}: " + (f"not counted: {out['error']}" if out.get("error") else
        ", ".join(f"{fmt_count(v)} instructions per inference ({k.replace('_', ' ')})" for k, v in out.items()
                  if k in ("xnnpack_on", "xnnpack_off", "onnxruntime") and v is not None)))
    if not out.get("error"):
        try:
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"key": key, "instructions": out}))
            os.replace(tmp, f)
        except OSError as e:
            log(False, f"[edgeopt] warning: the count of {Path(artifact).name} was not cached ({e})")
    return out


def _per_setting(artifact: Path, count_one) -> dict:
    """``count_one(xnnpack)`` for XNNPACK on and off (LiteRT) or once (ONNX Runtime's CPU EP as it is), with the
    largest spread, the seconds taken and the first error."""
    settings = (("xnnpack_on", True), ("xnnpack_off", False)) if runtime_for(artifact) == "litert" else (
        ("onnxruntime", False),)
    out, runs = {}, []
    for key, x in settings:
        c = count_one(x)
        out[key] = c["instructions"]
        runs.append(c)
    out["spread"] = max((c.get("spread") or 0) for c in runs)
    out["seconds"] = round(sum(c["seconds"] for c in runs), 2)
    errors = [c["error"] for c in runs if c.get("error")]
    if errors:
        out["error"] = errors[0][:300]
    return out


def require_counter(cpu: str, target) -> None:
    """Fail before any training when the tools counting on ``cpu`` ("x86": callgrind) are missing. The arm64
    emulator itself is set up on first use (``ensure_emulator``)."""
    import platform

    from . import counter
    from .env import require_qemu

    if cpu == "x86":
        if platform.machine() not in ("x86_64", "AMD64"):
            raise EmulatorError(f"target {target.name}: x86 instruction counts run under valgrind on an x86_64 build "
                                f"machine; this one is {platform.machine()}. Fix: build with --no-count here.")
        if shutil.which("valgrind") is None:
            raise EmulatorError(f"target {target.name}: x86 instruction counts are taken with valgrind, which is not "
                                f"installed. Fix: {counter.VALGRIND_INSTALL} (or build with --no-count, tune with "
                                f"--host-cost)")
        return
    require_qemu()
    if plugin.qemu_dynamic() is None:
        raise EmulatorError(f"target {target.name}: instructions per inference on {cpu} need Debian's qemu-user (the "
                            f"dynamic qemu-aarch64 that loads edgeopt's counter). Fix: {plugin.QEMU_USER_INSTALL} "
                            f"(or build with --no-count)")


def ensure_emulator(quiet: bool = False, arch: str = "arm64") -> Path:
    """The emulator's root, set up first when it is not (once; concurrent setups take turns on setup's lock)."""
    from .env import root, setup

    st = status(arch)
    if st["ready"] and st["instruction_counter"]["ready"]:
        return Path(st["root"])
    log(quiet, f"[edgeopt] emulator: setting up the {arch} environment and the instruction counter in {root(arch)} "
               f"(first use; edgeopt emulator setup does the same)")
    return Path(setup(arch, quiet=quiet)["root"])


def count_for_target(artifact: Path, tokens: np.ndarray, cpu: str, quiet: bool = False) -> dict:
    """Instructions per inference of the deployed artifact on the target's counted CPU (``cpu``: a qemu model, or
    "x86" for callgrind), batch 1, one thread, XNNPACK on and off where the runtime has it. In the shape the
    emulated validation records per CPU."""
    from . import counter

    if cpu == "x86":
        out = _counted(Path(artifact), tokens, "x86", quiet, lambda: _per_setting(
            Path(artifact), lambda x: counter.count_x86(artifact, tokens, x, quiet=quiet)))
        return {"cpu": "x86", "counter": counter.X86_COUNTER, "instructions": out, "note": counter.X86_NOTE}
    r = ensure_emulator(quiet)
    return {"cpu": cpu, "counter": counter.QEMU_COUNTER, "instructions": _instructions(r, artifact, tokens, cpu, quiet),
            "note": counter.QEMU_NOTE}


def format_table(result: dict) -> str:
    rows = [("cpu", "loaded", "xnnpack applied", "rejected ops", "accuracy", "parity", "result")]
    for c in result["cpus"]:
        p = c["parity"]
        par = (f"{p['max_steps']} step" if "max_steps" in p else f"max |d| {p['max_abs_diff']}" if "max_abs_diff" in p
               else p["kind"]) + (f", argmax {p['argmax_agreement']:.4f}" if "argmax_agreement" in p else "")
        rows.append((c["cpu"], "yes" if c["loaded"] else "NO", "yes" if c["delegate_applied"] else "no",
                     ",".join(c["rejected_ops"]) or "-", f"{c['accuracy']:.4f}" if c["accuracy"] is not None else "-",
                     par, "pass" if c["passed"] else "FAIL" + (f" ({c['load_error'][:80]})" if c["load_error"] else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    head = (f"{result['artifact']} ({result['runtime']}, {result['threads']} threads, {result['examples']} examples; "
            f"host accuracy {result['host']['accuracy']:.4f})")
    return head + "\n" + "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(6)) + "  " + r[6] for r in rows)


def cpus_for(target, override: Optional[list] = None) -> list[str]:
    """The CPU models a target is validated on: ``--cpu`` if given, else device.qemu_cpu plus emulator.cpus."""
    if override:
        return list(dict.fromkeys(override))
    return list(dict.fromkeys(([target.device.qemu_cpu] if target.device.qemu_cpu else []) + list(target.emulator.cpus)))


def validate_for_target(artifact: Path, tokens: np.ndarray, labels: np.ndarray, target, seed: int,
                        cpus: Optional[list] = None, sample: Optional[int] = None, quiet: bool = False) -> dict:
    """Emulated validation with the target's runtime settings (threads, XNNPACK) on its CPU model(s), over
    ``sample`` (default: the target's emulator.sample, else the whole test split)."""
    from ..errors import InputError
    from ..manifest import examples_sha256

    chosen = cpus_for(target, cpus)
    if not chosen:
        raise InputError(f"target {target.name} names no emulated CPU (device.qemu_cpu). Fix: pass --cpu "
                         f"{'/'.join(CPU_MODELS)} or add device.qemu_cpu to {target.source or target.name}.")
    if target.device.arch != "arm64":
        raise InputError(f"target {target.name} is {target.device.arch}; the emulator runs arm64. Fix: validate an "
                         f"arm64 target.")
    want = runtime_for(artifact)
    if want != target.runtime.name:
        raise InputError(f"{artifact}: a {want} artifact, but {target.name} runs {target.runtime.name}. Fix: give "
                         f"the .{target.runtime.format} file built for {target.name}.")
    n = sample or target.emulator.sample
    idx = sample_indices(len(tokens), n, seed)
    t0 = time.perf_counter()
    res = validate(artifact, tokens[idx], np.asarray(labels)[idx], chosen, target.runtime.threads,
                   "xnnpack" in target.runtime.delegates, hybrid=_is_hybrid(artifact, target), quiet=quiet)
    res["sample"] = {"examples": int(len(idx)), "of": int(len(tokens)), "seed": seed,
                     "whole_split": bool(len(idx) == len(tokens)), "scored": res["scored"]}
    res["examples_sha256"] = examples_sha256(tokens[idx], np.asarray(labels)[idx])
    res["validation_seconds"] = round(time.perf_counter() - t0, 1)
    return res


def _is_hybrid(artifact: Path, target) -> bool:
    """Dynamic-range models quantize activations at run time: the kernels' rounding differs across ISAs."""
    return target.quantization == "dynamic" or "dynamic" in Path(artifact).name
