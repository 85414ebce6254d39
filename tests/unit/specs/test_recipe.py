"""The planner: order, collaborative variants, strip steps, layer checks; all before any training, no TF."""

import pytest
import yaml

from conftest import assert_no_tensorflow, run_cli
from edgeopt.errors import SpecError
from edgeopt.recipe import (ClusterConfig, PruneConfig, QATConfig, RecipeFile, load_recipe_file, merge, resolve)

CNN = {"Embedding", "Conv1D", "Dense"}
TRANSFORMER = {"Embedding", "MultiHeadAttention", "LayerNormalization", "Dense"}


def names(steps):
    return [s.name for s in steps]


@pytest.mark.parametrize("passes,variant", [
    ({"qat": QATConfig()}, "qat"),
    ({"prune": PruneConfig(), "qat": QATConfig()}, "pqat"),
    ({"cluster": ClusterConfig(), "qat": QATConfig()}, "cqat"),
    ({"prune": PruneConfig(), "cluster": ClusterConfig(), "qat": QATConfig()}, "pcqat"),
])
def test_planner_picks_the_collaborative_variant_and_inserts_strips(passes, variant):
    steps, ptq = resolve(list(passes.items()), "dynamic", CNN, "t")
    assert names(steps)[-1] == variant and ptq == "int8"  # QAT forces a full-integer conversion
    if "prune" in passes:
        assert names(steps)[names(steps).index("prune") + 1] == "strip_pruning"
    if "cluster" in passes:
        i = names(steps).index("cluster")
        assert names(steps)[i + 1] == "strip_clustering"
        assert steps[i].config.preserve_sparsity is ("prune" in passes)
    if variant != "qat":  # layers the scheme cannot preserve are frozen, and the plan says so
        assert "frozen during QAT" in steps[-1].note and "Conv1D" in steps[-1].note


def test_plain_build_is_just_train():
    steps, ptq = resolve([], "float16", CNN, "t")
    assert names(steps) == ["train"] and ptq == "float16"


def test_order_and_duplicates_are_errors():
    with pytest.raises(SpecError, match="'prune' cannot come after 'qat'.*distill -> prune -> cluster -> qat"):
        resolve([("qat", QATConfig()), ("prune", PruneConfig())], "int8", CNN, "my.yaml")
    with pytest.raises(SpecError, match="'cluster' cannot come after 'qat'"):
        merge([("r.yaml", RecipeFile(passes=({"qat": {}}, {"cluster": {}})))], {}, None)
    with pytest.raises(SpecError, match="appears 2 times"):
        resolve([("prune", PruneConfig()), ("prune", PruneConfig())], "int8", CNN, "t")


def test_layer_checks_before_training():
    with pytest.raises(SpecError, match=r"prune cannot handle layer type\(s\) \['LayerNormalization'\]"):
        resolve([("prune", PruneConfig(layers={"types": ["LayerNormalization"]}))], "int8", TRANSFORMER, "t")
    with pytest.raises(SpecError, match=r"names \['LSTM'\], which this model does not have"):
        resolve([("cluster", ClusterConfig(layers={"types": ["LSTM"]}))], "int8", CNN, "t")


def test_config_validation():
    with pytest.raises(ValueError, match="m_by_n"):
        PruneConfig(m_by_n=(4, 2))
    with pytest.raises(ValueError, match="initial_sparsity must be below"):
        PruneConfig(sparsity=0.3, initial_sparsity=0.5)
    with pytest.raises(ValueError, match="regular expression"):
        PruneConfig(layers={"names": "conv[("})


def test_merge_precedence_and_canonical_order():
    target = RecipeFile(passes=({"prune": {"sparsity": 0.3}},), ptq="dynamic")
    file = RecipeFile(passes=({"prune": {"sparsity": 0.6}}, {"qat": {}}))
    passes, ptq = merge([("target", target), ("file", file)], {"cluster": ClusterConfig(clusters=8)}, None)
    assert [n for n, _ in passes] == ["prune", "cluster", "qat"]
    assert dict(passes)["prune"].sparsity == 0.6 and ptq == "dynamic"
    passes, ptq = merge([("target", target)], {"prune": PruneConfig(sparsity=0.9)}, "float16")
    assert dict(passes)["prune"].sparsity == 0.9 and ptq == "float16"


def test_recipe_file_errors(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"passes": [{"prnue": {"sparsity": 0.5}}]}))
    with pytest.raises(SpecError, match="unknown pass 'prnue'.*'prune'"):
        load_recipe_file(p)
    p.write_text(yaml.safe_dump({"passes": [{"prune": {"sparsty": 0.5}}]}))
    with pytest.raises(SpecError, match=r"passes\[0\].prune.sparsty"):
        load_recipe_file(p)
    p.write_text(yaml.safe_dump({"passes": [{"prune": {"sparsity": 0.5}}], "ptq": "int8", "extra": 1}))
    with pytest.raises(SpecError, match="unknown field 'extra'"):
        load_recipe_file(p)


def test_cli_dry_run_shows_resolved_plan_and_rejects_bad_order(tmp_path):
    r = run_cli(["build", "banking77-transformer", "-t", "raspberry-pi-4", "--prune", "0.5", "--cluster", "16",
                 "--qat", "--dry-run"])
    assert r.exit_code == 0
    out = r.output
    assert "pcqat" in out and "strip_pruning" in out and "strip_clustering" in out and "sparsity-preserving" in out
    assert "int8 is forced" in out and "MultiHeadAttention" in out
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"passes": [{"qat": {}}, {"prune": {"sparsity": 0.5}}]}))
    r = run_cli(["build", "banking77-cnn", "--recipe", str(p), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "'prune' cannot come after 'qat'" in r.stderr
    assert not (tmp_path / "o").exists()
    r = run_cli(["build", "banking77-cnn", "--prune-schedule", "constant", "--dry-run"])
    assert r.exit_code == 2 and "--prune-schedule needs --prune" in r.stderr
    r = run_cli(["build", "banking77-cnn", "--prune-structure", "2:4", "--dry-run"])
    assert r.exit_code == 0 and "m_by_n=(2, 4)" in r.output


def test_planner_does_not_import_tensorflow():
    assert_no_tensorflow("from edgeopt.pipeline import plan; from edgeopt.recipe import PruneConfig, QATConfig; "
                         "p = plan('banking77-bilstm', ['pixel-7'], passes={}); "
                         "p = plan('banking77-cnn', ['pixel-7'], passes={'prune': PruneConfig(), 'qat': QATConfig()}); "
                         "assert [s.name for s in p.targets[0].steps][-1] == 'pqat'")


def test_structured_2_4_pruning_is_for_dense_layers_only():
    """TFMOT's m-by-n pruning rearranges 2-D kernels only: a Conv1D kernel (3-D) failed in training with
    'weight tensor with shape ... is not supported'. The planner now keeps 2:4 to Dense layers, before training."""
    steps, _ = resolve([("prune", PruneConfig(sparsity=0.5, m_by_n=(2, 4)))], "int8", CNN, "t")
    assert [s.name for s in steps][:2] == ["train", "prune"]
    with pytest.raises(SpecError, match=r"m-by-n \(structured\) cannot handle layer type\(s\) \['Conv1D'\]"):
        resolve([("prune", PruneConfig(sparsity=0.5, m_by_n=(2, 4), layers={"types": ["Conv1D"]}))], "int8", CNN,
                "t")
    with pytest.raises(SpecError, match="would touch no layer"):
        resolve([("prune", PruneConfig(sparsity=0.5, m_by_n=(2, 4)))], "int8", {"Embedding", "LSTM"}, "t")
