"""Emulated arm64 validation (qemu-user). The tests marked ``emulator`` run real artifacts under qemu; CI installs
qemu-user-static and they run there. The others check the guards without qemu."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST_LATENCY, REPO, TINY, loosen_latency, reseal, run_cli, write_spec
from edgeopt.emulator import env
from edgeopt.emulator.env import CPU_MODELS, EmulatorError

REFERENCE_TARGETS = ["pixel-7", "raspberry-pi-4", "raspberry-pi-zero-2w", "android-arm64-fp16", "jetson-orin-nano-cpu"]


# ------------------------------------------------------------------------------------------ without qemu
def test_cpuinfo_per_model_names_its_core():
    for name, m in CPU_MODELS.items():
        text = m.cpuinfo()
        assert set(re.findall(r"^CPU part\s*:\s*(\S+)", text, flags=re.M)) == {f"0x{m.part:03x}"}
        assert text.count("processor\t:") == 2 and "CPU implementer\t: 0x41" in text
    assert "asimddp" in CPU_MODELS["cortex-a76"].features  # dotprod: XNNPACK's int8 neondot kernels
    assert "asimddp" not in CPU_MODELS["cortex-a53"].features


def test_cpuinfo_mismatch_is_refused(tmp_path):
    proc = tmp_path / "cpus" / "cortex-a76" / "proc"
    with pytest.raises(EmulatorError, match="missing: XNNPACK would fail to parse cpuinfo"):
        env.check_cpuinfo(tmp_path, "cortex-a76")
    proc.mkdir(parents=True)
    (proc / "cpuinfo").write_text(CPU_MODELS["cortex-a53"].cpuinfo())  # an A53's cpuinfo under -cpu cortex-a76
    with pytest.raises(EmulatorError, match=r"CPU part 0xd03 does not match -cpu cortex-a76 \(0xd0b\).*emulator setup"):
        env.check_cpuinfo(tmp_path, "cortex-a76")
    (proc / "cpuinfo").write_text(open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").is_file() else "x")
    with pytest.raises(EmulatorError, match="does not match"):  # the host's x86 text
        env.check_cpuinfo(tmp_path, "cortex-a76")
    (proc / "cpuinfo").write_text(CPU_MODELS["cortex-a76"].cpuinfo())
    assert env.check_cpuinfo(tmp_path, "cortex-a76") == tmp_path / "cpus" / "cortex-a76"
    with pytest.raises(Exception, match="not one edgeopt emulates"):
        env.check_cpuinfo(tmp_path, "cortex-x9")


def test_missing_qemu_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-aarch64(-static) anywhere
    monkeypatch.setenv("EDGEOPT_EMULATOR_DIR", str(tmp_path / "emu"))
    r = run_cli(["emulator", "setup"])
    assert r.exit_code == 2
    assert "qemu-user is not installed" in r.stderr and "apt-get update && apt-get install -y qemu-user-static" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "emu").exists()  # nothing half-built
    ls = run_cli(["emulator", "list", "--json"])
    st = json.loads(ls.stdout)
    assert ls.exit_code == 0 and not st["ready"] and any("qemu-user missing" in p for p in st["problems"])
    assert {c["cpu"] for c in st["cpus"]} >= {"cortex-a53", "cortex-a72", "cortex-a76"}


def test_emulate_before_setup_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEOPT_EMULATOR_DIR", str(tmp_path / "empty"))
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--emulate", "--dry-run"])
    assert r.exit_code == 2 and "emulator is not ready" in r.stderr and "edgeopt emulator setup" in r.stderr


def test_guest_wheels_are_the_locked_versions():
    lock = {ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1].split()[0]
            for ln in (REPO / "requirements.lock").read_text().splitlines() if "==" in ln and not ln.startswith(("#", " "))}
    for pin in env.GUEST_WHEELS:
        name, version = pin.split("==")
        assert lock[name.lower().replace("_", "-")] == version, pin


def test_target_with_an_unknown_cpu_model_is_rejected(tmp_path):
    y = (REPO / "targets" / "pixel-7.yaml").read_text().replace("qemu_cpu: cortex-a76", "qemu_cpu: cortex-x1")
    (tmp_path / "t.yaml").write_text(y)
    r = run_cli(["targets", "check", str(tmp_path / "t.yaml")])
    assert r.exit_code == 2 and "qemu_cpu" in r.stderr and "cortex-a53" in r.stderr


def _scramble_int8_weights(path: Path) -> None:
    """Permute every large int8 weight buffer in place: still a valid .tflite, now a wrong model."""
    from edgeopt.inspect import read_tflite

    S, model, buf = read_tflite(path)
    blob, sub, rng = bytearray(buf), model.Subgraphs(0), np.random.default_rng(0)
    n = 0
    for k in range(sub.TensorsLength()):
        t = sub.Tensors(k)
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if t.Type() == S.TensorType.INT8 and not isinstance(data, int) and data.size > 1000:
            raw = data.tobytes()
            at = blob.find(raw)
            assert at >= 0
            blob[at:at + len(raw)] = rng.permutation(np.frombuffer(raw, np.int8)).tobytes()
            n += 1
    assert n > 0
    path.write_bytes(bytes(blob))


# --------------------------------------------------------------------------------------------- with qemu
@pytest.fixture(scope="session")
def emulator_root(_emulator_dir):
    """The session's emulated environment (conftest's directory; setup takes about 10 s with the package mirrors,
    and a build that counts instructions may have done it already)."""
    st = env.setup("arm64", quiet=True)
    assert st["ready"] and st["instruction_counter"]["ready"], st
    yield Path(st["root"])


@pytest.mark.emulator
def test_setup_is_idempotent(emulator_root):
    before = (emulator_root / "ready.json").stat().st_mtime_ns
    r = run_cli(["emulator", "setup", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["changed"] is False
    assert (emulator_root / "ready.json").stat().st_mtime_ns == before
    ls = json.loads(run_cli(["emulator", "list", "--json"]).stdout)
    assert ls["ready"] and all(c["ready"] for c in ls["cpus"]) and ls["qemu_version"].startswith("7.")


@pytest.mark.emulator
def test_parity_on_each_cpu_model(emulator_root, multi_build):
    out, spec = multi_build["out"], multi_build["spec"]
    r = run_cli(["validate", str(out / "pixel-7" / "model_int8.tflite"), "-m", str(spec), "-t", "pixel-7",
                 "--emulate", "--sample", "120", "--json", *[a for c in CPU_MODELS for a in ("--cpu", c)]])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["emulator"]  # beside what `validate` prints without --emulate
    assert res["examples"] == 120 and res["output_scale"] > 0  # int8 graph: parity counted in quantization steps
    assert [c["cpu"] for c in res["cpus"]] == list(CPU_MODELS)
    for c in res["cpus"]:
        assert c["loaded"] and c["guest_machine"] == "aarch64" and c["rejected_ops"] == []
        assert c["delegate_applied"], c  # XNNPACK really applied inside the guest
        assert c["parity"]["max_steps"] <= 1 and c["parity"]["argmax_agreement"] == 1.0
        assert c["accuracy"] == res["host"]["accuracy"]
        assert "latency" not in json.dumps(c).lower()  # emulated time is never reported as latency
    # ONNX Runtime (the arm64 ONNX target), float outputs with dynamic-range kernels
    r = run_cli(["validate", str(out / "jetson-orin-nano-cpu" / "model_dynamic.onnx"), "-m", str(spec), "-t",
                 "jetson-orin-nano-cpu", "--emulate", "--sample", "120", "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["emulator"]["cpus"][0]
    assert c["cpu"] == "cortex-a76" and c["loaded"] and c["parity"]["passed"]


@pytest.mark.emulator
def test_tampered_cpuinfo_is_caught_before_running(emulator_root, multi_build, tmp_path, monkeypatch):
    # a second environment sharing the sysroot and wheels, whose cortex-a76 root carries an A53's cpuinfo
    root = tmp_path / "emu" / "arm64"
    root.mkdir(parents=True)
    for name in ("sysroot", "site", "ready.json"):
        os.symlink(emulator_root / name, root / name)
    env._write_cpu_roots(root, emulator_root / "sysroot")
    (root / "cpus" / "cortex-a76" / "proc" / "cpuinfo").write_text(CPU_MODELS["cortex-a53"].cpuinfo())
    monkeypatch.setenv("EDGEOPT_EMULATOR_DIR", str(tmp_path / "emu"))
    r = run_cli(["validate", str(multi_build["out"] / "pixel-7" / "model_int8.tflite"), "-m",
                 str(multi_build["spec"]), "-t", "pixel-7", "--emulate", "--sample", "10"])
    assert r.exit_code == 2 and "does not match -cpu cortex-a76" in r.stderr


@pytest.mark.emulator
def test_build_emulate_then_verify_catches_a_broken_artifact(emulator_root, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=2,
                      limit={"train": 1500, "dev": 200, "test": 300}, learning_rate=0.005)
    out = tmp_path / "b"
    r = run_cli(["build", str(spec), "-t", "raspberry-pi-zero-2w", "--out", str(out), "--emulate", "-q", "--json",
                 *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    emu = m["emulator"]
    assert [c["cpu"] for c in emu["cpus"]] == ["cortex-a53"] and emu["sample"]["examples"] == 300
    assert emu["cpus"][0]["loaded"] and emu["cpus"][0]["delegate_applied"] and emu["cpus"][0]["parity"]["passed"]
    assert any(c["name"] == "emulator_cortex-a53" and c["passed"] for c in m["budgets"]["checks"])
    report = (out / "report.md").read_text()
    assert "## Emulated arm64 runs (qemu-user)" in report and "| cortex-a53 | yes | yes |" in report
    base = tmp_path / "baseline.json"
    assert run_cli(["verify", str(out), "--baseline", str(base), "--update", "--iterations", "30"]).exit_code == 0
    loosen_latency(base)
    assert "emulator" in json.loads(base.read_text())
    ok = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30", "--json"])
    assert ok.exit_code == 0, ok.output
    assert any(c["metric"] == "emulator cortex-a53: parity with host" and c["passed"]
               for c in json.loads(ok.stdout)["checks"])
    # scramble the int8 weights of the deployed file: verify re-runs it (host and emulated) and fails with exit 3
    art = out / m["metrics"]["artifact"]
    _scramble_int8_weights(art)
    reseal(out)  # a later build whose own manifest lists the broken file
    bad = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30"])
    assert bad.exit_code == 3, bad.output
    failed = {ln.split("  ")[0] for ln in bad.stdout.splitlines() if "FAIL" in ln}
    assert {"accuracy", "emulator cortex-a53: accuracy"} <= failed, bad.stdout
    # the same weights at another quantization (the float32 file in the int8 file's place) cost more instructions
    # on the emulated core: the instruction gate fails, with nothing but the count to go on
    ins = {c["metric"]: c for c in json.loads(ok.stdout)["checks"] if "instructions" in c["metric"]}
    assert ins and all(c["passed"] and c["current"] == c["baseline"] for c in ins.values()), ins
    shutil.copy(out / "model_float32.tflite", art)
    reseal(out)
    bad = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30", "--json"])
    checks = {c["metric"]: c for c in json.loads(bad.stdout)["checks"]}
    c = checks["emulator cortex-a53: instructions (xnnpack on)"]
    assert bad.exit_code == 3 and not c["passed"] and c["current"] > 1.05 * c["baseline"], c


@pytest.mark.emulator
@pytest.mark.slow
def test_reference_builds_match_the_baselines_in_the_repository(emulator_root, tmp_path):
    """banking77-cnn (full Banking77) for every arm64 reference target, run on its emulated CPU, verified against
    baselines/banking77-cnn/<target>.json."""
    out = tmp_path / "ref"
    args = ["build", "banking77-cnn", "--out", str(out), "--emulate", "-q", "--json", *FAST_LATENCY]
    for t in REFERENCE_TARGETS:
        args += ["-t", t]
    r = run_cli(args)
    assert r.exit_code == 0, r.output
    for m in json.loads(r.stdout):
        assert all(c["loaded"] and c["parity"]["passed"] for c in m["emulator"]["cpus"]), m["target"]
        if m["target"] in ("pixel-7", "android-arm64-fp16"):  # they declare the MediaPipe client
            c = m["clients"][0]
            assert c["ran"] and c["passed"] and c["examples"] == 3080 and c["max_abs_score_diff"] <= 1e-6, c
            assert abs(c["accuracy"] - c["edgeopt_accuracy"]) <= c["ties_broken_differently"] / 3080
    for t in REFERENCE_TARGETS:
        base = REPO / "baselines" / "banking77-cnn" / f"{t}.json"
        v = run_cli(["verify", str(out / t), "--baseline", str(base), "--iterations", "100"])
        assert v.exit_code == 0, f"{t}:\n{v.output}"
    # a real regression on the full test split is still caught: a baseline that got 31 more of the 3,080 examples
    # right (1 point) than this artifact does
    from edgeopt.manifest import decode_correct, encode_correct

    bl = tmp_path / "bl.json"
    assert run_cli(["verify", str(out / "pixel-7"), "--baseline", str(bl), "--update", "--iterations", "30"]
                   ).exit_code == 0
    b = json.loads(bl.read_text())
    correct = decode_correct(b["correct"], b["test_examples"])
    assert b["test_examples"] == 3080
    correct[np.flatnonzero(~correct)[:31]] = True
    b.update(correct=encode_correct(correct), accuracy=round(float(correct.mean()), 6))
    b.pop("emulator", None)
    bl.write_text(json.dumps(b))
    v = run_cli(["verify", str(out / "pixel-7"), "--baseline", str(bl), "--iterations", "30", "--json"])
    assert v.exit_code == 3
    acc = next(c for c in json.loads(v.stdout)["checks"] if c["metric"] == "accuracy")
    assert not acc["passed"] and "31 examples lost, 0 gained" in acc["note"]
    shutil.rmtree(out)


@pytest.mark.emulator
@pytest.mark.slow
def test_own_model_file_gets_the_same_evidence(emulator_root, tmp_path):
    """A user's GRU model file: the int8 crash falls back to dynamic, which runs on the emulated Cortex-A53, the
    ONNX export of the same weights is compared (--format both), and verify gates the build like a built-in one."""
    import yaml

    from edgeopt.tf import keras

    K = keras()
    K.backend.clear_session()
    K.utils.set_random_seed(5)
    i = K.Input((24,), dtype="int32")
    x = K.layers.GRU(16)(K.layers.Embedding(3000, 16)(i))
    K.Model(i, K.layers.Dense(2)(x)).save(tmp_path / "gru.keras")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(
        {"data": {"dataset": "smsspam", "limit": {"train": 1200, "dev": 200, "test": 300}}}))
    out = tmp_path / "b"
    r = run_cli(["build", str(tmp_path / "gru.keras"), "--data", str(tmp_path / "data.yaml"), "--fit",
                 "-t", "raspberry-pi-zero-2w", "--fallback", "dynamic", "--format", "both", "--emulate", "--out",
                 str(out), "-q", "--json", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    assert m["conversion"]["deployed"] == "dynamic" and m["conversion"]["attempts"][0]["outcome"] == "crashed"
    cpu = m["emulator"]["cpus"][0]
    assert cpu["cpu"] == "cortex-a53" and cpu["loaded"] and cpu["parity"]["passed"], cpu
    cross = m["metrics"]["cross_format"]
    assert cross["format"] == "onnx" and cross["agreement_with_deployed"]["argmax_agreement"] >= 0.95
    assert m["model_source"]["model_file_sha256"] and m["passes"][0]["step"] == "train"
    base = tmp_path / "baseline.json"
    assert run_cli(["verify", str(out), "--baseline", str(base), "--update", "--iterations", "30"]).exit_code == 0
    loosen_latency(base)
    ok = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30", "--json"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.emulator
def test_instructions_per_inference_are_deterministic_and_belong_to_the_core(emulator_root, multi_build):
    """The same artifact counted 10 times on the same CPU model gives one number; the numbers rank the cores and
    XNNPACK as the hardware does (dotprod int8 kernels on the A76, none on the A53)."""
    from edgeopt.data.tokenizer import load_tokenizer
    from edgeopt.emulator import counter

    d = multi_build["out"] / "pixel-7"
    x = load_tokenizer(d).encode_batch(["my card still has not arrived"])
    art = d / "model_int8.tflite"
    runs = [counter.count(emulator_root, art, x, "cortex-a76", True) for _ in range(10)]
    assert len({r["instructions"] for r in runs}) == 1 and runs[0]["instructions"] > 0, runs
    assert all(r["delegate_applied"] and r["identical"] >= r["of"] // 2 for r in runs)
    a76_off = counter.count(emulator_root, art, x, "cortex-a76", False)["instructions"]
    a53 = counter.count(emulator_root, art, x, "cortex-a53", True)["instructions"]
    assert a76_off > runs[0]["instructions"] and a53 > runs[0]["instructions"]
    # the public API counts the same (the text is encoded by the build directory's tokenizer)
    import edgeopt

    pub = edgeopt.count_instructions(art, "cortex-a76", True, "my card still has not arrived")
    assert pub["instructions"] == runs[0]["instructions"] and pub["cpu"] == "cortex-a76", pub
    # in the emulated validation's record, never as a time
    r = run_cli(["validate", str(art), "-m", str(multi_build["spec"]), "-t", "pixel-7", "--emulate", "--sample", "20",
                 "--json"])
    out = json.loads(r.stdout)
    c = out["emulator"]["cpus"][0]
    assert c["instructions"]["xnnpack_on"] == runs[0]["instructions"] and c["instructions"]["xnnpack_off"] == a76_off
    assert "not a time" in out["emulator"]["instructions_note"]
    # what `validate` prints without --emulate is there too: the whole split's accuracy, chance, how people type it
    assert out["examples"] > 20 and out["accuracy"] > 0 and out["better_than_chance"]["passed"]
    assert len(out["robustness"]["transforms"]) == 5


@pytest.mark.emulator
def test_one_file_counts_alike_from_two_directories_and_two_emulator_directories(emulator_root, multi_build,
                                                                                   tmp_path):
    """The same file, CPU and XNNPACK setting counted from another directory (a longer path) and with the emulator
    moved elsewhere (its CPU roots link into the sysroot relatively) gives the same figure, within the 0.5% every
    gate allows (README: counts across processes moved by up to 0.015%)."""
    from edgeopt.data.tokenizer import load_tokenizer
    from edgeopt.emulator import counter
    from edgeopt.manifest import Tolerances

    d = multi_build["out"] / "pixel-7"
    x = load_tokenizer(d).encode_batch(["my card still has not arrived"])
    other = tmp_path / ("a-much-longer-directory-name-than-the-build-had-" * 3) / "model_int8.tflite"
    other.parent.mkdir(parents=True)
    shutil.copy2(d / "model_int8.tflite", other)

    def link_or_copy(src, dst):  # hard links where the file system allows: the environment is 229 MB
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    moved = tmp_path / "emulator-moved-elsewhere" / "arm64"
    shutil.copytree(emulator_root, moved, symlinks=True, copy_function=link_or_copy)
    assert all(not os.path.isabs(os.readlink(p)) for p in (moved / "cpus" / "cortex-a76").iterdir() if p.is_symlink())
    a = counter.count(emulator_root, d / "model_int8.tflite", x, "cortex-a76", True)["instructions"]
    b = counter.count(emulator_root, other, x, "cortex-a76", True)["instructions"]
    c = counter.count(moved, other, x, "cortex-a76", True)["instructions"]
    tol = Tolerances().instructions_rel
    print(f"counts: build directory {a}, another directory {b}, moved emulator {c}")
    assert a > 0 and max(a, b, c) - min(a, b, c) <= tol * a, (a, b, c)


@pytest.mark.emulator
def test_instruction_budget_is_judged_on_the_emulated_core(emulator_root, tmp_path):
    import yaml

    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=1,
                      limit={"train": 600, "dev": 100, "test": 100})
    t = yaml.safe_load((REPO / "targets" / "raspberry-pi-zero-2w.yaml").read_text())
    t["name"] = "tight-zero"
    t["budgets"] = {"max_instructions_per_inference": 1000, "max_estimated_latency_ms": 100.0}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(t))
    assert "needs device.cost_model" in run_cli(["targets", "check", str(tmp_path / "bad.yaml")]).output
    t["device"]["cost_model"] = {"ipc": 0.5, "clock_ghz": 1.0, "source": "a test's assumption"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(t))
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "b"), "--emulate", "-q",
                 "--json", *FAST_LATENCY])
    assert r.exit_code == 3, r.output
    m = json.loads(r.stdout)
    checks = {c["name"]: c for c in m["budgets"]["checks"]}
    c = checks["max_instructions_per_inference"]
    assert not c["passed"] and c["value"] > 1000 and "cortex-a53" in c["unit"]
    dc = m["device_cost"]
    assert dc["instructions_per_inference"] == c["value"] and dc["cpu"] == "cortex-a53"
    assert dc["label"] == "emulated instructions per inference (cortex-a53)"
    assert dc["estimated_latency_ms"] == round(c["value"] / 0.5 / 1e6, 4) and dc["estimate_source"] == "a test's assumption"
    assert checks["max_estimated_latency_ms"]["passed"] and "estimate" in checks["max_estimated_latency_ms"]["unit"]
    report = (tmp_path / "b" / "report.md").read_text()
    assert "This is an estimate" in report and "a test's assumption" in report
    # without --emulate the build counts on the target's core all the same (its budget is about instructions)
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "c"), "-q", "--json",
                 *FAST_LATENCY])
    m2 = json.loads(r.stdout)
    assert r.exit_code == 3 and m2.get("emulator") is None and m2["device_cost"]["instructions_per_inference"] == c["value"]
    # --no-count: nothing counted, and the instruction budgets are skipped with the reason, never judged on host
    # numbers (the build still fails on what it did judge: this one-epoch model is no better than chance)
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "d"), "-q", "--json",
                 "--no-count", *FAST_LATENCY])
    m3 = json.loads(r.stdout)
    assert m3.get("device_cost") is None and "max_instructions_per_inference" not in r.stderr
    skipped = {c["name"]: c for c in m3["budgets"]["checks"] if c.get("skipped")}
    assert set(skipped) == {"max_instructions_per_inference", "max_estimated_latency_ms"}
    assert all(c["value"] is None and "--no-count" in c["skipped"] for c in skipped.values())
    assert r.exit_code == (0 if all(c["passed"] for c in m3["budgets"]["checks"]) else 3)
