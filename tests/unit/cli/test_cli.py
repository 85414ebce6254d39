import json
import subprocess
import sys

import pytest

from conftest import assert_no_tensorflow, run_cli

COMMANDS = [[], ["build"], ["targets"], ["targets", "list"], ["targets", "show"], ["targets", "check"],
            ["models"], ["models", "list"], ["models", "show"], ["bench"], ["inspect"], ["verify"],
            ["predict"], ["client"], ["client", "setup"], ["client", "list"], ["validate"], ["tune"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "edgeopt")
def test_every_command_has_help(cmd):
    r = run_cli(cmd + ["--help"])
    assert r.exit_code == 0 and "Usage:" in r.output


def test_help_and_targets_list_do_not_import_tensorflow():
    assert_no_tensorflow("from click.testing import CliRunner; from edgeopt.cli import main; r = CliRunner(); "
                         "assert r.invoke(main, ['--help']).exit_code == 0; "
                         "assert r.invoke(main, ['targets', 'list']).exit_code == 0; "
                         "assert r.invoke(main, ['models', 'list']).exit_code == 0; "
                         "assert r.invoke(main, ['build', 'banking77-cnn', '--dry-run']).exit_code == 0")


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "edgeopt", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "edgeopt, version" in r.stdout


def test_targets_and_models_list_show():
    r = run_cli(["targets", "list"])
    assert "pixel-7" in r.output and "raspberry-pi-zero-2w" in r.output and "int8" in r.output
    t = json.loads(run_cli(["targets", "show", "pixel-7", "--json"]).output)
    assert t["device"]["qemu_cpu"] == "cortex-a76" and t["budgets"]["max_accuracy_drop"] == 0.01
    assert "banking77-transformer" in run_cli(["models", "list"]).output
    m = json.loads(run_cli(["models", "show", "banking77-bilstm", "--json"]).output)
    assert m["architecture"]["name"] == "bilstm"


def _one_line_error(r, code=2):
    assert r.exit_code == code, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def test_unknown_names_suggest_close_ones():
    msg = _one_line_error(run_cli(["build", "banking77-cnm", "--target", "pixel-7", "--dry-run"]))
    assert "unknown model 'banking77-cnm'" in msg and "'banking77-cnn'" in msg
    msg = _one_line_error(run_cli(["build", "banking77-cnn", "--target", "pixel7", "--dry-run"]))
    assert "unknown target 'pixel7'" in msg and "'pixel-7'" in msg
    msg = _one_line_error(run_cli(["targets", "show", "raspbery-pi-4"]))
    assert "raspberry-pi-4" in msg


def test_targets_check(tmp_path):
    from edgeopt.registry import load_target

    good = open(load_target("pixel-7").source).read()
    p = tmp_path / "mine.yaml"
    p.write_text(good)
    assert run_cli(["targets", "check", str(p)]).exit_code == 0
    p.write_text(good.replace("threads: 4", "thread: 4"))
    msg = _one_line_error(run_cli(["targets", "check", str(p)]))
    assert "mine.yaml" in msg and "runtime.thread" in msg and "threads" in msg


def test_dry_run_prints_plan_without_writing(tmp_path):
    out = tmp_path / "o"
    r = run_cli(["build", "banking77-bilstm", "-t", "pixel-7", "-t", "raspberry-pi-4", "--out", str(out), "--dry-run"])
    assert r.exit_code == 0
    assert "convert int8" in r.output and "convert dynamic" in r.output and "early stop" in r.output
    assert not out.exists()
    plan = json.loads(run_cli(["build", "--dry-run", "--json"]).output)
    assert plan["model"] == "banking77-cnn" and plan["targets"][0]["target"] == "pixel-7"


def test_unwritable_out_fails_before_training(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    msg = _one_line_error(run_cli(["build", "banking77-cnn", "--out", str(f / "sub")]))
    assert "is a file" in msg
    msg = _one_line_error(run_cli(["build", "banking77-cnn", "--out", str(f)]))
    assert "not a directory" in msg
    msg = _one_line_error(run_cli(["build", "banking77-cnn", "--out", "/proc/edgeopt-out"]))
    assert "cannot write" in msg


def test_missing_dataset_file_and_bad_label_column(tmp_path):
    import yaml

    spec = {"name": "mine", "data": {"files": {"train": "train.csv", "test": "test.csv"}},
            "architecture": {"name": "text_cnn"}}
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(spec))
    msg = _one_line_error(run_cli(["build", str(p), "--out", str(tmp_path / "o"), "-q"]))
    assert "train.csv: dataset file not found" in msg
    (tmp_path / "train.csv").write_text("text,intent\nhello,greet\nbye,leave\n")
    (tmp_path / "test.csv").write_text("text,intent\nhi,greet\n")
    msg = _one_line_error(run_cli(["build", str(p), "--out", str(tmp_path / "o"), "-q"]))
    assert "no column 'label'" in msg and "intent" in msg
    assert not (tmp_path / "o").exists()


def test_bench_and_inspect_reject_bad_files(tmp_path):
    p = tmp_path / "model.tflite"
    p.write_bytes(b"\x00" * 100)
    for cmd in (["bench", str(p)], ["inspect", str(p)]):
        assert "not a TFLite flatbuffer" in _one_line_error(run_cli(cmd))
    assert "file not found" in _one_line_error(run_cli(["inspect", str(tmp_path / "none.tflite")]))


def test_bench_cli(multi_build):
    path = multi_build["out"] / "pixel-7" / "model_int8.tflite"
    r = run_cli(["bench", str(path), "--threads", "2", "--no-xnnpack", "--iterations", "20", "--warmup", "2", "--json"])
    st = json.loads(r.stdout)
    assert st["threads"] == 2 and st["xnnpack"] is False and st["delegate_applied"] is False
    assert st["iterations"] == 20 and "edgeopt_tokenizer.json" in st["inputs"]
    r = run_cli(["bench", str(path), "--iterations", "20"])
    assert "applied: yes" in r.output and "p90" in r.output
