"""Bad input never ends in a traceback, nothing a user owns is deleted, a wrong build never passes.

Each case: the input, the exit code, the one-line message, and that nothing was written or deleted.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FAST_LATENCY, REPO, TINY, run_cli, write_spec

EDGEOPT = str(Path(sys.executable).parent / "edgeopt")


def one_line_error(r, code=2) -> str:
    assert r.exit_code == code, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def spec(tmp_path):
    return write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=2,
                      limit={"train": 1200, "dev": 200, "test": 300}, learning_rate=0.005)


def _target(tmp_path, edit, name="t.yaml") -> Path:
    d = yaml.safe_load((REPO / "targets" / "pixel-7.yaml").read_text())
    edit(d)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


# ------------------------------------------------------------------------------------------- data loss
def test_out_that_is_not_a_build_is_refused_and_left_alone(spec, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_text("x")
    before = tree(d)
    for extra in ([], ["--dry-run"]):
        msg = one_line_error(run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(d), "-q", *extra]))
        assert "is not an edgeopt build" in msg and "--force" in msg
    assert tree(d) == before


@pytest.mark.parametrize("out,why", [(".", "current directory"), ("", "--out is empty"), ("..", "current directory")])
def test_out_dot_empty_and_parent_fail_before_training(spec, tmp_path, monkeypatch, out, why):
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    msg = one_line_error(run_cli(["build", str(spec), "-t", "pixel-7", "--out", out, "-q", "--force"]))
    assert why in msg and time.perf_counter() - t0 < 20  # refused at plan time, not after training


@pytest.mark.parametrize("name", ["../../../victim", "/tmp/abs", "", "a/b", ".hidden", "-x"])
def test_names_that_are_not_path_components_are_refused(tmp_path, name):
    t = _target(tmp_path, lambda d: d.update(name=name))
    msg = one_line_error(run_cli(["targets", "check", str(t)]))
    assert "field 'name'" in msg and "not a valid name" in msg
    s = write_spec(tmp_path / "m.yaml", "ok", "text_cnn", TINY["text_cnn"])
    d = yaml.safe_load(s.read_text())
    d["name"] = name
    s.write_text(yaml.safe_dump(d))
    for cmd in (["models", "show", str(s)], ["build", str(s), "-t", "pixel-7", "--dry-run"]):
        assert "not a valid name" in one_line_error(run_cli(cmd))


@pytest.mark.slow
def test_rebuild_replaces_a_build_but_not_what_a_user_added(spec, tmp_path):
    out = tmp_path / "b"
    args = ["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY]
    assert run_cli(args).exit_code == 0
    assert run_cli(args).exit_code == 0  # an edgeopt build: replaced
    (out / "notes.txt").write_text("mine")
    assert "not an edgeopt build" in one_line_error(run_cli(args))
    assert (out / "notes.txt").read_text() == "mine"
    assert run_cli(args + ["--force"]).exit_code == 0  # replaced on purpose
    assert not (out / "notes.txt").exists() and (out / "manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


def _home_inside(d: Path) -> Path:
    """A real home directory (an SSH key, a shell profile, a user's files) inside ``d``."""
    home = d / "users" / "alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n")
    (home / ".profile").write_text("export PATH\n")
    (home / "thesis.tex").write_text("five years of work")
    return home


@pytest.mark.parametrize("what", ["home (HOME)", "home (marks)", "git", "hg", "svn", "mount"])
def test_force_never_replaces_a_home_a_repository_or_a_mount(spec, tmp_path, monkeypatch, what):
    d = tmp_path / "out"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    if what.startswith("home"):
        home = _home_inside(d)
        if what == "home (HOME)":
            monkeypatch.setenv("HOME", str(home))
    elif what == "mount":
        d = Path("/proc")  # a mount point on every Linux machine
    else:
        (d / "project" / f".{what}").mkdir(parents=True)
        (d / "project" / "main.py").write_text("print('mine')")
    before = tree(d) if what != "mount" else None
    t0 = time.perf_counter()
    for extra in (["--dry-run"], []):
        msg = one_line_error(run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(d), "-q", "--force", *extra]))
        assert {"home (HOME)": "home directory", "home (marks)": "looks like a home directory",
                "mount": "mount point"}.get(what, "version-controlled tree") in msg, msg
    assert time.perf_counter() - t0 < 30  # refused when the build is planned, before training
    if before is not None:
        assert tree(d) == before


