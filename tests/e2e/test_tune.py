"""`edgeopt tune`: the space read from the target, candidates measured on the dev split, budgets as constraints,
the Pareto front and the pick, the pick's build (the only use of the test split), the report rendered in a real
headless Chromium, resume after SIGKILL, and two workers sharing one study in a real PostgreSQL server."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TINY, assert_no_tensorflow, open_in_chromium, run_cli, write_spec
from edgeopt.errors import InputError

TUNE_FAST = ["--latency-warmup", "5", "--latency-iterations", "30"]


def _target(path: Path, base: str, **changes) -> Path:
    """A reference target with its tune section (or budgets) changed: a smaller space keeps a test short."""
    from edgeopt.registry import load_target

    d = load_target(base).model_dump(mode="json", exclude_none=True)
    for k, v in changes.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    d["name"] = path.stem
    path.write_text(yaml.safe_dump(d))
    return path


def _summary(out: Path) -> dict:
    return json.loads((out / "tune" / "tune.json").read_text())


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "tune" / "trials.json").read_text())


def _evaluated_once(rows: list[dict]) -> None:
    """Every distinct candidate was measured by exactly one trial (a repeat reuses it, marked duplicate_of)."""
    labels = [r["label"] for r in rows if r["outcome"] == "evaluated"]
    assert len(labels) == len(set(labels)), labels
    for r in rows:
        if r["duplicate_of"] is not None:
            assert r["label"] in labels or any(o["trial"] == r["duplicate_of"] for o in rows)


# ------------------------------------------------------------------------------------------------ the space
def test_every_grid_candidate_round_trips_and_makes_a_valid_profile():
    import optuna

    from edgeopt.registry import list_targets
    from edgeopt.search import space_for

    for t in list_targets():
        sp = space_for(t)
        grid = sp.conversion_grid()
        assert grid[0] == sp.preset and len(grid) == len(set(grid))
        for c in grid:
            assert sp.suggest(optuna.trial.FixedTrial(c.to_params(sp)), training=False) == c
            prof = c.profile(t)  # validated as a whole
            assert prof.runtime.name == c.runtime and prof.quantization == c.quantization
            assert (prof.onnx is not None) == (c.format == "onnx")
            assert not (c.format == "onnx" and prof.clients)
        assert sp.signal == "instructions"  # the device's core: emulated (arm64) or callgrind's (x86)
        if t.device.arch == "x86_64":
            assert space_for(t, host_cost=True).signal == "host_latency"  # --host-cost: the build machine is x86
        else:
            with pytest.raises(InputError, match="--host-cost"):
                space_for(t, host_cost=True)
    pixel = space_for(next(t for t in list_targets() if t.name == "pixel-7"))
    assert pixel.runtimes == ("litert", "onnxruntime") and pixel.threads == (4,)
    assert {c.quantization for c in pixel.conversion_grid() if c.format == "tflite"} == {
        "float32", "dynamic", "int8", "float16", "int16x8"}


def test_pareto_front_and_pick_by_hand():
    from edgeopt.search import select as sel

    def row(n, acc, cost, size, ok=True):
        return {"trial": n, "accuracy": acc, "cost": cost, "size_bytes": size, "feasible": ok,
                "constraints": [0.0] if ok else [0.5]}

    rows = [row(0, 0.90, 100, 50), row(1, 0.91, 200, 60), row(2, 0.89, 150, 70), row(3, 0.95, 50, 10, ok=False),
            row(4, 0.90, 100, 40)]
    feasible = [r for r in rows if r["feasible"]]
    assert [r["trial"] for r in sel.pareto(feasible)] == [1, 4]  # 0 is dominated by 4 (same, smaller); 2 by 0
    assert sel.pick(rows, "cost")["trial"] == 4
    assert sel.pick(rows, "accuracy")["trial"] == 1
    assert sel.pick(rows, "size")["trial"] == 4
    assert sel.pick([r for r in rows if not r["feasible"]], "cost") is None
    # noise in the cost does not outrank accuracy: 0.3% dearer but more accurate wins within a 0.5% tie, and the
    # tied pick is still on the front
    noisy = [row(0, 0.860, 1_000_000, 50), row(1, 0.863, 1_003_000, 60), row(2, 0.870, 1_006_000, 40)]
    assert sel.pick(noisy, "cost")["trial"] == 0
    assert sel.pick(noisy, "cost", cost_tie=0.005)["trial"] == 1
    assert sel.pick(noisy, "cost", cost_tie=0.01)["trial"] == 2
    assert sel.pick(noisy, "cost", cost_tie=0.005) in sel.pareto(noisy)
    same = [row(0, 0.86, 100, 50), row(1, 0.86, 100.2, 40), row(2, 0.86, 100.1, 40)]  # then size, then cost
    assert sel.pick(same, "cost", cost_tie=0.005)["trial"] == 2
    assert sel.closest(rows, 1)[0]["trial"] in (0, 1, 2, 4)


def test_dry_run_prints_space_and_budget_without_tensorflow(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    assert_no_tensorflow("from edgeopt.cli import main\nimport sys\n"
                         f"try:\n    main(['tune', {str(spec)!r}, '--target', 'pixel-7', '--dry-run', '--trials', '5'])\n"
                         "except SystemExit as e:\n    assert e.code in (0, None), e.code")
    r = run_cli(["tune", str(spec), "--target", "x86-avx2-server", "--dry-run", "--json", "--trials", "3"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    # x86, costed by callgrind's instructions (one thread): ONNX Runtime's 3 modes + the LiteRT alternative's 5 modes
    # x XNNPACK on/off
    assert d["trials"] == {"conversion_only": 3 + 5 * 2, "sampled_training": 3, "total": 16}
    assert d["cost_signal"] == "instructions" and "max_latency_p90_ms" in d["constraints"]
    r = run_cli(["tune", str(spec), "--target", "x86-avx2-server", "--dry-run", "--json", "--trials", "3",
                 "--host-cost"])
    d = json.loads(r.stdout)  # the build machine's latency: threads 1 and 2 searched too
    assert d["trials"] == {"conversion_only": (3 + 5 * 2) * 2, "sampled_training": 3, "total": 29}
    assert d["cost_signal"] == "host_latency" and "max_latency_p90_ms" in d["constraints"]
    assert not (tmp_path / "build").exists()


def test_bad_tune_input_is_one_line_exit_2(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])

    def one_line(args):
        r = run_cli(["tune", str(spec), *args])
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r.stderr
        return lines[0]

    assert "not a study storage" in one_line(["--storage", "mysql://u:pw@h/db", "--out", str(tmp_path / "a")])
    msg = one_line(["--storage", "postgresql://edgeopt:s3cr3t@127.0.0.1:9/none", "--out", str(tmp_path / "b"),
                    "--target", "x86-avx2-server"])
    assert "cannot open the study storage" in msg and "s3cr3t" not in msg and "edgeopt:***@" in msg
    assert not (tmp_path / "b").exists()  # refused before any trial: nothing left behind
    assert "no tune to resume" in one_line(["--resume", "--out", str(tmp_path / "c")])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    assert "not an edgeopt tune directory" in one_line(["--out", str(mine)])
    assert (mine / "notes.txt").read_text() == "the user's" and sorted(os.listdir(mine)) == ["notes.txt"]
    assert "--trials" in run_cli(["tune", "--trials", "-1"]).stderr


# ------------------------------------------------------------------------------------------- a whole tune
@pytest.fixture(scope="session")  # its xdist group's worker builds it once, even when other modules' tests interleave
def tuned(tmp_path_factory):
    """A tiny CNN tuned for pixel-7 (the whole conversion-only grid, then two sampled training candidates)."""
    d = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEOPT_CACHE_DIR", str(d / "cache"))
        spec = write_spec(d / "tiny-cnn.yaml", "tiny-cnn", "text_cnn", TINY["text_cnn"], epochs=4,
                          learning_rate=0.005, limit={"train": 2000, "dev": 300, "test": 400})
        out = d / "out"
        t0 = time.perf_counter()
        r = run_cli(["tune", str(spec), "--target", "pixel-7", "--out", str(out), "--trials", "2", "--json",
                     "--quiet", *TUNE_FAST])
        seconds = time.perf_counter() - t0
    return {"out": out, "result": r, "spec": spec, "seconds": seconds, "cache": d / "cache"}


@pytest.mark.slow
@pytest.mark.emulator
def test_tune_searches_the_grid_then_samples_and_builds_the_pick(tuned):
    r, out = tuned["result"], tuned["out"]
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s == _summary(out)
    rows = _rows(out)
    _evaluated_once(rows)
    grid = [x for x in rows if not x["trains"]]
    assert len(grid) == 13 and all(x["state"] == "complete" for x in grid)  # 5 TFLite x 2 XNNPACK + 3 ONNX
    assert len(rows) == s["trial_budget"] == 15 and len([x for x in rows if x["trains"]]) == 2
    assert any(x["preset"] for x in rows) and s["preset"]["label"] == "litert int8, XNNPACK, 4 threads"
    by = {x["label"]: x for x in grid}
    # the cost is the device's: instructions on the emulated Cortex-A76, XNNPACK off costs more than on for int8
    assert "cortex-a76" in s["cost_label"] and s["cost_signal"] == "instructions"
    assert by["litert int8, no XNNPACK, 4 threads"]["cost"] > by["litert int8, XNNPACK, 4 threads"]["cost"]
    # 16x8 converts for a CNN; XNNPACK has no 16x8 kernels, so on and off run the same builtin kernels
    # (to a few instructions: 865,323 and 865,319 were seen in one CI run, equal in others)
    on, off = by["litert int16x8, XNNPACK, 4 threads"]["cost"], by["litert int16x8, no XNNPACK, 4 threads"]["cost"]
    assert abs(on - off) <= 0.001 * off, (on, off)
    assert by["litert int16x8, XNNPACK, 4 threads"]["size_bytes"] < by["litert float32, XNNPACK, 4 threads"][
        "size_bytes"]
    # the pick: meets every budget, the most accurate of those within the cost tie of the cheapest, on the Pareto
    # front, never worse than the preset beyond the tie
    pick = s["pick"]
    assert pick["feasible"] and pick["trial"] in s["pareto"] and s["cost_tie"] == 0.005
    feasible = [x for x in rows if x["feasible"] and x["duplicate_of"] is None]
    floor = min(x["cost"] for x in feasible)
    tied = [x for x in feasible if x["cost"] <= floor * 1.005]
    assert pick["cost"] <= floor * 1.005 and pick["accuracy"] == max(x["accuracy"] for x in tied)
    assert pick["cost"] <= s["preset"]["cost"] * 1.005
    # compared on dev; the test split is touched by the pick's build only
    assert s["reference"]["examples"] == 300 and "test split is touched once" in s["selection"]
    man = json.loads((out / "build" / "manifest.json").read_text())
    assert man["metrics"]["test_examples"] == 400 and s["pick_build"]["test_accuracy"] == man["metrics"]["accuracy"]
    assert man["recipe"]["convert"]["quantization"] == pick["candidate"]["quantization"]
    assert man["target_profile"]["runtime"]["name"] == pick["candidate"]["runtime"]
    assert s["pick_build"]["budgets_passed"] is True
    csv_lines = (out / "tune" / "trials.csv").read_text().strip().splitlines()
    assert len(csv_lines) == len(rows) + 1
    assert {x["trial"] for x in json.loads((out / "tune" / "pareto.json").read_text())} == set(s["pareto"])


@pytest.mark.slow
@pytest.mark.emulator
def test_evaluate_is_what_build_measures(tuned, monkeypatch):
    """The public evaluator gives the pick's build its exact test accuracy (same cached weights, same conversion,
    same runtime) and the tune its dev accuracy and cost, from another Evaluator in another call."""
    import edgeopt

    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(tuned["cache"]))
    s = _summary(tuned["out"])
    c = edgeopt.Candidate.from_dict(s["pick"]["candidate"])
    ev = edgeopt.Evaluator(str(tuned["spec"]), "pixel-7", quiet=True)
    try:
        m = ev.evaluate(c, split="test")
        assert m["split"] == "test" and m["examples"] == 400
        assert m["accuracy"] == s["pick_build"]["test_accuracy"]
        dev = ev.evaluate(c)
        assert dev["split"] == "dev" and dev["accuracy"] == s["pick"]["accuracy"]
        if c.runtime == "litert":  # LiteRT's emulated counts repeat exactly; ONNX Runtime's move by ~0.01%
            assert dev["cost"] == s["pick"]["cost"]
        else:
            assert abs(dev["cost"] - s["pick"]["cost"]) <= 0.005 * s["pick"]["cost"]
        assert all(p["cached"] == "disk" for p in m["passes"])  # trained by the tune, not again
        assert all(p["cached"] == "memory" for p in dev["passes"])
    finally:
        ev.close()


@pytest.mark.slow
@pytest.mark.emulator
def test_report_renders_its_plots_in_headless_chromium(tuned, tmp_path):
    """Chromium from Debian opens report.html offline: two inline SVG plots, the pick's red star painted."""
    from PIL import Image

    from edgeopt.search.report import PICK_COLOR

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (the README's test command installs Debian's chromium)"
    report = tuned["out"] / "tune" / "report.html"
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(args + ["--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 2 and "Dev accuracy vs cost" in dom.stdout
    probe, _ = open_in_chromium(report, tmp_path)
    assert probe["errors"] == [] and [f["id"] for f in probe["figures"]] == ["plot-cost", "plot-size"]
    assert all(f["width"] > 200 and f["painted"] > 10 for f in probe["figures"]), probe
    assert "e+0" not in dom.stdout  # costs for people (k/M), never 5.03133e+06
    shot = tmp_path / "report.png"
    p = subprocess.run(args + ["--window-size=1400,1000", f"--screenshot={shot}", report.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    want = tuple(int(PICK_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    red = sum(1 for px in img.getdata() if all(abs(a - b) <= 12 for a, b in zip(px, want)))
    assert red > 200, f"the pick's marker is not painted ({red} pixels of {PICK_COLOR})"
    blue = sum(1 for px in img.getdata() if all(abs(a - b) <= 12 for a, b in zip(px, (0x1f, 0x77, 0xb4))))
    assert blue > 50, "the Pareto front is not painted"


# --------------------------------------------------------------------------------------------- resuming
def _small_target(tmp_path: Path) -> Path:
    """pixel-7 with 9 conversion candidates: LiteRT (3 modes x XNNPACK on/off) and ONNX Runtime (3 modes)."""
    return _target(tmp_path / "phone-small.yaml", "pixel-7",
                   tune={"runtimes": ["onnxruntime"], "quantizations": ["float32", "dynamic", "int8"]})


def _small_server(tmp_path: Path) -> Path:
    """x86-avx2-server with 9 conversion candidates (tuned with --host-cost: host latency, nothing counted)."""
    return _target(tmp_path / "server-small.yaml", "x86-avx2-server",
                   tune={"runtimes": ["litert"], "quantizations": ["float32", "dynamic", "int8"], "threads": [1]})


def _study_trials(out: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{(out / 'tune' / 'study.db').resolve()}"
    try:
        return optuna.load_study(study_name=None, storage=url).get_trials(deepcopy=False)
    except Exception:
        return []


def _run_until(cmd, env, out: Path, complete: int) -> tuple[subprocess.Popen, int]:
    """Start a tune and return it *stopped* (SIGSTOP) once ``complete`` trials of its study have completed and
    the next one is running, with the number completed at that moment. A trial of the tiny model takes well under
    a second once it is trained: without freezing the process, it runs on past what was read."""
    from optuna.trial import TrialState

    def state():
        states = [t.state for t in _study_trials(out)]  # [] while the tune holds SQLite's write lock
        n = states.count(TrialState.COMPLETE)
        return n if n >= complete and TrialState.RUNNING in states else None

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if state() is not None:
            proc.send_signal(signal.SIGSTOP)
            n = state()
            if n is not None:
                return proc, n
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
    raise AssertionError(f"no trial completed within 600 s: {_completed(out)}")


def _completed(out: Path) -> dict:
    from optuna.trial import TrialState

    return {t.number: (t.values, t.user_attrs["candidate"]["label"]) for t in _study_trials(out)
            if t.state == TrialState.COMPLETE}


def test_signals_are_raised_only_where_a_tune_can_stop_cleanly():
    """SIGTERM/Ctrl-C outside edgeopt's own work (Optuna's bookkeeping) are held and raised at the next check;
    inside an interruptible region at once; a second signal while the first unwinds is held, not raised in the
    clean-up."""
    from edgeopt.search.run import Interrupts

    intr = Interrupts()
    intr.handler(signal.SIGTERM, None)  # during Optuna's tell: nothing raised there
    assert intr.pending == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        intr.check()
    intr.check()  # raised once
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        with intr.interruptible():
            assert intr.open
            intr.handler(signal.SIGINT, None)
    assert not intr.open
    with pytest.raises(KeyboardInterrupt):
        with intr.interruptible():
            try:
                intr.handler(signal.SIGTERM, None)
            finally:
                intr.handler(signal.SIGTERM, None)  # a second signal during the unwinding: held
    assert intr.pending == signal.SIGTERM and not intr.open
    with pytest.raises(KeyboardInterrupt):  # a held signal stops the next region before it starts
        with intr.interruptible():
            raise AssertionError("the region ran")
    with intr.interruptible():
        pass
    assert intr.pending is None and not intr.open


@pytest.mark.slow
def test_resume_after_sigterm_and_sigkill_does_not_redo_finished_trials(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=3, learning_rate=0.005)
    target = _small_server(tmp_path)
    out = tmp_path / "out"
    cmd = [str(Path(sys.executable).parent / "edgeopt"), "tune", str(spec), "--target", str(target), "--out",
           str(out), "--trials", "1", "--quiet", "--host-cost", *TUNE_FAST]
    env = {**os.environ}
    # SIGTERM (as a service manager stops a job): a clean stop that says how to continue
    proc, n = _run_until(cmd, env, out, 2)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err.decode(), err.decode()[-2000:]
    first = _completed(out)
    # stopped at once: the trial running when the signal came is failed (or, told just then, completed)
    assert n <= len(first) <= n + 1 and not (out / "build").exists(), (n, first)
    # without --resume the existing study is not touched
    again = run_cli(["tune", str(spec), "--target", str(target), "--out", str(out), "--trials", "1", "--host-cost"])
    assert again.exit_code == 2 and "--resume" in again.stderr
    # resumed, then SIGKILL (nothing can be cleaned up): the trial it was running is left RUNNING in the study
    proc, _ = _run_until(cmd + ["--resume"], env, out, len(first) + 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _completed(out)
    assert "RUNNING" in {t.state.name for t in _study_trials(out)}
    assert all(before[n] == v for n, v in first.items())
    r = subprocess.run(cmd + ["--resume", "--json"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
    after = {t.number: t for t in _study_trials(out)}
    for n, (values, label) in before.items():  # finished trials kept, not run again
        assert after[n].values == values and after[n].user_attrs["candidate"]["label"] == label
    rows = _rows(out)
    _evaluated_once(rows)
    assert len([x for x in rows if x["outcome"] == "evaluated" and not x["trains"]]) == 9  # 3 x 2 + 3
    assert s["trials"] == s["trial_budget"] == 10 and s["pick_build"]["budgets_passed"]
    assert (out / "build" / "manifest.json").is_file()


# ------------------------------------------------------------------------------------- no candidate fits
@pytest.mark.slow
def test_no_candidate_meets_the_budgets_exit_3_with_the_closest(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=3, learning_rate=0.005)
    target = _target(tmp_path / "strict.yaml", "x86-avx2-server",
                     budgets={"min_accuracy": 0.99, "max_accuracy_drop": 0.015},
                     tune={"runtimes": [], "quantizations": ["int8"], "threads": [1]})
    out = tmp_path / "out"
    r = run_cli(["tune", str(spec), "--target", str(target), "--out", str(out), "--trials", "2", "--host-cost",
                 *TUNE_FAST])
    assert r.exit_code == 3, r.output
    assert "no candidate meets every budget" in r.stderr and "min_accuracy" in r.stderr
    s = _summary(out)
    assert s["pick"] is None and s["closest"] and not (out / "build").exists()
    rows = _rows(out)
    # a training candidate whose dev accuracy during fine-tuning is hopeless against min_accuracy is stopped
    trained = [x for x in rows if x["trains"]]
    assert trained and all(x["state"] == "pruned" and x["outcome"].startswith("stopped early") for x in trained)
    assert (out / "tune" / "report.html").is_file()


# ------------------------------------------------------------------------------------------ two workers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    """A real PostgreSQL server (Debian's postgresql) on 127.0.0.1, in a temporary directory, with a database and a
    password-protected role for the workers."""
    import glob

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    assert bins, "PostgreSQL is not installed (the README's test command installs Debian's postgresql)"
    bin_ = Path(bins[-1])
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="edgeopt-test-pg-"))  # pytest's tmp tree is closed to other users
    data = home / "data"
    data.mkdir()
    as_user = []
    if os.geteuid() == 0:  # postgres refuses to run as root: Debian's postgres user runs it
        for p in (home, data):
            shutil.chown(p, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [str(bin_ / "initdb"), "-D", str(data), "-A", "scram-sha-256", "--auth-local=trust",
                              "-U", "postgres"], check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen(as_user + [str(bin_ / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                                       "-c", "listen_addresses=127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if subprocess.run([str(bin_ / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        psql = as_user + [str(bin_.parent / "bin" / "psql"), "-h", str(data), "-p", str(port), "-U", "postgres",
                          "-v", "ON_ERROR_STOP=1"]
        subprocess.run(psql + ["-c", "CREATE ROLE edgeopt LOGIN PASSWORD 'tune-s3cret'"], check=True,
                       capture_output=True)
        subprocess.run(psql + ["-c", "CREATE DATABASE studies OWNER edgeopt"], check=True, capture_output=True)
        yield f"postgresql://edgeopt:tune-s3cret@127.0.0.1:{port}/studies"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.emulator
def test_two_workers_share_one_study_in_postgresql(tmp_path, postgres):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=3, learning_rate=0.005)
    target = _small_target(tmp_path)
    exe = str(Path(sys.executable).parent / "edgeopt")
    common = ["tune", str(spec), "--target", str(target), "--trials", "0", "--quiet", "--json", *TUNE_FAST]
    single = subprocess.run([exe, *common, "--out", str(tmp_path / "single")], capture_output=True, text=True,
                            timeout=900)  # also trains the model into the shared cache
    assert single.returncode == 0, single.stderr[-3000:]
    workers = [subprocess.Popen([exe, *common, "--out", str(tmp_path / f"w{i}"), "--storage", postgres, "--study",
                                 "shared"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in (1, 2)]
    outs = [w.communicate(timeout=900) for w in workers]
    for w, (o, e) in zip(workers, outs):
        assert w.returncode == 0, e[-3000:]
    one = json.loads(single.stdout)
    s1, s2 = (json.loads(o) for o, _ in outs)
    # the same study seen by both; every candidate evaluated once, by one of the two workers
    rows = _rows(tmp_path / "w1")
    assert rows == _rows(tmp_path / "w2")
    _evaluated_once(rows)
    evaluated = [x for x in rows if x["outcome"] == "evaluated"]
    assert len(evaluated) == 9 and len({x["worker"] for x in evaluated}) == 2
    # the pick equals a single worker's
    assert s1["pick"]["label"] == s2["pick"]["label"] == one["pick"]["label"]
    assert s1["pick"]["cost"] == one["pick"]["cost"]
    # the password is in no output
    for d in (tmp_path / "w1", tmp_path / "w2"):
        for f in (d / "tune").iterdir():
            assert "tune-s3cret" not in f.read_text(errors="replace"), f
    assert all("tune-s3cret" not in o + e for o, e in outs)
    assert "edgeopt:***@" in s1["storage"]


@pytest.mark.slow
def test_a_distillation_candidate_through_the_public_evaluator(tmp_path):
    """A teacher in the space: the candidate trains by distillation (the teacher trained once, cached), measured
    on the dev split like any other candidate."""
    import edgeopt

    data = {"dataset": "smsspam", "limit": {"train": 800, "dev": 200, "test": 300}}
    spec = write_spec(tmp_path / "student.yaml", "student", "text_cnn", {"embed_dim": 8, "filters": 8,
                                                                         "kernel_sizes": [3]}, dataset="smsspam",
                      limit=data["limit"], learning_rate=0.01)
    teacher = write_spec(tmp_path / "teacher.yaml", "teacher", "text_cnn", TINY["text_cnn"], dataset="smsspam",
                         limit=data["limit"], learning_rate=0.01)
    ev = edgeopt.Evaluator(str(spec), "x86-avx2-server", quiet=True, teachers=(str(teacher),),
                           latency=edgeopt.LatencySettings(5, 30), host_cost=True)
    try:
        assert ev.space.teachers == (str(teacher),)
        c = edgeopt.Candidate("onnxruntime", "dynamic", False, 1, teacher=str(teacher))
        assert c.trains and ev.space.suggest(__import__("optuna").trial.FixedTrial(c.to_params(ev.space)),
                                             training=True) == c
        m = ev.evaluate(c)
        assert m["passes"][0]["step"] == "distill" and m["split"] == "dev" and m["examples"] == 200
        # spam vs ham: the majority class is about 0.87 of a slice; a distilled student learns more than that
        assert m["accuracy"] >= 0.9 and m["cost"] == m["host_latency"]["p90_ms"]
        assert "host latency" in m["cost_label"]
    finally:
        ev.close()


def test_the_preset_is_always_in_the_space(tmp_path):
    """A tune section that leaves out the target's own quantization or threads still has the preset."""
    import optuna

    from edgeopt.registry import load_target
    from edgeopt.search import space_for

    t = load_target(str(_target(tmp_path / "narrow.yaml", "x86-avx2-server",
                                tune={"runtimes": [], "quantizations": ["float32"], "threads": [2]})))
    sp = space_for(t, host_cost=True)  # threads are searched where the cost is a latency
    assert sp.quantizations["onnx"] == ("int8", "float32") and sp.threads == (1, 2)
    assert sp.suggest(optuna.trial.FixedTrial(sp.preset.to_params(sp)), training=False) == sp.preset
    assert [c.label() for c in sp.conversion_grid()] == [
        "onnxruntime int8, 1 thread", "onnxruntime int8, 2 threads", "onnxruntime float32, 1 thread",
        "onnxruntime float32, 2 threads"]


@pytest.mark.slow
def test_an_x86_tune_costs_candidates_by_callgrind_instructions(tmp_path):
    """An x86 target's candidates are costed by instructions per inference under callgrind (the device's core, not
    the build machine's clock), with the host latency measured and reported beside it."""
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    target = _target(tmp_path / "server-one.yaml", "x86-avx2-server",
                     tune={"runtimes": [], "quantizations": ["int8"], "threads": [1]})
    out = tmp_path / "out"
    r = run_cli(["tune", str(spec), "--target", str(target), "--out", str(out), "--trials", "0", "--json",
                 *TUNE_FAST])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["cost_signal"] == "instructions" and "callgrind" in s["cost_label"]
    (row,) = [x for x in _rows(out) if x["outcome"] == "evaluated"]
    assert row["cost"] > 10_000 and "callgrind" in row["cost_label"] and row["host_p90_ms"] > 0  # reported beside
    (t,) = [t for t in _study_trials(out) if t.user_attrs.get("metrics")]
    m = t.user_attrs["metrics"]
    assert m["cost"] == m["instructions"]["per_inference"] and m["instructions"]["cpu"] == "x86"
    assert m["host_latency"]["unit"] == "ms (build machine)"


def test_a_smaller_model_is_a_candidate_with_its_own_vocabulary(tmp_path):
    """tune --sizes: the vocabulary cap, the embedding width and the layer width are dimensions of the space; a
    candidate of another size trains with its own tokenizer and is measured on the dev split as that tokenizer
    encodes it; its file is smaller than the reference's; the pick's spec carries the size."""
    import optuna

    import edgeopt
    from edgeopt.registry import load_model_spec

    data = {"dataset": "smsspam", "limit": {"train": 800, "dev": 200, "test": 300}}
    spec = write_spec(tmp_path / "s.yaml", "s", "text_cnn", {"embed_dim": 32, "filters": 16, "kernel_sizes": [3]},
                      dataset="smsspam", limit=data["limit"], learning_rate=0.01)
    dry = run_cli(["tune", str(spec), "--target", "x86-avx2-server", "--host-cost", "--sizes", "--dry-run"])
    assert dry.exit_code == 0 and "model size: vocabulary cap 3000/1500; embedding width 32/24/16; layer width " \
                                  "16/8/32" in dry.output, dry.output
    ev = edgeopt.Evaluator(str(spec), "x86-avx2-server", quiet=True, sizes=True,
                           latency=edgeopt.LatencySettings(5, 30), host_cost=True)
    try:
        c = edgeopt.Candidate("onnxruntime", "float32", False, 1, max_vocab=1500, embed_dim=16, width=8)
        assert c.trains and ev.space.suggest(optuna.trial.FixedTrial(c.to_params(ev.space)), training=True) == c
        small = ev.evaluate(c)
        ref = ev.evaluate(edgeopt.Candidate("onnxruntime", "float32", False, 1))
        b = ev.builder_for(c)
        assert b is not ev.builder and b.tok.vocab_size <= 1500 < ev.builder.tok.vocab_size
        assert small["examples"] == ref["examples"] == 200 and small["size_bytes"] < ref["size_bytes"] / 2
        assert small["accuracy"] >= 0.87  # spam vs ham: above the majority class (about 0.87)
        sized = c.spec_for(load_model_spec(str(spec)))
        assert sized.tokenizer.max_vocab == 1500 and sized.architecture.params["embed_dim"] == 16
        assert sized.architecture.params["filters"] == 8 and "vocabulary 1500" in c.label()
        assert edgeopt.Candidate.from_dict(c.to_dict()) == c
    finally:
        ev.close()
    bad = run_cli(["tune", "banking77-transformer", "--target", "pixel-7", "--sizes", "--dry-run"])
    assert bad.exit_code == 0  # a built-in architecture: its sizes are choices
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"name": "own", "data": data | {"dataset": "smsspam"},
                                   "tokenizer": {"vocab_file": "v.txt", "seq_len": 16},
                                   "architecture": {"name": "text_cnn"}}))
    (tmp_path / "v.txt").write_text("<pad>\n<unk>\nfree\nwin\n")
    r = run_cli(["tune", str(own), "--target", "x86-avx2-server", "--sizes", "--dry-run"])
    assert r.exit_code == 2 and "tune --sizes" in r.stderr and "Fix: drop --sizes" in r.stderr
