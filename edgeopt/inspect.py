"""Read a .tflite file without TensorFlow: operators, tensors, dtypes, size; and an .onnx file with the ``onnx``
package (its protobuf, checked by ``onnx.checker``).

Uses the flatbuffer schema that ships with ai-edge-litert (``schema_py_generated``), so it never imports TF.
"""
from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from pathlib import Path

from .errors import ArtifactError


def _names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


MAX_TFLITE_BYTES = 2 << 30  # a flatbuffer cannot be larger than 2 GiB


def read_tflite(path) -> "object":
    from ai_edge_litert import schema_py_generated as S

    from .files import read_capped

    p = Path(path)
    buf = read_capped(p, MAX_TFLITE_BYTES, ".tflite file", ArtifactError)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ArtifactError(f"{p}: not a TFLite flatbuffer (no 'TFL3' identifier). Fix: give a .tflite file "
                            f"produced by the converter.")
    try:
        model = S.Model.GetRootAs(buf, 0)
        model.SubgraphsLength(), model.OperatorCodesLength()
    except Exception as e:
        raise ArtifactError(f"{p}: corrupt TFLite flatbuffer ({type(e).__name__}). Fix: re-export the model.") from None
    return S, model, buf


_NP = {"float32": "float32", "float16": "float16", "int8": "int8", "uint8": "uint8", "int16": "int16",
       "int32": "int32", "int64": "int64"}


def weight_stats(values, shape, zero_point=None, axis: int = 0) -> dict:
    """Zero fraction, unique values and the m:n pattern (along the last, input-channel axis) of one tensor.

    For quantized tensors a real 0.0 is stored as the zero point, so "zero" means "equals its zero point"; with
    per-channel quantization the unique count that proves clustering is per channel (``unique_per_channel_max``).
    """
    import numpy as np

    v = np.asarray(values).reshape(shape) if shape else np.asarray(values)
    zero = np.zeros_like(v)
    if zero_point is not None and np.size(zero_point) > 0 and np.any(zero_point):
        zp = np.asarray(zero_point)
        if zp.size == 1:
            zero = zero + zp.reshape(()).astype(v.dtype)
        elif v.ndim and v.shape[axis] == zp.size:
            bshape = [1] * v.ndim
            bshape[axis] = zp.size
            zero = zero + zp.reshape(bshape).astype(v.dtype)
    is_zero = v == zero
    out = {"zero_fraction": round(float(is_zero.mean()), 6) if v.size else 0.0, "unique_values": int(len(np.unique(v)))}
    if zero_point is not None and np.size(zero_point) > 1 and v.ndim:
        moved = np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1)
        out["unique_per_channel_max"] = int(max(len(np.unique(row)) for row in moved))
    last = v.shape[-1] if v.ndim else 0
    for n in (4, 8):
        if v.ndim >= 2 and last % n == 0 and v.size >= n:
            zeros = int(is_zero.reshape(-1, n).sum(axis=1).min())
            if 2 * zeros >= n:  # a real N:M structure (e.g. 2:4), not the odd zero of unstructured sparsity
                out["m_by_n"] = f"{zeros}:{n}"
                break
    return out