@pytest.mark.slow
def test_a_failed_build_never_replaces_anything(spec, tmp_path):
    """A build that fails its budgets goes beside what is there, with --force too: the user's directory and a
    passing build stay as they were."""
    tight = _target(tmp_path, lambda t: t["budgets"].update(max_size_bytes=1000), "tight.yaml")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    r = run_cli(["build", str(spec), "-t", str(tight), "--out", str(mine), "--force", *FAST_LATENCY])
    assert r.exit_code == 3, r.output
    assert tree(mine) == {"notes.txt": b"mine"}
    failed = tmp_path / "mine.failed"
    assert json.loads((failed / "manifest.json").read_text())["budgets"]["passed"] is False
    assert len({(p.stat().st_mode & 0o777) for p in failed.iterdir()}) == 1  # the manifest too: not 0600
    assert f"{mine} is left as it was" in r.stderr and str(failed) in r.stderr
    good = tmp_path / "good"
    assert run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(good), "-q", *FAST_LATENCY]).exit_code == 0
    before = tree(good)
    assert run_cli(["build", str(spec), "-t", str(tight), "--out", str(good), "-q", *FAST_LATENCY]).exit_code == 3
    assert tree(good) == before and (tmp_path / "good.failed" / "manifest.json").is_file()
    # a failed build into a new directory is written there: nothing is replaced
    assert run_cli(["build", str(spec), "-t", str(tight), "--out", str(tmp_path / "new"), "-q",
                    *FAST_LATENCY]).exit_code == 3
    assert (tmp_path / "new" / "manifest.json").is_file() and not (tmp_path / "new.failed").exists()


