"""Shared fixtures. Tests use small seeded slices of the real datasets (EDGEOPT_DATA_PATH, default
../shared/data beside the repository) and tiny models."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"

if not os.environ.get("EDGEOPT_DATA_PATH") and DEFAULT_DATA.is_dir():
    os.environ["EDGEOPT_DATA_PATH"] = str(DEFAULT_DATA)


# ------------------------------------------------------------------------- environments, warmed up early
# The MediaPipe environments, the arm64 emulator and the software GPU driver are set up on first use: minutes of
# downloads and unpacking that do not need the CPUs the training tests use. When the session runs tests that may
# need them, they are set up in the background from the start (into the session's own directories), and a test that
# needs one waits on the setup's lock instead of starting its own. EDGEOPT_TEST_PREWARM=0 turns this off.
_prewarm: list = []
_made_dirs: list = []


def _session_dir(var: str, prefix: str) -> Path:
    if not os.environ.get(var):
        import tempfile

        d = tempfile.mkdtemp(prefix=f"edgeopt-test-{prefix}-")
        _made_dirs.append(d)
        os.environ[var] = d
    return Path(os.environ[var])


PREWARM = {
    "clients": "from edgeopt.clients import env\nfor n in env.ENVS: env.setup_one(n, quiet=True)",
    "emulator": "from edgeopt.emulator.validate import ensure_emulator\nensure_emulator(quiet=True)",
    "gpu": "from edgeopt.gpu import install\ninstall.setup(quiet=True)",
}


# The fast tier (`pytest -m "not slow"`, under 3 minutes on 2 cores) leaves out every test that trains and converts
# real models, runs an environment (the emulator, the MediaPipe clients, the GPU driver) or starts a server: those
# marked so, and those using a fixture that does.
SLOW_MARKERS = ("emulator", "client", "gpu", "ssh")
SLOW_FIXTURES = {"csv_build", "multi_build", "mp_builds", "x86_build", "emulator_root", "gpu_dir", "gpu_builds", "tiny_build",
                 "tagged", "tuned", "postgres", "sshd", "swapped"}


# The full suite runs on two xdist workers (`-n 2 --dist loadgroup`): the tests sharing one expensive build fixture
# are one group, run by one worker, so each fixture is built once. Each is session-scoped: a worker may run other
# modules' tests between a group's tests, and a module-scoped fixture would be torn down and built again there.
SHARED_BUILDS = ("csv_build", "multi_build", "mp_builds", "x86_build", "gpu_builds", "tagged", "tuned", "tiny_build", "swapped")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group markers set here
def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(m) for m in SLOW_MARKERS) or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        shared = next((f for f in SHARED_BUILDS if f in item.fixturenames), None)
        if shared is not None:
            item.add_marker(pytest.mark.xdist_group(shared))
            _group_id(config, item, shared)


def _group_id(config, item, group: str) -> None:
    """xdist's loadgroup sends the tests whose ids end in ``@group`` to one worker. pytest-xdist 3.8 writes that
    suffix into ``item._nodeid``, which pytest 9 no longer reads (a node's id is ``item._id``), so with this lock's
    pytest 9.2 no group ever formed: each worker built the shared fixtures it needed (measured: the tuned fixture
    twice in one CI run). The suffix is written where pytest 9 reads it, on the workers of a loadgroup run."""
    if not getattr(config.option, "loadgroup", False) or not hasattr(item, "_id"):
        return
    if not item.nodeid.endswith(f"@{group}"):
        item._id = type(item._id).parse(f"{item.nodeid}@{group}")


def _start_prewarm() -> None:
    import subprocess
    import sys
    import tempfile

    for name, code in PREWARM.items():
        log = tempfile.TemporaryFile(prefix=f"edgeopt-prewarm-{name}-")
        # SIGTERM at the session's end unwinds like Ctrl-C, so the setup removes what it had half-made
        code = f"import signal\nsignal.signal(signal.SIGTERM, signal.default_int_handler)\n{code}"
        _prewarm.append((name, log, subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=log,
                                                     start_new_session=True)))


def _prewarm_off(config) -> bool:
    return os.environ.get("EDGEOPT_TEST_PREWARM") == "0" or config.option.collectonly


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains and converts real models (runs in CI too)")
    config.addinivalue_line("markers", "client: runs MediaPipe Tasks in its own environment (set up on first use)")
    config.addinivalue_line("markers", "ssh: measures on a board through a real OpenSSH server on 127.0.0.1 (CI "
                                       "installs openssh-server)")
    config.addinivalue_line("markers", "emulator: runs artifacts under qemu-user arm64 (CI installs qemu-user-static; "
                                       "a session fixture runs `edgeopt emulator setup` into a temporary directory)")
    config.addinivalue_line("markers", "gpu: runs LiteRT's GPU accelerator on Mesa's software Vulkan device (a session "
                                       "fixture runs `edgeopt gpu setup` into a temporary directory)")
    if hasattr(config, "workerinput"):  # an xdist worker: the controller made the directories (inherited)
        return
    for var, prefix in (("EDGEOPT_CLIENT_DIR", "clients"), ("EDGEOPT_EMULATOR_DIR", "emulator"),
                        ("EDGEOPT_GPU_DIR", "gpu")):
        _session_dir(var, prefix)
    # with xdist workers, the controller does not collect: it warms up unless the run leaves out the slow tier
    if getattr(config.option, "numprocesses", None) and not _prewarm_off(config) \
            and "not slow" not in (config.option.markexpr or ""):
        _start_prewarm()


def pytest_collection_finish(session):
    if getattr(session.config, "workerinput", None) is not None or getattr(session.config.option, "numprocesses",
                                                                           None):
        return  # xdist: the controller decided
    if _prewarm_off(session.config):
        return
    if any(item.get_closest_marker("slow") for item in session.items):  # every environment test is slow
        _start_prewarm()


def pytest_sessionfinish(session, exitstatus):
    import shutil
    import signal

    for name, log, proc in _prewarm:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        log.close()
    for d in _made_dirs:
        shutil.rmtree(d, ignore_errors=True)


# The session's environment directories (EDGEOPT_CLIENT_DIR, EDGEOPT_EMULATOR_DIR, EDGEOPT_GPU_DIR when CI gives
# them, else temporary ones) are made in pytest_configure, before xdist's workers start, so all share them.
@pytest.fixture(autouse=True, scope="session")
def _client_envs():
    """The MediaPipe environments (metadata writer, TextClassifier), set up on first use into one directory for
    the whole session, never the user's."""
    yield Path(os.environ["EDGEOPT_CLIENT_DIR"])


@pytest.fixture(autouse=True, scope="session")
def _emulator_dir():
    """The arm64 emulator (builds for targets with an instruction budget count on it and set it up on first use),
    in one directory for the whole session, never the user's."""
    yield Path(os.environ["EDGEOPT_EMULATOR_DIR"])


@pytest.fixture(scope="session")
def gpu_dir():
    """The software Vulkan driver (``edgeopt gpu setup``), set up on first use into one directory for the whole
    session, never the user's."""
    from edgeopt.gpu import install

    st = install.setup(quiet=True)
    assert st["ready"], st
    yield Path(os.environ["EDGEOPT_GPU_DIR"])


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never read or write the user's real cache from a test."""
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(tmp_path / "cache"))


