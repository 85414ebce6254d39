import pytest
import yaml

from edgeopt.errors import SpecError
from edgeopt.registry import builtin_names, load_model_spec, load_target
from edgeopt.specs import load_model_spec_file, load_target_file


def test_every_builtin_target_and_model_parses():
    targets = builtin_names("targets")
    assert {"pixel-7", "raspberry-pi-4", "raspberry-pi-zero-2w"} <= set(targets)
    for n in targets:
        t = load_target(n)
        assert t.name == n and t.notes
        assert t.device.qemu_cpu or t.device.arch == "x86_64"  # every Arm device names the CPU model emulating it
        assert t.quantization in ("float32", "dynamic", "int8", "float16")
        assert t.budgets.max_accuracy_drop is not None and t.budgets.max_size_bytes
        assert t.budgets.max_robustness_drop == 0.05  # how people type: case, punctuation
        # a budget on the device's own signal: host latency only where the device is an x86 machine like the build
        # machine; an Arm device's cost is counted on its emulated core (GPU targets: the GPU's partition)
        if t.device.arch == "x86_64":
            assert t.budgets.max_latency_p90_ms
        else:
            assert t.budgets.max_latency_p90_ms is None
            assert t.budgets.max_instructions_per_inference or t.uses_gpu, n
    models = builtin_names("models")
    assert {"banking77-cnn", "banking77-bilstm", "banking77-transformer", "sst2-cnn", "smsspam-cnn"} <= set(models)
    for n in models:
        assert load_model_spec(n).name == n


def _target_dict():
    return yaml.safe_load(open(load_target("pixel-7").source))


def _write(tmp_path, data, name="t.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def test_unknown_field_names_file_field_allowed_and_suggestion(tmp_path):
    d = _target_dict()
    d["budgets"]["max_latncy_p90_ms"] = 5.0
    p = _write(tmp_path, d)
    with pytest.raises(SpecError) as e:
        load_target_file(p)
    msg = str(e.value)
    assert str(p) in msg and "budgets.max_latncy_p90_ms" in msg
    assert "max_latency_p90_ms" in msg and "Did you mean" in msg and "Fix" in msg
    assert "\n" not in msg


def test_unknown_top_level_field(tmp_path):
    d = _target_dict()
    d["budget"] = {}
    with pytest.raises(SpecError, match=r"unknown field 'budget'.*Did you mean 'budgets'"):
        load_target_file(_write(tmp_path, d))


def test_bad_enum_value_lists_choices(tmp_path):
    d = _target_dict()
    d["quantization"] = "int4"
    with pytest.raises(SpecError, match=r"field 'quantization'.*'float32'.*'int8'.*got 'int4'"):
        load_target_file(_write(tmp_path, d))


def test_wrong_type_and_missing_field(tmp_path):
    d = _target_dict()
    d["runtime"]["threads"] = "four"
    with pytest.raises(SpecError, match=r"field 'runtime.threads'"):
        load_target_file(_write(tmp_path, d))
    d = _target_dict()
    del d["device"]
    with pytest.raises(SpecError, match=r"missing required field 'device'"):
        load_target_file(_write(tmp_path, d))


def test_notes_must_explain(tmp_path):
    d = _target_dict()
    d["notes"] = "fast"
    with pytest.raises(SpecError, match="notes"):
        load_target_file(_write(tmp_path, d))


def test_invalid_yaml_and_non_mapping(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_target_file(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="mapping"):
        load_target_file(p)


def test_model_spec_architecture_params_are_checked(tmp_path):
    d = yaml.safe_load(open(load_model_spec("banking77-cnn").source))
    d["architecture"]["params"]["filterz"] = 3
    with pytest.raises(SpecError, match="filterz"):
        load_model_spec_file(_write(tmp_path, d, "m.yaml"))
    d["architecture"] = {"name": "text_cn"}
    with pytest.raises(SpecError, match="unknown architecture 'text_cn'.*text_cnn"):
        load_model_spec_file(_write(tmp_path, d, "m.yaml"))


def test_data_needs_exactly_one_source(tmp_path):
    d = yaml.safe_load(open(load_model_spec("banking77-cnn").source))
    d["data"] = {"dev_fraction": 0.1}
    with pytest.raises(SpecError, match="exactly one of 'dataset'"):
        load_model_spec_file(_write(tmp_path, d, "m.yaml"))


def test_relative_data_files_resolve_against_spec(tmp_path):
    d = yaml.safe_load(open(load_model_spec("banking77-cnn").source))
    d["data"] = {"files": {"train": "tr.csv", "test": "te.csv"}}
    spec = load_model_spec_file(_write(tmp_path, d, "m.yaml"))
    assert spec.data.files.train == str(tmp_path / "tr.csv")


def test_specs_are_frozen():
    t = load_target("pixel-7")
    with pytest.raises(Exception):
        t.quantization = "float32"


def test_specs_are_data_loading_them_imports_no_implementation_module():
    """Specs are the ground floor: reading every built-in target and model spec imports only the data modules they
    are checked against (docs/ARCHITECTURE.md), nothing that loads data, runs the emulator or imports TensorFlow."""
    import subprocess
    import sys

    code = ("import sys; from edgeopt.registry import builtin_names, load_target, load_model_spec; "
            "[load_target(n) for n in builtin_names('targets')]; [load_model_spec(n) for n in builtin_names('models')]; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('edgeopt') or m == 'tensorflow')))")
    got = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    allowed = {"edgeopt", "edgeopt._version", "edgeopt.errors", "edgeopt.files", "edgeopt.urls", "edgeopt.schema", "edgeopt.recipe",
               "edgeopt.specs", "edgeopt.registry", "edgeopt.catalog", "edgeopt.emulator", "edgeopt.emulator.cpus",
               "edgeopt.architectures", "edgeopt.tasks", "edgeopt.tasks.base", "edgeopt.tasks.text",
               "edgeopt.tasks.tokens"}
    assert got <= allowed, sorted(got - allowed)
    assert {"edgeopt.specs", "edgeopt.catalog", "edgeopt.emulator.cpus"} <= got


def test_host_latency_never_judges_another_device(tmp_path):
    """max_latency_p90_ms is measured on the build machine: on an arm64 target it is refused (one line naming the
    file, the field and the device's own signals), by `targets check` and before a build plans anything; an x86
    target keeps it."""
    from edgeopt.errors import InputError
    from edgeopt.pipeline import plan
    from edgeopt.validate.budgets import host_arch, host_latency_problem

    assert host_arch() == "x86_64"  # this suite runs on x86 build machines (CI and here)
    d = _target_dict()
    d["budgets"]["max_latency_p90_ms"] = 5.0
    p = _write(tmp_path, d)
    t = load_target_file(p)
    msg = host_latency_problem(t)
    assert str(p) in msg and "budgets.max_latency_p90_ms" in msg and "arm64" in msg
    assert "max_instructions_per_inference" in msg and "Fix:" in msg
    with pytest.raises(InputError, match="budgets.max_latency_p90_ms"):
        plan("banking77-cnn", [t], out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    assert host_latency_problem(load_target("x86-avx2-server")) is None
    assert load_target("x86-avx2-server").budgets.max_latency_p90_ms
