"""A seeded fuzz of every file reader: 1,000+ mutated copies of real files (a .tflite, an .onnx, a target and a
model spec, a tokenizer, a manifest, a baseline, a data CSV): flipped bytes, cut short, bytes inserted, a chunk
repeated. Each reader must accept the file or refuse it with edgeopt's own error (one line, exit 2 or 4): no other
exception, no hang."""
from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from conftest import run_cli
from edgeopt.errors import EdgeOptError

pytestmark = pytest.mark.slow
SEED = 20261206


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 or len(b) < 16:  # flip 1-8 bytes
        for _ in range(int(rng.integers(1, 9))):
            if b:
                b[int(rng.integers(len(b)))] = int(rng.integers(256))
    elif kind == 1:  # cut short
        b = b[:int(rng.integers(len(b)))]
    elif kind == 2:  # insert random bytes
        at = int(rng.integers(len(b)))
        b[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    else:  # repeat a chunk
        at, n = int(rng.integers(len(b))), int(rng.integers(1, 256))
        b[at:at] = b[at:at + n]
    return bytes(b)


def _readers(multi_build, tmp_path):
    from edgeopt.data.tokenizer import CONFIG, load_tokenizer
    from edgeopt.inspect import inspect_onnx, inspect_tflite
    from edgeopt.manifest import load_baseline, load_manifest
    from edgeopt.pipeline.prepare import load_spec_data
    from edgeopt.registry import load_model_spec, load_target

    pixel, x86 = multi_build["out"] / "pixel-7", multi_build["out"] / "x86-avx2-server"
    base = tmp_path / "baseline.json"
    assert run_cli(["verify", str(x86), "--baseline", str(base), "--update", "--iterations", "10"]).exit_code == 0
    csv = tmp_path / "train.csv"
    csv.write_text("text,label\n" + "".join(f"message number {i} about {'cards' if i % 2 else 'fees'},"
                                            f"{'card' if i % 2 else 'fee'}\n" for i in range(60)))
    shutil.copy(csv, tmp_path / "test.csv")

    def read_tokenizer(p):
        d = p.parent
        return load_tokenizer(d)

    def read_csv(p):
        spec = tmp_path / "csv-spec.yaml"
        spec.write_text(f"name: fuzz\ndata: {{files: {{train: {p}, test: {tmp_path / 'test.csv'}}}}}\n"
                        f"architecture: {{name: text_cnn}}\n")
        return load_spec_data(load_model_spec(str(spec)))

    return [  # (name, original bytes, file name, reader, copies)
        ("tflite", (pixel / "model_int8.tflite").read_bytes(), "m.tflite", inspect_tflite, 300),
        ("onnx", (x86 / "model_int8.onnx").read_bytes(), "m.onnx", inspect_onnx, 150),
        ("target", run_cli(["targets", "show", "pixel-7"]).stdout.encode(), "t.yaml",
         lambda p: load_target(str(p)), 150),
        ("spec", multi_build["spec"].read_bytes(), "s.yaml", lambda p: load_model_spec(str(p)), 150),
        ("tokenizer", (pixel / CONFIG).read_bytes(), CONFIG, read_tokenizer, 100),
        ("manifest", (pixel / "manifest.json").read_bytes(), "manifest.json", load_manifest, 100),
        ("baseline", base.read_bytes(), "baseline.json", load_baseline, 50),
        ("csv", csv.read_bytes(), "train.csv", read_csv, 50),
    ]


def test_every_reader_refuses_mutated_files_cleanly(multi_build, tmp_path):
    rng = np.random.default_rng(SEED)
    counts = {}
    for name, original, fname, reader, copies in _readers(multi_build, tmp_path):
        d = tmp_path / name
        d.mkdir()
        accepted = refused = 0
        for i in range(copies):
            p = d / fname
            p.write_bytes(mutate(original, rng))
            t0 = time.perf_counter()
            try:
                reader(p)
                accepted += 1
            except EdgeOptError as e:
                msg = str(e)
                assert "\n" not in msg.strip() and len(msg) < 2000 and str(p) in msg or name == "csv", (name, i, msg)
                refused += 1
            except Exception as e:  # noqa: BLE001 -- the point of the test
                shutil.copy(p, tmp_path / f"crash-{name}-{i}")
                raise AssertionError(f"{name} copy {i}: {type(e).__name__}: {e}") from None
            assert time.perf_counter() - t0 < 20, (name, i)
        counts[name] = {"accepted": accepted, "refused": refused}
    total = sum(c["accepted"] + c["refused"] for c in counts.values())
    print(json.dumps(counts))
    assert total >= 1000 and all(c["refused"] > 0 for c in counts.values()), counts