def write_spec(path: Path, name: str, arch: str, params: dict, *, dataset="banking77", seq_len=24, limit=None,
               epochs=3, learning_rate=0.005, **data_extra) -> Path:
    """A tiny model spec. Its defaults learn enough in 3 epochs to be far above chance on every built-in data set
    (a build refuses a file no better than the majority class): measured on 1,500 Banking77 texts, text_cnn 0.57,
    transformer 0.39, bilstm 0.10 against a majority-class rate of 0.025."""
    spec = {"name": name, "data": {"dataset": dataset, **data_extra,
                                   "limit": limit or {"train": 1500, "dev": 300, "test": 400}},
            "tokenizer": {"seq_len": seq_len, "max_vocab": 3000},
            "architecture": {"name": arch, "params": params},
            "training": {"epochs": epochs, "batch_size": 32, "patience": 2, "seed": 7,
                         "learning_rate": learning_rate}}
    path.write_text(yaml.safe_dump(spec))
    return path


TINY = {
    "text_cnn": {"embed_dim": 32, "filters": 32, "kernel_sizes": [2, 3], "dropout": 0.1},
    "bilstm": {"embed_dim": 16, "units": 8},
    "transformer": {"embed_dim": 16, "num_heads": 2, "ff_dim": 32, "num_layers": 1},
}
TINY_TAGGERS = {  # task: token_classification
    "cnn_tagger": {"embed_dim": 24, "filters": 32, "kernel_size": 3, "dilations": [1, 2], "dropout": 0.1},
    "bilstm_tagger": {"embed_dim": 16, "units": 16, "dropout": 0.1},
}

ALL_TARGETS = ["pixel-7", "raspberry-pi-4", "raspberry-pi-zero-2w", "android-arm64-fp16", "x86-avx2-server",
               "jetson-orin-nano-cpu"]
FAST_LATENCY = ["--latency-warmup", "5", "--latency-iterations", "30"]


