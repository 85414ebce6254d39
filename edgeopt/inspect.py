"""Read a .tflite file without TensorFlow: operators, tensors, dtypes, size.

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


def read_tflite(path) -> "object":
    from ai_edge_litert import schema_py_generated as S

    p = Path(path)
    try:
        buf = p.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{p}: file not found. Fix: check the path.") from None
    except OSError as e:
        raise ArtifactError(f"{p}: cannot read it ({e.strerror}).") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ArtifactError(f"{p}: not a TFLite flatbuffer (no 'TFL3' identifier). Fix: give a .tflite file "
                            f"produced by the converter.")
    try:
        model = S.Model.GetRootAs(buf, 0)
        model.SubgraphsLength(), model.OperatorCodesLength()
    except Exception as e:
        raise ArtifactError(f"{p}: corrupt TFLite flatbuffer ({type(e).__name__}). Fix: re-export the model.") from None
    return S, model, buf


def inspect_tflite(path) -> dict:
    p = Path(path)
    S, model, buf = read_tflite(p)
    op_names, type_names = _names(S.BuiltinOperator), _names(S.TensorType)
    try:
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = op_names.get(code, f"BUILTIN_{code}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (oc.CustomCode() or b"?").decode()
            codes.append((name, oc.Version()))
        sub = model.Subgraphs(0)
        ops = Counter()
        for j in range(sub.OperatorsLength()):
            name, ver = codes[sub.Operators(j).OpcodeIndex()]
            ops[(name, ver)] += 1
        tensors, weights = [], []
        inputs, outputs = set(sub.InputsAsNumpy().tolist()), set(sub.OutputsAsNumpy().tolist())
        for k in range(sub.TensorsLength()):
            t = sub.Tensors(k)
            b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            nbytes = (b.DataLength() or b.Size()) if b is not None else 0
            info = {"index": k, "name": (t.Name() or b"").decode(errors="replace"),
                    "dtype": type_names.get(t.Type(), str(t.Type())).lower(),
                    "shape": t.ShapeAsNumpy().tolist() if t.ShapeLength() else [],
                    "constant": nbytes > 0, "bytes": int(nbytes), "variable": bool(t.IsVariable())}
            q = t.Quantization()
            if q is not None and q.ScaleLength():
                info["quantized"] = {"scales": int(q.ScaleLength()), "axis": int(q.QuantizedDimension())}
            tensors.append(info)
            if info["constant"]:
                weights.append(info)
    except ArtifactError:
        raise
    except Exception as e:
        raise ArtifactError(f"{p}: corrupt TFLite flatbuffer ({type(e).__name__}: {e}). Fix: re-export the model.") \
            from None
    io = lambda idx: [{k: tensors[i][k] for k in ("name", "dtype", "shape")} for i in sorted(idx)]  # noqa: E731
    return {
        "path": str(p), "format": "tflite", "size_bytes": len(buf), "gzip_bytes": len(gzip.compress(buf, 9, mtime=0)),
        "sha256": hashlib.sha256(buf).hexdigest(), "schema_version": int(model.Version()),
        "subgraphs": int(model.SubgraphsLength()),
        "inputs": io(inputs), "outputs": io(outputs),
        "ops": [{"op": n, "version": v, "count": c} for (n, v), c in sorted(ops.items())],
        "weight_dtypes": dict(Counter(w["dtype"] for w in weights)),
        "weight_bytes": int(sum(w["bytes"] for w in weights)),
        "variable_tensors": sum(t["variable"] for t in tensors),
        "tensors": tensors,
    }


def format_inspect(info: dict) -> str:
    lines = [f"{info['path']}: TFLite schema v{info['schema_version']}, {info['size_bytes']:,} bytes "
             f"(gzip {info['gzip_bytes']:,}), sha256 {info['sha256'][:16]}",
             "inputs:  " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in info["inputs"]),
             "outputs: " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in info["outputs"]),
             "ops:"]
    lines += [f"  {o['op']:<32} v{o['version']:<3} x{o['count']}" for o in info["ops"]]
    lines.append("weights: " + ", ".join(f"{d} x{n}" for d, n in sorted(info["weight_dtypes"].items()))
                 + f" ({info['weight_bytes']:,} bytes)")
    if info["variable_tensors"]:
        lines.append(f"state: {info['variable_tensors']} variable tensors (recurrent state persists across invoke(); "
                     f"call reset_all_variables() before each independent input)")
    return "\n".join(lines)