def inspect_tflite(path) -> dict:
    p = Path(path)
    S, model, buf = read_tflite(p)
    op_names, type_names = _names(S.BuiltinOperator), _names(S.TensorType)
    if model.SubgraphsLength() < 1:
        raise ArtifactError(f"{p}: corrupt TFLite flatbuffer (no subgraph). Fix: re-export the model.")
    try:
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = op_names.get(code, f"BUILTIN_{code}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (oc.CustomCode() or b"?").decode()
            codes.append((name, oc.Version()))
        ops = Counter()
        tensors, weights, seen_buffers = [], [], set()
        # every subgraph: a recurrent layer converted as a while loop keeps its kernels in the loop body's subgraph
        for si in range(model.SubgraphsLength()):
            sub = model.Subgraphs(si)
            for j in range(sub.OperatorsLength()):
                name, ver = codes[sub.Operators(j).OpcodeIndex()]
                ops[(name, ver)] += 1
            if si == 0:
                inputs, outputs = set(sub.InputsAsNumpy().tolist()), set(sub.OutputsAsNumpy().tolist())
            for k in range(sub.TensorsLength()):
                t = sub.Tensors(k)
                b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
                nbytes = (b.DataLength() or b.Size()) if b is not None else 0
                if si > 0 and (nbytes == 0 or t.Buffer() in seen_buffers):
                    continue  # other subgraphs: their own constants only, each buffer once
                info = {"index": k, "name": (t.Name() or b"").decode(errors="replace"),
                        "dtype": type_names.get(t.Type(), str(t.Type())).lower(),
                        "shape": t.ShapeAsNumpy().tolist() if t.ShapeLength() else [],
                        "constant": nbytes > 0, "bytes": int(nbytes), "variable": bool(t.IsVariable())}
                if si > 0:
                    info["subgraph"] = si
                q = t.Quantization()
                zp, axis = None, 0
                if q is not None and q.ScaleLength():
                    axis = int(q.QuantizedDimension())
                    info["quantized"] = {"scales": int(q.ScaleLength()), "axis": axis}
                    zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else None
                if info["constant"] and info["dtype"] in _NP and b.DataLength() and len(info["shape"]) >= 2:
                    import numpy as np

                    arr = np.frombuffer(b.DataAsNumpy().tobytes(), dtype=_NP[info["dtype"]])
                    info.update(weight_stats(arr, info["shape"],
                                             zp if info["dtype"] in ("int8", "uint8", "int16") else None, axis))
                if si == 0:
                    tensors.append(info)
                if info["constant"] and t.Buffer() not in seen_buffers:
                    seen_buffers.add(t.Buffer())
                    weights.append(info)
        by_index = {t["index"]: t for t in tensors}
        if not (inputs | outputs) <= set(by_index):
            raise ArtifactError(f"{p}: corrupt TFLite flatbuffer (an input or output names a tensor it does not "
                                f"have). Fix: re-export the model.")
    except ArtifactError:
        raise
    except Exception as e:
        raise ArtifactError(f"{p}: corrupt TFLite flatbuffer ({type(e).__name__}: {str(e)[:200]}). Fix: re-export "
                            f"the model.") from None
    io = lambda idx: [{k: by_index[i][k] for k in ("name", "dtype", "shape")} for i in sorted(idx)]  # noqa: E731
    return {
        "path": str(p), "format": "tflite", "size_bytes": len(buf), "gzip_bytes": len(gzip.compress(buf, 9, mtime=0)),
        "sha256": hashlib.sha256(buf).hexdigest(), "schema_version": int(model.Version()),
        "subgraphs": int(model.SubgraphsLength()),
        "inputs": io(inputs), "outputs": io(outputs),
        "ops": [{"op": n, "version": v, "count": c} for (n, v), c in sorted(ops.items())],
        "weight_dtypes": dict(Counter(w["dtype"] for w in weights)),
        "weight_bytes": int(sum(w["bytes"] for w in weights)),
        "variable_tensors": sum(t["variable"] for t in tensors),
        "weights": [{k: t[k] for k in ("name", "dtype", "shape", "zero_fraction", "unique_values",
                                       "unique_per_channel_max", "m_by_n", "subgraph") if k in t}
                    for t in weights if "zero_fraction" in t],
        "tensors": tensors,
    }


MAX_ONNX_BYTES = 2 << 30  # a protobuf cannot be larger than 2 GiB


def inspect_onnx(path) -> dict:
    """The same summary for an ONNX model: opset, inputs and outputs, operators, initializers (weights)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from .files import read_capped

    p = Path(path)
    buf = read_capped(p, MAX_ONNX_BYTES, ".onnx file", ArtifactError)
    try:
        m = onnx.load_from_string(buf)
        onnx.checker.check_model(m)
        g = m.graph
        init = {t.name for t in g.initializer}

        def io(values):
            out = []
            for v in values:
                if v.name in init:
                    continue
                tt = v.type.tensor_type
                out.append({"name": v.name, "dtype": np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).name,
                            "shape": [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]})
            return out

        ops = Counter((f"{n.domain + ':' if n.domain else ''}{n.op_type}") for n in g.node)
        weights = []
        for t in g.initializer:
            arr = numpy_helper.to_array(t)
            w = {"name": t.name, "dtype": arr.dtype.name, "shape": list(arr.shape), "bytes": int(arr.nbytes)}
            if arr.ndim >= 2 and arr.dtype.kind in "fiu":
                w.update(weight_stats(arr.ravel(), list(arr.shape), None, 0))
            weights.append(w)
        info = {"path": str(p), "format": "onnx", "size_bytes": len(buf),
                "gzip_bytes": len(gzip.compress(buf, 9, mtime=0)), "sha256": hashlib.sha256(buf).hexdigest(),
                "ir_version": int(m.ir_version),
                "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in m.opset_import},
                "inputs": io(g.input), "outputs": io(g.output),
                "ops": [{"op": n, "version": None, "count": c} for n, c in sorted(ops.items())],
                "weight_dtypes": dict(Counter(w["dtype"] for w in weights)),
                "weight_bytes": int(sum(w["bytes"] for w in weights)), "variable_tensors": 0,
                "weights": [w for w in weights if "zero_fraction" in w]}
    except ArtifactError:
        raise
    except Exception as e:  # protobuf's DecodeError, onnx's ValidationError, a corrupt tensor
        raise ArtifactError(f"{p}: not a readable ONNX model ({type(e).__name__}: {' '.join(str(e).split())[:200]}). "
                            f"Fix: re-export the model.") from None
    return info


def inspect_artifact(path) -> dict:
    """``inspect_tflite`` or ``inspect_onnx``, by the file's content (an ONNX protobuf has no TFL3 identifier)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return inspect_onnx(p)
    return inspect_tflite(p)


def format_inspect(info: dict) -> str:
    kind = (f"TFLite schema v{info['schema_version']}" if info["format"] == "tflite" else
            f"ONNX IR v{info['ir_version']}, opset " + ", ".join(f"{d} {v}" for d, v in info["opsets"].items()))
    lines = [f"{info['path']}: {kind}, {info['size_bytes']:,} bytes "
             f"(gzip {info['gzip_bytes']:,}), sha256 {info['sha256'][:16]}",
             "inputs:  " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in info["inputs"]),
             "outputs: " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in info["outputs"]),
             "ops:"]
    lines += [f"  {o['op']:<32} " + (f"v{o['version']:<3} " if o["version"] is not None else "") + f"x{o['count']}"
              for o in info["ops"]]
    lines.append("weights: " + ", ".join(f"{d} x{n}" for d, n in sorted(info["weight_dtypes"].items()))
                 + f" ({info['weight_bytes']:,} bytes)")
    big = [w for w in info["weights"] if w["shape"] and _numel(w["shape"]) >= 256]
    if big:
        lines.append("weight tensors (>= 256 values): name, dtype, zeros, unique values (max per channel), m:n")
        lines += [f"  {w['name'][:56]:<56} {w['dtype']:<8} {w['zero_fraction']:6.1%} {w['unique_values']:>7}"
                  + (f" ({w['unique_per_channel_max']})" if "unique_per_channel_max" in w else "")
                  + f" {w.get('m_by_n', '')}" for w in big]
    if info["variable_tensors"]:
        lines.append(f"state: {info['variable_tensors']} variable tensors (recurrent state persists across invoke(); "
                     f"call reset_all_variables() before each independent input)")
    return "\n".join(lines)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= max(int(d), 1)
    return n


def summarize_weights(info: dict, min_values: int = 256) -> dict:
    """One line of proof for a pass: overall zero fraction and unique-value counts of the large weight tensors."""
    big = [w for w in info["weights"] if _numel(w["shape"]) >= min_values]
    total = sum(_numel(w["shape"]) for w in big)
    zeros = sum(w["zero_fraction"] * _numel(w["shape"]) for w in big)
    uniq = sorted(w.get("unique_per_channel_max", w["unique_values"]) for w in big)
    return {"weight_tensors": len(big), "zero_fraction": round(zeros / total, 4) if total else 0.0,
            "unique_values_median": uniq[len(uniq) // 2] if uniq else 0,
            "unique_values_max": uniq[-1] if uniq else 0,
            "m_by_n": sorted({w["m_by_n"] for w in big if "m_by_n" in w})}