@pytest.mark.parametrize("where", ["/dev/null", "a file"])
def test_a_cache_that_cannot_be_a_directory_is_refused_before_training(spec, tmp_path, monkeypatch, where):
    f = tmp_path / "cache-file"
    f.write_text("mine")
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", "/dev/null" if where == "/dev/null" else str(f / "sub"))
    t0 = time.perf_counter()
    msg = one_line_error(run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(tmp_path / "b"), "-q"]))
    assert "EDGEOPT_CACHE_DIR" in msg and "is not a directory" in msg and time.perf_counter() - t0 < 30
    assert f.read_text() == "mine" and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_full_disk_and_an_unwritable_cache(spec, tmp_path, monkeypatch):
    """A cache entry that cannot be written is a warning and the build goes on; an output directory on a full file
    system is one line naming it and the bytes needed, with nothing left there (a real 256 KiB tmpfs)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "artifacts").write_text("not a directory")  # every pass output's entry fails to be written
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(cache))
    small = tmp_path / "small"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True, text=True)
    assert r.returncode == 0, f"this test mounts a small tmpfs and needs root (as CI has): {r.stderr}"
    try:
        res = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(small / "b"), "-q", *FAST_LATENCY])
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        msg = lines[-1]
        assert len([ln for ln in lines if ln.startswith("edgeopt: error:")]) == 1
        assert all(ln.startswith("[edgeopt] warning: the cache entry") for ln in lines[:-1]), lines
        assert f"{small}: no space left for the build" in msg and "bytes needed" in msg, msg
        assert "warning: the cache entry" in res.stderr and "going on without it" in res.stderr
        assert os.listdir(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert (cache / "artifacts").read_text() == "not a directory"


def test_an_archive_that_expands_without_bound_is_refused_unread(tmp_path):
    """A .keras file whose config.json expands 300 MB from a few hundred KB: refused from the archive's own
    directory, in a second, without reading it."""
    import zipfile

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
        with z.open("config.json", "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(300):
                f.write(block)
    assert bomb.stat().st_size < 2 << 20
    t0 = time.perf_counter()
    msg = one_line_error(run_cli(["build", str(bomb), "--data", "banking77", "-t", "pixel-7", "--dry-run"]))
    assert "config.json" in msg and "expands" in msg and time.perf_counter() - t0 < 20, msg


@pytest.mark.slow
def test_a_subclassed_savedmodel_is_one_line(tmp_path, monkeypatch):
    mod = tmp_path / "mymodels.py"
    mod.write_text("import tf_keras as keras\n\n"
                   "@keras.utils.register_keras_serializable('mine')\n"
                   "class Net(keras.Model):\n"
                   "    def __init__(self, **kw):\n"
                   "        super().__init__(**kw)\n"
                   "        self.emb = keras.layers.Embedding(100, 8)\n"
                   "        self.pool = keras.layers.GlobalAveragePooling1D()\n"
                   "        self.out = keras.layers.Dense(77)\n"
                   "    def call(self, x):\n"
                   "        return self.out(self.pool(self.emb(x)))\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import numpy as np; import mymodels; "
            f"m = mymodels.Net(); m(np.zeros((1, 16), np.int32)); m.save({str(tmp_path / 'sm')!r}, save_format='tf')")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["build", str(tmp_path / "sm"), "--data", "banking77", "-t", "pixel-7", "--custom-module", "mymodels",
            "--dry-run"]
    r = run_cli(base)  # traced through its saved input [batch, 16]: planned, PTQ only
    assert r.exit_code == 0 and "a subclassed model" in r.output and "traced through one int32" in r.output, r.output
    msg = one_line_error(run_cli([*base, "--qat"]))  # a pass that rebuilds it layer by layer: refused, never exit 1
    assert "qat need the model's layers in tf_keras" in msg and "subclassed model" in msg, msg


def test_predict_reads_standard_input_with_a_limit(tmp_path):
    """`edgeopt predict BUILD < /dev/zero` (one endless line) ends in one line, exit 2, at once."""
    with open("/dev/zero", "rb") as zero:
        r = subprocess.run([EDGEOPT, "predict", str(tmp_path)], stdin=zero, capture_output=True, text=True,
                           timeout=120)
    assert r.returncode == 2 and "longer than 100,000 characters" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("case,edit,want", [
    ("data from /dev/zero", {"data": {"files": {"train": "/dev/zero", "test": "/dev/zero"}}}, "not a regular file"),
    ("data is a directory", {"data": {"files": {"train": "/tmp", "test": "/tmp"}}}, "is a directory"),
    ("no vocab file", {"tokenizer": {"kind": "word", "vocab_file": "/no/such/vocab.txt"}}, "file not found"),
    ("vocab from /dev/zero", {"tokenizer": {"kind": "word", "vocab_file": "/dev/zero"}}, "not a regular file"),
    ("no tokenizer.json", {"tokenizer": {"kind": "word", "huggingface": "/no/such/tokenizer.json"}}, "not found")])
def test_dry_run_opens_every_file_the_build_would(tmp_path, case, edit, want):
    s = tmp_path / "s.yaml"
    d = {"name": "dry", "architecture": {"name": "text_cnn"}, "data": {"dataset": "sst2"}}
    d.update(edit)
    s.write_text(yaml.safe_dump(d))
    assert want in one_line_error(run_cli(["build", str(s), "-t", "pixel-7", "--dry-run"]))


def test_tune_dry_run_refuses_an_unknown_teacher():
    assert "unknown model 'nosuch'" in one_line_error(run_cli(["tune", "banking77-cnn", "-t", "pixel-7", "--teacher",
                                                               "nosuch", "--dry-run"]))


@pytest.mark.slow
def test_a_model_file_with_nan_weights_is_named_as_such(tmp_path):
    code = ("import numpy as np, tf_keras as keras; "
            "x = keras.Input((16,), dtype='int32'); h = keras.layers.Embedding(100, 8)(x); "
            "h = keras.layers.GlobalAveragePooling1D()(h); y = keras.layers.Dense(77, name='head')(h); "
            "m = keras.Model(x, y); w = m.get_layer('head').get_weights(); w[0][0, 0] = np.nan; "
            f"m.get_layer('head').set_weights(w); m.save({str(tmp_path / 'nan.keras')!r})")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    msg = one_line_error(run_cli(["build", str(tmp_path / "nan.keras"), "--data", "banking77", "-t", "pixel-7",
                                  "--dry-run"]))
    assert "layer 'head' holds NaN or infinite weights" in msg, msg


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_environment_setup_ends_the_build_at_once(spec, tmp_path, sig):
    """Ctrl-C or SIGTERM while a client environment is being made (venv, ensurepip, pip): edgeopt and every
    process it started end within 2 s, and no half-made environment is left."""
    env = {**os.environ, "EDGEOPT_CLIENT_DIR": str(tmp_path / "clients"), "EDGEOPT_TEST_PREWARM": "0"}
    p = subprocess.Popen([EDGEOPT, "build", str(spec), "-t", "pixel-7", "--out", str(tmp_path / "b"), "--no-count",
                          *FAST_LATENCY], stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    for line in p.stderr:
        if "creating a venv" in line:
            break
    else:
        raise AssertionError(f"the build never started a client environment (exit {p.wait()})")
    time.sleep(2)  # venv is running ensurepip by now
    t0 = time.perf_counter()
    p.send_signal(sig)
    rest = p.stderr.read()
    p.wait(timeout=60)
    took = time.perf_counter() - t0
    assert p.returncode == 130 and "interrupted" in rest and took < 2, (p.returncode, took, rest[-500:])
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True).stdout.split()
    alive = [pid for pid in left if Path(f"/proc/{pid}/stat").is_file()
             and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    assert not alive, alive
    assert sorted(os.listdir(tmp_path / "clients")) == [".mediapipe-writer.lock"]
    assert not (tmp_path / "b").exists() and not [e for e in os.listdir(tmp_path) if e.startswith(".b.")]


# ----------------------------------------------------------------------------------- spec catalogue
SPEC_CASES = {
    "kernel_sizes empty": ({"kernel_sizes": []}, "architecture.params.kernel_sizes"),
    "kernel_sizes zero": ({"kernel_sizes": [0]}, "architecture.params.kernel_sizes.0"),
    "embed_dim huge": ({"embed_dim": 1e9}, "architecture.params.embed_dim"),
    "unknown param": ({"filterz": 8}, "unknown field 'architecture.params.filterz'"),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_architecture_params_that_cannot_be_built(tmp_path, case):
    params, want = SPEC_CASES[case]
    s = write_spec(tmp_path / "m.yaml", "m", "text_cnn", {**TINY["text_cnn"], **params})
    msg = one_line_error(run_cli(["build", str(s), "-t", "pixel-7", "--dry-run"]))
    assert want in msg and str(s) in msg
    if case == "unknown param":
        assert "Did you mean 'filters'" in msg and "kernel_sizes" in msg and "architecture text_cnn" in msg


def test_heads_must_divide_embed_dim(tmp_path):
    s = write_spec(tmp_path / "m.yaml", "m", "transformer", {**TINY["transformer"], "embed_dim": 18, "num_heads": 4})
    assert "not divisible by num_heads" in one_line_error(run_cli(["build", str(s), "-t", "pixel-7", "--dry-run"]))


def test_unknown_dataset_fails_the_dry_run(tmp_path):
    s = write_spec(tmp_path / "m.yaml", "m", "text_cnn", TINY["text_cnn"], dataset="banking76")
    msg = one_line_error(run_cli(["build", str(s), "-t", "pixel-7", "--dry-run"]))
    assert "unknown dataset 'banking76'" in msg and "banking77" in msg


TARGET_CASES = {
    "duplicate key": (None, "duplicate key 'quantization'"),
    "bool budget": (lambda d: d["budgets"].update(max_size_bytes=True), "expected a number, got the boolean"),
    "nan budget": (lambda d: d["budgets"].update(max_latency_p90_ms=float("nan")), "budgets.max_latency_p90_ms"),
    "recipe order": (lambda d: d.update(recipe={"passes": [{"qat": {}}, {"prune": {"sparsity": 0.5}}]}),
                     "'prune' cannot come after 'qat'"),
    "deep nesting": ("deep", "nested too deeply"),
}


@pytest.mark.parametrize("case", list(TARGET_CASES))
def test_target_catalogue(tmp_path, case):
    edit, want = TARGET_CASES[case]
    if edit is None:
        p = tmp_path / "t.yaml"
        p.write_text((REPO / "targets" / "pixel-7.yaml").read_text() + "quantization: float32\n")
    elif edit == "deep":
        p = tmp_path / "t.yaml"
        p.write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    else:
        p = _target(tmp_path, edit)
    assert want in one_line_error(run_cli(["targets", "check", str(p)]))


@pytest.mark.parametrize("cmd", [["targets", "check"], ["inspect"], ["bench"], ["models", "show"]])
def test_devices_and_directories_are_not_read(tmp_path, cmd):
    for path in ("/dev/zero", str(tmp_path)):
        msg = one_line_error(run_cli(cmd + [path]))
        assert "not a regular file" in msg or "is a directory" in msg or "no runtime for" in msg


def test_flag_values(spec, tmp_path):
    assert "not a number" in one_line_error(run_cli(["build", str(spec), "--prune", "nan", "--dry-run"]))
    p = tmp_path / "m.tflite"
    p.write_bytes(b"x")
    msg = one_line_error(run_cli(["bench", str(p), "--iterations", str(10 ** 23)]))
    assert "--iterations" in msg and "1000000" in msg and "--help" in msg


# ------------------------------------------------------------------------------------- bad data
def _files_spec(tmp_path, train: str, test: str) -> Path:
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "test.csv").write_text(test)
    s = write_spec(tmp_path / "m.yaml", "m", "text_cnn", TINY["text_cnn"], dataset=None)
    d = yaml.safe_load(s.read_text())
    d["data"] = {"files": {"train": "train.csv", "test": "test.csv"}}
    s.write_text(yaml.safe_dump(d))
    return s


def test_quoted_newlines_stay_inside_the_field(tmp_path):
    from edgeopt.data.datasets import read_table

    p = tmp_path / "a.csv"
    p.write_text('text,label\n"One\nof\nbest",pos\n"bad, sad",neg\n')
    assert read_table(p, None, "text", "label") == (["One\nof\nbest", "bad, sad"], ["pos", "neg"])


@pytest.mark.parametrize("train,want", [
    ("text,label\n" + "".join(f"text {i},a\n" for i in range(30)), "needs at least two"),
    ("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(30)) + ",a\n", "has an empty 'text'"),
    ("text,label\n" + "".join(f"\" \",{'ab'[i % 2]}\n" for i in range(30)), "has an empty 'text'"),
])
def test_degenerate_datasets_are_refused(tmp_path, train, want):
    s = _files_spec(tmp_path, train, "text,label\nx,a\n")
    out = tmp_path / "o"
    assert want in one_line_error(run_cli(["build", str(s), "-t", "pixel-7", "--out", str(out), "-q"]))
    assert not out.exists()


# ----------------------------------------------------------------------------------- non-token ONNX
def _onnx(path: Path, kind: str) -> Path:
    import onnx
    from onnx import TensorProto, helper

    if kind == "no input":
        node = helper.make_node("Constant", [], ["y"], value=helper.make_tensor("v", TensorProto.FLOAT, [1, 2], [0, 1]))
        g = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    else:
        shape, dtype = {"dynamic seq": (["N", "S"], TensorProto.INT32), "float input": ([1, 8], TensorProto.FLOAT),
                        "rank 1": ([8], TensorProto.INT32)}[kind]
        nodes = [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT), helper.make_node("Identity", ["f"], ["y"])]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("kind,want", [("dynamic seq", "dynamic sequence length"), ("float input", "not integer"),
                                       ("rank 1", "rank 1"), ("no input", "has 0 inputs")])
def test_bench_refuses_onnx_models_that_are_not_token_models(tmp_path, kind, want):
    p = _onnx(tmp_path / "m.onnx", kind)
    assert want in one_line_error(run_cli(["bench", str(p), "--iterations", "5"]))


# --------------------------------------------------------------------------- artifacts (slow fixture)
def _damage(data: bytes, how: str) -> bytes:
    b = bytearray(data)
    if how == "truncated":
        return bytes(b[: len(b) // 3])
    if how == "header only":
        return bytes(b[:16])
    if how == "root offset":
        b[0:4] = (len(b) * 4).to_bytes(4, "little")
        return bytes(b)
    if how == "tables scrambled":
        rng = np.random.default_rng(3)
        for i in rng.integers(8, 2048, 64):
            b[int(i)] ^= 0xFF
        return bytes(b)
    raise ValueError(how)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "header only", "root offset", "tables scrambled"])
def test_damaged_tflite_for_bench_validate_verify(multi_build, tmp_path, how):
    d = tmp_path / "b"
    shutil.copytree(multi_build["out"] / "pixel-7", d)
    bl = tmp_path / "bl.json"
    assert run_cli(["verify", str(d), "--baseline", str(bl), "--update", "--iterations", "10"]).exit_code == 0
    art = d / "model_int8.tflite"
    art.write_bytes(_damage(art.read_bytes(), how))
    for cmd in (["bench", str(art), "--iterations", "5"],
                ["validate", str(art), "-m", str(multi_build["spec"]), "-t", "pixel-7"],
                ["verify", str(d), "--baseline", str(bl), "--iterations", "10"]):
        r = run_cli(cmd)
        if r.exit_code != 2:  # a damage the runtime tolerates must then be caught by what it measures
            assert cmd[0] == "verify" and r.exit_code == 3, r.output
        else:
            assert str(art) in one_line_error(r)


@pytest.fixture
def verified(multi_build, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(multi_build["out"] / "pixel-7", d)
    bl = tmp_path / "bl.json"
    assert run_cli(["verify", str(d), "--baseline", str(bl), "--update", "--iterations", "10"]).exit_code == 0
    return d, bl


BASELINE_EDITS = {
    "not json": (lambda b: "{", "not a strict JSON baseline"),
    "a list": (lambda b: "[1, 2]", "baseline field"),
    "no latency": (lambda b: json.dumps({k: v for k, v in b.items() if k != "latency"}), "field 'latency'"),
    "threads missing": (lambda b: json.dumps({**b, "latency": {k: v for k, v in b["latency"].items()
                                                               if k != "threads"}}), "latency.threads"),
    "accuracy text": (lambda b: json.dumps({**b, "accuracy": "high"}), "field 'accuracy'"),
    "NaN": (lambda b: json.dumps({**b, "accuracy": float("nan")}), "not a strict JSON baseline"),
    "format 1": (lambda b: json.dumps({**b, "format_version": 1}), "format_version 1"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BASELINE_EDITS))
def test_malformed_baseline(verified, case):
    d, bl = verified
    edit, want = BASELINE_EDITS[case]
    bl.write_text(edit(json.loads(bl.read_text())))
    msg = one_line_error(run_cli(["verify", str(d), "--baseline", str(bl), "--iterations", "10"]))
    assert want in msg and str(bl) in msg and "--update" in msg


MANIFEST_EDITS = {
    "no metrics": (lambda m: m.pop("metrics"), "field 'metrics'"),
    "no threads": (lambda m: m["metrics"]["latency_budget_row"].pop("threads"), "metrics.latency_budget_row.threads"),
    "artifact number": (lambda m: m["metrics"].update(artifact=3), "metrics.artifact"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MANIFEST_EDITS))
def test_malformed_manifest(verified, case):
    d, bl = verified
    edit, want = MANIFEST_EDITS[case]
    m = json.loads((d / "manifest.json").read_text())
    edit(m)
    (d / "manifest.json").write_text(json.dumps(m))
    msg = one_line_error(run_cli(["verify", str(d), "--baseline", str(bl), "--iterations", "10"]))
    assert want in msg and "manifest.json" in msg


@pytest.mark.slow
def test_baseline_path_under_a_file_and_foreign_json(verified, tmp_path):
    d, _ = verified
    (tmp_path / "file").write_text("x")
    msg = one_line_error(run_cli(["verify", str(d), "--baseline", str(tmp_path / "file" / "bl.json"), "--update",
                                  "--iterations", "10"]))
    assert "cannot write" in msg
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "data"}')
    assert "not an edgeopt baseline" in one_line_error(
        run_cli(["verify", str(d), "--baseline", str(mine), "--update", "--iterations", "10"]))
    assert mine.read_text() == '{"my": "data"}'


@pytest.mark.slow
def test_tokenizer_json_that_is_not_an_object(multi_build, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(multi_build["out"] / "pixel-7", d)
    (d / "edgeopt_tokenizer.json").write_text("[1, 2, 3]")
    msg = one_line_error(run_cli(["bench", str(d / "model_int8.tflite"), "--iterations", "5"]))
    assert "edgeopt_tokenizer.json" in msg and "JSON object" in msg


@pytest.mark.slow
def test_validate_against_another_spec(multi_build, tmp_path):
    art = multi_build["out"] / "pixel-7" / "model_int8.tflite"
    other_vocab = write_spec(tmp_path / "v.yaml", "v", "text_cnn", TINY["text_cnn"],
                             limit={"train": 9000, "dev": 300, "test": 400})
    other_data = write_spec(tmp_path / "s.yaml", "s", "text_cnn", TINY["text_cnn"], dataset="smsspam",
                            limit={"train": 2000, "dev": 200, "test": 300})
    assert "another tokenizer" in one_line_error(run_cli(["validate", str(art), "-m", str(other_vocab), "-t", "pixel-7"]))
    msg = one_line_error(run_cli(["validate", str(art), "-m", str(other_data), "-t", "pixel-7"]))
    assert "labels" in msg and "ham" in msg
    # the bare file, with nothing beside it: the runtime's refusal and the output width are caught
    alone = tmp_path / "alone" / "model.tflite"
    alone.parent.mkdir()
    shutil.copy(art, alone)
    assert "outside this artifact's vocabulary" in one_line_error(
        run_cli(["validate", str(alone), "-m", str(other_vocab), "-t", "pixel-7"]))
    msg = one_line_error(run_cli(["validate", str(alone), "-m", str(other_data), "-t", "pixel-7"]))
    assert "it was built for other data" in msg or "built with another tokenizer" in msg


# ------------------------------------------------------------------------------ fuzzing (subprocess)
FUZZ_WORKER = r'''
import json, sys, traceback
from click.testing import CliRunner
from edgeopt.cli import main
out, spec, mutants = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
res = []
for path, target in mutants:
    for cmd in (["inspect", path], ["bench", path, "--iterations", "3", "--warmup", "0"],
                ["validate", path, "-m", spec, "-t", target]):
        if cmd[0] == "inspect" and path.endswith(".onnx"):
            continue
        open(out + ".cur", "w").write(" ".join(cmd))
        r = CliRunner().invoke(main, cmd)
        exc = None if r.exception is None or isinstance(r.exception, SystemExit) else \
            "".join(traceback.format_exception(r.exception))[-600:]
        res.append({"cmd": cmd, "exit": r.exit_code, "exc": exc, "stderr": r.stderr})
json.dump(res, open(out, "w"))
'''


def _mutants(src: bytes, n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = bytearray(src)
        kind = i % 4
        if kind == 0:  # flip a few bytes
            for j in rng.integers(0, len(b), int(rng.integers(1, 9))):
                b[int(j)] = int(rng.integers(0, 256))
        elif kind == 1:  # truncate
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 2:  # overwrite a window with noise
            at, w = int(rng.integers(0, len(b))), int(rng.integers(4, 64))
            b[at:at + w] = rng.integers(0, 256, len(b[at:at + w])).astype(np.uint8).tobytes()
        else:  # flip bytes in the first kilobyte (headers, vtables, offsets)
            for j in rng.integers(0, min(1024, len(b)), int(rng.integers(1, 5))):
                b[int(j)] ^= 1 << int(rng.integers(0, 8))
        out.append(bytes(b))
    return out


@pytest.mark.slow
def test_fuzzed_artifacts_never_crash(multi_build, tmp_path):
    """200 seeded mutants each of a .tflite and an .onnx through inspect, bench and validate, in a separate
    process: no traceback, no signal, no hang; every failure is a one-line exit 2 (or a measured exit 0/3)."""
    mutants = []
    for src, target in ((multi_build["out"] / "pixel-7" / "model_int8.tflite", "pixel-7"),
                        (multi_build["out"] / "x86-avx2-server" / "model_int8.onnx", "x86-avx2-server")):
        d = tmp_path / target
        d.mkdir()
        for i, data in enumerate(_mutants(src.read_bytes(), 200, seed=11)):
            p = d / f"m{i:03d}{src.suffix}"
            p.write_bytes(data)
            mutants.append((str(p), target))
    out = tmp_path / "res.json"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    try:
        p = subprocess.run([sys.executable, "-c", FUZZ_WORKER, str(out), str(multi_build["spec"]),
                            json.dumps(mutants)], env=env, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang on: {Path(str(out) + '.cur').read_text()}")
    assert p.returncode == 0, f"worker died ({p.returncode}) on: {Path(str(out) + '.cur').read_text()}\n{p.stderr[-2000:]}"
    res = json.loads(out.read_text())
    assert len(res) == 200 * 3 + 200 * 2
    bad = [r for r in res if r["exc"] or r["exit"] not in (0, 2, 3)]
    assert not bad, bad[:3]
    for r in res:
        if r["exit"] == 2:
            lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r
    assert sum(r["exit"] == 2 for r in res) > 300  # most mutants are refused, not silently run


# ------------------------------------------------------------------------------ wrong builds never pass
@pytest.mark.slow
def test_diverged_training_fails_the_build_and_the_manifest_is_strict_json(tmp_path, monkeypatch):
    """A model whose outputs overflow (weights of 1e30 multiplied together: inf, then NaN through training) fails
    its build on finite_outputs, and its manifest is still strict JSON. (A learning rate of 1e30 did this once; a
    learning rate is now bounded at 10.)"""
    (tmp_path / "blowup.py").write_text(
        "import tf_keras as K\n"
        "def blowup(vocab_size, num_classes, seq_len):\n"
        "    i = K.Input((seq_len,), dtype='int32')\n"
        "    x = K.layers.Embedding(vocab_size, 8, embeddings_initializer=K.initializers.Constant(1e30))(i)\n"
        "    x = K.layers.GlobalAveragePooling1D()(x)\n"
        "    x = K.layers.Dense(16, kernel_initializer=K.initializers.Constant(1e30))(x)\n"
        "    return K.Model(i, K.layers.Dense(num_classes)(x))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    s = tmp_path / "m.yaml"
    s.write_text(yaml.safe_dump({"name": "m", "data": {"dataset": "banking77", "limit": {"train": 600, "dev": 100,
                                                                                          "test": 200}},
                                 "tokenizer": {"kind": "regex", "seq_len": 16, "max_vocab": 2000},
                                 "model": {"builder": "blowup:blowup"}, "training": {"epochs": 1}}))
    out = tmp_path / "o"
    r = run_cli(["build", str(s), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY])
    assert r.exit_code == 3 and "finite_outputs" in r.stderr
    text = (out / "manifest.json").read_text()
    m = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    checks = {c["name"]: c for c in m["budgets"]["checks"]}
    assert not checks["finite_outputs"]["passed"] and not checks["min_export_agreement"]["passed"]
    assert checks["min_export_agreement"]["value"] is None


# ----------------------------------------------------------------------------------- cache poisoning
def test_damaged_cache_entries_are_discarded(tmp_path, capsys):
    from edgeopt.cache import ArtifactCache
    from edgeopt.tf import keras

    K = keras()

    def make():
        return K.Sequential([K.Input((4,)), K.layers.Dense(3)])

    m = make()
    cache = ArtifactCache(root=tmp_path)
    damage = {
        "truncated": lambda p: p.write_bytes(p.read_bytes()[:40]),
        "empty": lambda p: p.write_bytes(b""),
        "nan weights": lambda p: np.savez(p, w0=np.full((4, 3), np.nan, np.float32), w1=np.zeros(3, np.float32)),
        "random weights": lambda p: np.savez(p, w0=np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32),
                                             w1=np.zeros(3, np.float32)),
        "removed": lambda p: p.unlink(),
    }
    for i, (what, fn) in enumerate(damage.items()):
        k = f"k{i}"
        cache.save(k, m, {"accuracy": 0.5})
        assert cache.load(k, make) is not None
        fn(tmp_path / k / "weights.npz")
        assert cache.load(k, make) is None, what
        err = capsys.readouterr().err
        assert f"cache entry {tmp_path / k} is damaged" in err and "recomputing" in err and len(err.splitlines()) == 1
        assert not (tmp_path / k).exists()  # removed, so the next save writes a fresh entry
        cache.save(k, m, {"accuracy": 0.5})
        assert cache.load(k, make) is not None
    # a concurrent writer of the same key: the entry already there is kept
    from edgeopt.cache import write_entry

    write_entry(tmp_path, "k0", {"weights.npz": {"w0": np.ones(1)}}, {})
    assert cache.load("k0", make) is not None


@pytest.mark.slow
def test_a_poisoned_cache_does_not_reach_the_build(spec, tmp_path):
    out = tmp_path / "o"
    args = ["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", "--json", *FAST_LATENCY]
    first = json.loads(run_cli(args).stdout)
    entries = list((Path(os.environ["EDGEOPT_CACHE_DIR"]) / "artifacts").glob("*/weights.npz"))
    assert len(entries) == 1
    with np.load(entries[0]) as z:
        arrays = {k: np.random.default_rng(1).normal(size=z[k].shape).astype(z[k].dtype) for k in z.files}
    np.savez(entries[0], **arrays)
    r = run_cli(args)
    assert "is damaged" in r.stderr
    again = json.loads(r.stdout)
    # retrained, not the random weights: the same machine and seed give the same accuracy
    assert abs(again["metrics"]["accuracy"] - first["metrics"]["accuracy"]) < 0.02


# ---------------------------------------------------------------------- interruptions and concurrency
def _staging(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.tmp-")]


def _start_build(spec, out, env):
    return subprocess.Popen([EDGEOPT, "build", str(spec), "-t", "pixel-7", "--out", str(out), "-q",
                             "--latency-warmup", "5", "--latency-iterations", "200000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_staging(proc, parent, name, limit=240):
    t0 = time.time()
    while time.time() - t0 < limit and proc.poll() is None:
        if _staging(parent, name):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigterm_cleans_up_and_sigkill_leftovers_are_removed_by_the_next_build(spec, tmp_path):
    env = {**os.environ}
    out = tmp_path / "o"
    p = _start_build(spec, out, env)
    assert _wait_for_staging(p, tmp_path, "o"), p.communicate()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err, err
    assert not _staging(tmp_path, "o") and not out.exists()
    p = _start_build(spec, out, env)
    assert _wait_for_staging(p, tmp_path, "o")
    p.kill()
    p.wait()
    assert _staging(tmp_path, "o")  # SIGKILL cannot clean up ...
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY])
    assert r.exit_code == 0 and not _staging(tmp_path, "o")  # ... the next build of the same --out does


@pytest.mark.slow
def test_two_concurrent_builds_of_one_out_sharing_one_cache(spec, tmp_path):
    out = tmp_path / "o"
    cmd = [EDGEOPT, "build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"] == "tiny" and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


@pytest.mark.slow
def test_quiet_means_quiet(spec, tmp_path):
    p = subprocess.run([EDGEOPT, "build", str(spec), "-t", "pixel-7", "--out", str(tmp_path / "o"), "-q",
                        *FAST_LATENCY], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and p.stderr == "" and p.stdout == "", p.stderr
    p = subprocess.run([EDGEOPT, "bench", str(tmp_path / "o" / "model_int8.tflite"), "--iterations", "5"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "XNNPACK delegate" not in p.stderr and p.stderr == ""


def test_missing_onnx_tools_are_named_before_training(spec, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    msg = one_line_error(run_cli(["build", str(spec), "-t", "x86-avx2-server", "--dry-run"]))
    assert "tf2onnx" in msg and "pip install tf2onnx==1.17.0" in msg
    assert run_cli(["build", str(spec), "-t", "pixel-7", "--dry-run"]).exit_code == 0  # TFLite targets unaffected


def test_setup_requires_every_runtime_of_the_built_in_targets():
    """`pip install .` must give an edgeopt whose every built-in target works: the ONNX tools are requirements,
    pinned as in the lock."""
    import re

    setup = (REPO / "setup.py").read_text()
    lock = {m.group(1).lower(): m.group(2) for m in
            re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", (REPO / "requirements.lock").read_text(), re.M)}
    for pkg in ("tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "scipy"):
        assert f'"{pkg}=={lock[pkg]}"' in setup, pkg
    assert all("--hash=sha256:" in block for block in
               re.split(r"\n(?=[A-Za-z])", (REPO / "requirements.lock").read_text().split("\n\n")[-1])
               if re.match(r"^[A-Za-z]", block))


def test_the_runtimes_import_what_the_emulated_guest_has():
    """The arm64 guest has numpy and the runtimes only: the sessions (and the file checks they use) must not pull
    yaml, pydantic, click or TensorFlow."""
    code = ("import sys, edgeopt.runtimes.litert, edgeopt.runtimes.onnxrt, edgeopt.inspect, edgeopt.emulator.guest; "
            "bad = [m for m in ('yaml', 'pydantic', 'click', 'tensorflow') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
