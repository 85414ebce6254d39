"""plan -> passes (cached) -> convert -> validate on the artifact -> budgets -> build directory (atomic).

``plan()`` does every check that needs no computation (specs, targets, recipe order, the model's layers against
the passes, output locations), so bad input fails before any training. ``build()`` runs each target's pass
chain, sharing (in memory and on disk) every prefix the targets have in common, then converts and validates.

The package follows the data flow: ``prepare`` (the model source, its tokenizer, the model's checks against the
data), ``plan`` (checks, the plan; ``layer_table`` for a user's model), ``builder`` (data, passes, conversions),
``target`` (one target's conversion with fallbacks, validation, manifest and report), ``outdir`` (the build
directory on disk).
"""
from .builder import BuildResult, BuildSession, structure_of
from .outdir import STAGING_MARKER, check_out_dir, clean_stale, dir_lock, is_edgeopt_build
from .plan import (LATENCY_INPUTS, QAT_STEPS, LatencySettings, Plan, TargetPlan, plan, validation_data)
from .prepare import make_tokenizer
from .target import build

__all__ = ["BuildResult", "LATENCY_INPUTS", "LatencySettings", "Plan", "QAT_STEPS", "STAGING_MARKER", "TargetPlan",
           "build", "check_out_dir", "clean_stale", "dir_lock", "make_tokenizer", "is_edgeopt_build", "plan",
           "structure_of", "validation_data", "BuildSession"]
