"""The search behind `edgeopt tune` (a package named search, not tune: `edgeopt.tune` is the public function): the space a target allows (space), measuring a candidate on the dev split (evaluate), the Optuna
study (study), budgets as constraints, the Pareto front and the pick (select), the HTML report (report), and the
run that ties them together and builds the pick (run)."""
from .evaluate import Evaluator, evaluate
from .run import TuneResult, tune
from .space import Candidate, Space, space_for

__all__ = ["Candidate", "Evaluator", "Space", "TuneResult", "evaluate", "space_for", "tune"]