def assert_no_tensorflow(code: str) -> None:
    """Run ``code`` in a fresh interpreter and fail if it imported TensorFlow."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code + "\nimport sys; assert 'tensorflow' not in sys.modules, "
                    "'tensorflow imported'"], check=True)


def run_cli(args, **kw):
    from click.testing import CliRunner

    from edgeopt.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


# five Banking77 intents as a user's CSV, two of them renamed: a label with a pipe (a Markdown table's separator)
# and one that is not ASCII, as people name their classes
CSV_LABELS = {"card_arrival": "card_arrival", "lost_or_stolen_card": "lost | stolen card",
              "exchange_rate": "taux de change (€)", "top_up_failed": "top_up_failed", "pin_blocked": "pin_blocked"}


def write_csv(path: Path, split: str = "train", per_label: int = 0) -> Path:
    """The Banking77 ``split`` texts of CSV_LABELS' intents, renamed, as a user's CSV (columns utterance, intent)."""
    import csv

    rows = [r for r in csv.DictReader(open(Path(os.environ["EDGEOPT_DATA_PATH"]) / "banking77" / f"{split}.csv",
                                           encoding="utf-8")) if r["category"] in CSV_LABELS]
    if per_label:
        seen: dict = {}
        rows = [r for r in rows if seen.setdefault(r["category"], []).append(r) or len(seen[r["category"]]) <= per_label]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["utterance", "intent"])
        w.writerows((r["text"], CSV_LABELS[r["category"]]) for r in rows)
    return path


@pytest.fixture(scope="session")
def csv_build(tmp_path_factory):
    """`edgeopt build --csv` on a user's CSV (no dev or test file: both carved) for pixel-7: the own-data command
    end to end, and the classifier whose report.md/report.html the report tests read."""
    d = tmp_path_factory.mktemp("csv")
    write_csv(d / "train.csv")
    r = run_cli(["build", "--csv", str(d / "train.csv"), "--text-column", "utterance", "--label-column", "intent",
                 "--name", "intents", "--out", str(d / "out"), "--json", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    return d, json.loads(r.stdout)


@pytest.fixture(scope="session")
def multi_build(tmp_path_factory):
    """One tiny text_cnn build on a slice of Banking77 for every built-in target: TFLite int8, dynamic, float16 and
    ONNX static int8 and dynamic."""
    d = tmp_path_factory.mktemp("multi")
    spec = write_spec(d / "tiny-cnn.yaml", "tiny-cnn", "text_cnn", TINY["text_cnn"], epochs=6, learning_rate=0.005,
                      limit={"train": 4000, "dev": 300, "test": 400})
    out = d / "out"
    args = ["build", str(spec), "--out", str(out), "--quiet", "--json", *FAST_LATENCY]
    for t in ALL_TARGETS:
        args += ["--target", t]
    res = run_cli(args)
    assert res.exit_code in (0, 3), res.output
    manifests = {m["target"]: m for m in json.loads(res.stdout)}
    return {"out": out, "manifests": manifests, "result": res, "spec": spec}


def loosen_latency(baseline: Path, rel: float = 20.0) -> None:
    """Tests gate correctness, not timing (benchmarks/ do that): a sub-0.1 ms latency re-measured over a few dozen
    calls on a 2-core machine is noise, so the baselines tests compare against allow it."""
    b = json.loads(baseline.read_text())
    b["tolerances"]["latency_rel"] = rel
    baseline.write_text(json.dumps(b))


def reseal(build: Path) -> None:
    """Record the files of ``build`` as they now are in its manifest: the stand-in for a later build whose own
    manifest lists a broken artifact (predict, verify and validate refuse a file that differs from its manifest)."""
    import hashlib

    mf = build / "manifest.json"
    m = json.loads(mf.read_text())
    for a in m["artifacts"]:
        a["sha256"] = hashlib.sha256((build / a["path"]).read_bytes()).hexdigest()
    mf.write_text(json.dumps(m))


# ------------------------------------------------------------------------------ reports: snippets and pages
def python_snippets(markdown: str) -> list[str]:
    """Every ```python block of a report, exactly as printed."""
    import re

    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.S | re.M)


def run_snippet(code: str, cwd: Path, python: str | None = None, env: dict | None = None) -> str:
    """Run a report's snippet as printed, from the build directory, in a fresh interpreter; its standard output."""
    import subprocess
    import sys

    p = subprocess.run([python or sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                       env=env)
    assert p.returncode == 0, f"snippet failed:\n{code}\n--- stderr:\n{p.stderr[-3000:]}"
    return p.stdout


PAGE_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.outerHTML) || e)), true);
const __ce = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); __ce(...a); };
window.addEventListener('load', () => {
  const figures = [...document.querySelectorAll('figure.plot')].map(f => {
    const s = f.querySelector('svg'); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
    return {id: f.id, width: Math.round(r.width), height: Math.round(r.height),
            painted: s ? s.querySelectorAll('path, use, rect, polyline, image').length : 0};
  });
  document.body.setAttribute('data-probe', JSON.stringify({errors: window.__errors, figures: figures,
    tables: document.querySelectorAll('table').length}));
});
</script>"""


def open_in_chromium(page: Path, tmp_path: Path) -> tuple[dict, str]:
    """Load ``page`` in Debian's headless Chromium, offline, with a probe added first in <head> that records every
    error event and console.error and, once loaded, each plot's drawn size and painted elements. Returns the probe's
    record and the DOM."""
    import html as _html
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (the README's test command installs Debian's chromium)"
    probe = tmp_path / f"probed-{page.name}"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("<head>", "<head>" + PAGE_PROBE, 1), encoding="utf-8")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                          "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    import re

    m = re.search(r"data-probe=\"([^\"]*)\"", dom.stdout)
    assert m, "the page did not finish loading (no probe record)"
    return json.loads(_html.unescape(m.group(1))), dom.stdout
