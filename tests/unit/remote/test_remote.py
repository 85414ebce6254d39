"""Real boards over SSH, against a real OpenSSH server (Debian's openssh-server) started on 127.0.0.1 with a
throwaway host key and user key; the "board" is this machine, reached only through sshd."""
from __future__ import annotations

import getpass
import glob
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import FAST_LATENCY, REPO, TINY, run_cli, write_spec

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.ssh


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeopt-test", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    assert os.path.isfile(SSHD), "sshd is missing: apt-get install -y openssh-server (the README's test command does)"
    d = tmp_path_factory.mktemp("sshd")
    host = _keygen(d / "host_ed25519")
    user_key = _keygen(d / "user_ed25519")
    (d / "authorized_keys").write_text((d / "user_ed25519.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"LogLevel ERROR\n")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} " + " ".join((d / "host_ed25519.pub").read_text().split()[:2]) + "\n")
    yield {"port": port, "key": user_key, "known": known, "dir": d, "user": getpass.getuser(),
           "url": f"ssh://{getpass.getuser()}@127.0.0.1:{port}"}
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")  # its xdist group's worker builds it once, even when other modules' tests interleave
def tiny_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("remote-build")
    spec = write_spec(d / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"])  # better than chance, or no build passes
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(d / "b"), "-q", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    return {"spec": spec, "artifact": d / "b" / "model_int8.tflite", "dir": d}


def _bench(sshd, artifact, *extra, python=sys.executable, key=None, known=None, url=None):
    return run_cli(["bench", str(artifact), "--remote", url or sshd["url"], "--key", str(key or sshd["key"]),
                    "--known-hosts", str(known or sshd["known"]), "--python", python, "--iterations", "50",
                    "--warmup", "5", *extra])


def _secret(key: Path) -> str:
    """The private key's body: it must appear in no output, manifest or report."""
    return "".join(key.read_text().splitlines()[1:-1])[:60]


def test_bench_on_a_board_over_ssh(sshd, tiny_build):
    before = set(glob.glob("/tmp/edgeopt-remote.*"))
    r = _bench(sshd, tiny_build["artifact"], "--json", "--threads", "2")
    assert r.exit_code == 0, r.output
    st = json.loads(r.stdout)
    assert st["remote"] == sshd["url"] and st["label"] == "measured on the board over SSH: device latency"
    bd = st["board"]
    assert bd["kind"] == "remote device" and bd["hostname"] == platform.node() and bd["arch"] == platform.machine()
    assert 0 < st["p50_ms"] <= st["p90_ms"] <= st["p99_ms"] and st["iterations"] == 50 and st["threads"] == 2
    assert st["delegate_applied"] is True and st["runtime_matches_build"] is True
    assert st["runtime"].startswith("litert-interpreter")
    # the one temporary directory on the board is gone, and no secret was printed
    assert set(glob.glob("/tmp/edgeopt-remote.*")) == before
    assert _secret(sshd["key"]) not in r.output
    human = _bench(sshd, tiny_build["artifact"])
    assert human.exit_code == 0 and "device latency: p50" in human.output and sshd["url"] in human.output


def test_board_errors_are_one_line_with_the_fix(sshd, tiny_build, tmp_path):
    art = tiny_build["artifact"]
    # an unknown host key is refused, with the command that trusts it
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    r = _bench(sshd, art, known=empty)
    assert r.exit_code == 2 and "host key is not in" in r.stderr
    assert f"ssh-keyscan -p {sshd['port']} 127.0.0.1 >> {empty}" in r.stderr
    # a changed host key is refused too
    other = _keygen(tmp_path / "other_host")
    empty.write_text(f"[127.0.0.1]:{sshd['port']} " + " ".join(Path(f"{other}.pub").read_text().split()[:2]) + "\n")
    r = _bench(sshd, art, known=empty)
    assert r.exit_code == 2 and "host key CHANGED" in r.stderr
    # a key the board does not accept
    r = _bench(sshd, art, key=_keygen(tmp_path / "stranger"))
    assert r.exit_code == 2 and "the board refused the key" in r.stderr and "ssh-copy-id" in r.stderr
    # nobody listening
    r = _bench(sshd, art, url=f"ssh://{sshd['user']}@127.0.0.1:{_free_port()}")
    assert r.exit_code == 2 and "cannot reach the board (Connection refused)" in r.stderr
    # no Python there, and a Python without the runtime (with the command that installs it)
    r = _bench(sshd, art, python="/nonexistent/python3")
    assert r.exit_code == 2 and "no Python at '/nonexistent/python3'" in r.stderr
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    r = _bench(sshd, art, python=bare)
    assert r.exit_code == 2 and "lacks numpy, ai_edge_litert" in r.stderr
    assert f"{bare} -m pip install numpy==" in r.stderr and "ai-edge-litert==2.3.0" in r.stderr
    # a password in the URL is refused, and not repeated
    r = _bench(sshd, art, url=f"ssh://{sshd['user']}:hunter2@127.0.0.1:{sshd['port']}")
    assert r.exit_code == 2 and "carries a password" in r.stderr and "hunter2" not in r.output
    # a missing key file names the file
    r = _bench(sshd, art, key=tmp_path / "nokey")
    assert r.exit_code == 2 and f"key file {tmp_path / 'nokey'} does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _board_target(tmp_path: Path, sshd, base: str, **device) -> Path:
    t = yaml.safe_load((REPO / "targets" / f"{base}.yaml").read_text())
    t["name"] = f"{base}-board"
    t["device"].update(device)
    t["device"]["remote"] = {"url": sshd["url"], "key_file": str(sshd["key"]), "python": sys.executable,
                             "known_hosts": str(sshd["known"])}
    t["budgets"] = {"max_device_latency_p90_ms": 1000.0, "max_accuracy_drop": 0.5}
    t.pop("clients", None)
    path = tmp_path / f"{t['name']}.yaml"
    path.write_text(yaml.safe_dump(t))
    return path


def test_build_on_device_reports_the_boards_latency(sshd, tiny_build, tmp_path):
    target = _board_target(tmp_path, sshd, "pixel-7", arch="x86_64", qemu_cpu=None)
    out = tmp_path / "b"
    r = run_cli(["build", str(tiny_build["spec"]), "-t", str(target), "--on-device", "--out", str(out), "-q",
                 "--json", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    dl = m["device_latency"]
    assert dl["remote"] == sshd["url"] and dl["board"]["hostname"] == platform.node() and dl["threads"] == 4
    assert dl["p90_ms"] > 0 and dl["artifact"] == "model_int8.tflite" and dl["iterations"] == 30
    c = next(c for c in m["budgets"]["checks"] if c["name"] == "max_device_latency_p90_ms")
    assert c["passed"] and c["value"] == dl["p90_ms"] and sshd["url"] in c["unit"]
    report = (out / "report.md").read_text()
    assert "## Device latency (on the board)" in report and sshd["url"] in report
    secret = _secret(sshd["key"])
    assert secret not in report and secret not in (out / "manifest.json").read_text()
    # without --on-device the board's budget is not passed on host numbers
    r = run_cli(["build", str(tiny_build["spec"]), "-t", str(target), "--out", str(tmp_path / "c"), "-q",
                 *FAST_LATENCY])
    assert r.exit_code == 3 and "max_device_latency_p90_ms: not measured" in r.stderr


def test_on_device_checks_the_board_before_training(sshd, tiny_build, tmp_path):
    # an arm64 target pointed at this x86 board: refused in the plan, before any training
    target = _board_target(tmp_path, sshd, "pixel-7")
    r = run_cli(["build", str(tiny_build["spec"]), "-t", str(target), "--on-device", "--no-count", "--dry-run"])
    assert r.exit_code == 2 and f"the board is {platform.machine()} but the target is arm64" in r.stderr
    # a target without a board
    r = run_cli(["build", str(tiny_build["spec"]), "-t", "pixel-7", "--on-device", "--no-count", "--dry-run"])
    assert r.exit_code == 2 and "names no board (device.remote)" in r.stderr
    # the plan says where latency will be measured
    ok = _board_target(tmp_path, sshd, "pixel-7", arch="x86_64", qemu_cpu=None)
    r = run_cli(["build", str(tiny_build["spec"]), "-t", str(ok), "--on-device", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["targets"][0]["on_device"] == sshd["url"]


def test_tune_on_device_costs_every_candidate_on_the_board(sshd, tiny_build, tmp_path):
    """`tune --on-device`: the cost of each candidate is its p90 latency on the board, labelled as such, and the
    pick's build measures the board again."""
    target = _board_target(tmp_path, sshd, "pixel-7", arch="x86_64", qemu_cpu=None)
    t = yaml.safe_load(target.read_text())
    t["tune"] = {"runtimes": [], "quantizations": ["float32", "int8"], "threads": [4]}  # pixel-7 runs 4
    target.write_text(yaml.safe_dump(t))
    out = tmp_path / "tune"
    r = run_cli(["tune", str(tiny_build["spec"]), "-t", str(target), "--on-device", "--trials", "0", "--out",
                 str(out), "-q", "--json", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["cost_signal"] == "device_latency" and "on the board" in s["cost_label"]
    rows = json.loads((out / "tune" / "trials.json").read_text())
    assert len(rows) == 4 and all(x["state"] == "complete" and x["cost"] > 0 for x in rows)
    man = json.loads((out / "build" / "manifest.json").read_text())
    assert man["device_latency"]["remote"] == sshd["url"]
    secret = _secret(sshd["key"])
    for f in (out / "tune").iterdir():
        assert secret not in f.read_text(errors="replace")
    # the board's budget needs the board: refused before any work without --on-device
    r = run_cli(["tune", str(tiny_build["spec"]), "-t", str(target), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--on-device" in r.stderr
