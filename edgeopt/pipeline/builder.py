"""State shared by the targets of one build: data, tokenizer, the pass chain (memoized in memory, cached on disk),
conversions (memoized), and what an exported file measures.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log
from .._version import __version__
from ..specs import TargetProfile
from ..tasks import task_for
from ..validate.base import Split
from .plan import LatencySettings, Plan
from .prepare import load_spec_data, make_tokenizer


@dataclass
class BuildResult:
    """One target's build: where it is, its manifest (typed: ``manifest.metrics.accuracy``; ``record`` is the same
    as the JSON written), whether every budget passed and which did not. In a notebook it shows its verdict and
    budgets (``_repr_html_``)."""

    out_dir: Path
    record: dict
    passed: bool
    failures: list = field(default_factory=list)

    @cached_property
    def manifest(self):
        """manifest.json as its schema type (edgeopt.manifest.Manifest)."""
        from ..manifest import Manifest

        return Manifest.model_validate(self.record)

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"

    def summary_markdown(self) -> str:
        """The verdict line and the budgets table of report.md, and where the report is."""
        from ..report import summary

        return f"{summary(self.record)}\nReport: `{self.report}`\n"

    def _repr_markdown_(self) -> str:
        return self.summary_markdown()

    def _repr_html_(self) -> str:
        from ..writer import html_fragment

        return html_fragment(self.summary_markdown())

    def __repr__(self) -> str:
        return (f"BuildResult({self.record['target']}: {'PASSED' if self.passed else 'FAILED'}, "
                f"{self.out_dir})")


class BuildSession:
    """State shared by the targets of one build: data, the pass-output memo, the disk cache, conversions."""

    def __init__(self, p: Plan, quiet: bool, latency: LatencySettings, parent: Optional["BuildSession"] = None):
        """``parent``: share its data, cache, memo and conversions (a distillation teacher's builder)."""
        from ..cache import ArtifactCache
        from ..tf import versions

        self.p, self.quiet, self.latency = p, quiet, latency
        spec = p.spec
        if parent is None:
            self.t_start = time.perf_counter()
            log(quiet, f"[edgeopt] loading dataset for {spec.name}")
            self.ds = load_spec_data(spec)  # in the model's declared label order, when it declares one
            from ..passes import PASS_IMPL_VERSION

            self.versions = {"edgeopt": __version__, "passes": PASS_IMPL_VERSION, **versions()}
            self.cache = ArtifactCache(enabled=p.use_cache)
            self.memo: dict[str, tuple] = {}
            self.converted: dict[tuple, bytes] = {}
            self.exports: dict[tuple, Path] = {}  # (pass key, flat lookup) -> SavedModel for the converter process
            self.tmp = tempfile.TemporaryDirectory(prefix="edgeopt-build-")
            self._teachers: dict = {}  # id(plan's teacher) -> teachers.Teacher, made once per build
        else:
            for name in ("t_start", "ds", "versions", "cache", "memo", "converted", "exports", "tmp", "_teachers"):
                setattr(self, name, getattr(parent, name))
        from ..sources import source_for

        self.source = p.source if p.source is not None else source_for(spec)
        self.tok = make_tokenizer(spec, self.ds, self.source)
        log(quiet, f"[edgeopt] {self.ds.name} for {spec.name}: train {len(self.ds.train)} / dev {len(self.ds.dev)} / "
                    f"test {len(self.ds.test)}, {self.ds.num_classes} labels, vocab {self.tok.vocab_size}")
        self.task = task_for(self.ds.task)
        self.tagging = self.task.per_token
        self.x_test, self.y_test = self.tok.encode_batch(self.ds.test.texts), self.labels(self.ds.test)
        # what every validator measures a build's files on: the whole test split
        self.test_split = Split("test", self.x_test, self.y_test, texts=tuple(self.ds.test.texts),
                                gold=self.ds.test.labels)
        self.ctx = self._context(spec, self.tok)
        # the root of every cache key: everything the trained weights depend on
        self.root_key = self._root_key(spec, self.tok)

    def labels(self, split) -> np.ndarray:
        """Class ids (sentences), or a tagger's (sentences, seq_len) tag ids with PAD_TAG past each sentence's end
        (tokens past seq_len are cut: see :func:`truncation`)."""
        if not self.tagging:
            return np.asarray(split.labels, np.int32)
        from ..data.conll import padded_tags
        from ..passes.common import PAD_TAG

        return padded_tags(split.labels, self.tok.seq_len, PAD_TAG)

    def _context(self, spec, tok):
        from ..passes.common import PassContext

        src, dims = self.source, (tok.vocab_size, self.ds.num_classes, tok.seq_len)
        from_logits = True
        if src.kind != "architecture":  # prepared by the planner: its model is loaded (file) or built (builder)
            from ..sources import output_kind

            from_logits = output_kind(src.model) == "logits"
        from ..passes.transfer import unknown_text

        return PassContext(
            x_train=tok.encode_batch(self.ds.train.texts), y_train=self.labels(self.ds.train),
            x_dev=tok.encode_batch(self.ds.dev.texts), y_dev=self.labels(self.ds.dev),
            rebuild=lambda: src.rebuild(*dims),
            initial=lambda: src.initial(*dims, vocab=tuple(getattr(tok, "vocab", ()))),
            seed=spec.training.seed, quiet=self.quiet, from_logits=from_logits,
            tags=tuple(self.ds.label_names) if self.tagging else (),
            train_texts=tuple(self.ds.train.texts), encode=tok.encode_batch,
            mask_text=None if self.tagging else unknown_text(tok))

    def _root_key(self, spec, tok) -> str:
        import hashlib

        from ..cache import canonical

        prov = {k: v for k, v in self.ds.provenance.items() if k != "folder"}
        blob = {"spec": spec.model_dump(mode="json", exclude={"name", "description", "recipe"}), "data": prov,
                "vocab": (hashlib.sha256("\n".join(tok.vocab).encode()).hexdigest()
                          if getattr(tok, "origin", None) == "fitted" else tok.fingerprint())}
        fp = self.source.fingerprint()
        if fp:  # a model file's hash, a builder's source: the weights depend on them
            blob["source"] = fp
        return hashlib.sha256(canonical(blob).encode()).hexdigest()[:24]

    # ----------------------------------------------------------------------------------------- passes
    def run_steps(self, steps, plan: Optional[Plan] = None,
                  on_epoch=None) -> tuple[object, list, str, Optional[str]]:
        """Run (or fetch) each step through the pass table; returns (final model, records, final key, key of the
        uncompressed model). ``plan``: another plan of the same spec and data (a tune candidate's: its teacher and
        facts) instead of the session's own; ``on_epoch``: sees every fine-tuning epoch's dev accuracy (and may
        raise). Neither changes the session: the data, tokenizer, memo and caches are shared by every call."""
        from dataclasses import replace

        from ..cache import key as cache_key
        from ..passes import PASSES
        from ..passes.base import PassRun

        p = plan if plan is not None else self.p
        ctx = replace(self.ctx, on_epoch=on_epoch) if on_epoch is not None else self.ctx
        run = PassRun(ctx, p.spec, self.quiet, dict(p.facts), teacher=lambda: self._teacher(p))
        k, model, records, base_key = self.root_key, None, [], None
        for st in steps:
            ps = PASSES[st.name]
            if not ps.keyed:
                records.append({"step": st.name, "note": st.note})
                continue
            cfg = st.config.model_dump(mode="json") if st.config is not None else {}
            facts = ps.key_facts(st.config) if hasattr(ps, "key_facts") and st.config is not None else {}
            # file contents the settings only name are in the key too (the record keeps the settings as given)
            k = cache_key(k, st.name, {**cfg, "_facts": facts} if facts else cfg, self.versions)
            if k in self.memo:
                model, meta = self.memo[k]
                cached = "memory"
            else:
                got = self.cache.load(k, ps.structure(model, run))
                if got is not None:
                    model, meta = got
                    cached = "disk"
                    log(self.quiet, f"[edgeopt] {st.name}: cache hit ({k})")
                else:
                    log(self.quiet, f"[edgeopt] {st.name}: running")
                    t0 = time.perf_counter()
                    out = ps.run(model, run, st.config)
                    model, meta = out.model, dict(out.record)
                    meta["seconds"] = round(time.perf_counter() - t0, 1)
                    if not ps.quantization_aware:
                        meta.update(self._measure_float(model, k))
                    self.cache.save(k, model, meta)
                    cached = False
                self.memo[k] = (model, meta)
            if ps.base:
                base_key = k
            records.append({"step": st.name, "note": st.note, "config": cfg, "cached": cached, "key": k, **meta})
        return model, records, k, base_key

    def _teacher(self, p: Plan):
        """The distillation teacher as a teachers.Teacher (its logits over the training split and over any texts,
        its record): all-MiniLM-L6-v2 (a head on the frozen encoder, or fine-tuned end to end), an ONNX
        classifier, or a spec teacher trained on the same data (each once, then cached)."""
        from ..passes.common import train_logits
        from ..passes.transfer import unknown_text
        from ..teachers import Teacher

        teacher = p.teacher
        if id(teacher) in self._teachers:
            return self._teachers[id(teacher)]
        log(self.quiet, f"[edgeopt] distill: teacher {teacher.name}")
        root = self.cache.root.parent
        if getattr(teacher, "onnx", False):  # any ONNX text classifier, run by ONNX Runtime
            from ..teachers.onnx import onnx_teacher

            t = onnx_teacher(teacher, self.ds, root, p.use_cache, self.quiet)
        elif not hasattr(teacher, "data"):  # all-MiniLM-L6-v2, on the raw texts
            from ..teachers.minilm import fine_tuned_teacher, frozen_teacher

            t = (frozen_teacher(self.ds, root, p.use_cache, teacher.head, quiet=self.quiet)
                 if teacher.fine_tune is None else
                 fine_tuned_teacher(self.ds, root, p.use_cache, teacher.fine_tune, teacher.head, quiet=self.quiet))
        else:
            # the teacher: same data, its own spec, tokenizer and cache keys (trained once, then cached)
            from .prepare import first_step, prepare

            tp = prepare(teacher)  # a teacher may be a model file or a builder too
            sub = BuildSession(Plan(tp.spec, (), p.use_cache, source=tp.source, facts=tp.facts), self.quiet,
                               self.latency, parent=self)
            t_model, records, t_key, _ = sub.run_steps([first_step(tp.spec, tp.source)])

            def run(texts, model=t_model, session=sub):
                out = model.predict(session.tok.encode_batch(list(texts)), batch_size=256, verbose=0)
                return out if session.ctx.from_logits else np.log(np.maximum(out, 1e-7))

            t = Teacher(train_logits(t_model, sub.ctx), {
                "name": teacher.name, "architecture": tp.spec.model_label,
                "accuracy_float32_tflite": records[0].get("accuracy"),
                **({"entity_f1_float32_tflite": records[0]["entity_f1"]} if "entity_f1" in records[0] else {}),
                "size_bytes_float32": records[0].get("size_bytes")}, "spec-" + t_key, run, unknown_text(sub.tok),
                root, p.use_cache, self.quiet)
        self._teachers[id(teacher)] = t
        return t

    # ------------------------------------------------------------------------------------ measuring
    def representative(self, n: int) -> np.ndarray:
        rng = np.random.default_rng(self.p.spec.training.seed)
        return self.ctx.x_train[rng.permutation(len(self.ctx.x_train))[:n]]

    def convert(self, k: str, model, mode: str, n_rep: int, target: Optional[TargetProfile] = None) -> bytes:
        """The model as a file for ``target``'s format (TFLite when no target is given), memoized."""
        from ..convert import converter_for
        from ..convert.tflite import CALIBRATED

        n_rep = n_rep if mode in CALIBRATED else 0  # only calibrated modes: part of the memo key there alone
        fmt = target.runtime.format if target is not None else "tflite"
        return converter_for(fmt).convert(self, k, model, mode, n_rep, target)

    def artifact_metrics(self, data: bytes, fmt: str = "tflite") -> dict:
        """Accuracy over the test split, size and structure, read from an exported file."""
        from .. import runtimes
        from ..validate.accuracy import accuracy
        from ..validate.size import size_of_bytes

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"m.{fmt}"
            path.write_bytes(data)
            logits = runtimes.load(path).run(self.x_test)
            structure = structure_of(path)
        size = size_of_bytes(data)
        out = {"accuracy": round(accuracy(*self.real(logits, self.y_test)), 6)}
        if self.tagging:
            out["entity_f1"] = self.entities(logits)["micro"]["f1"]
        return {**out, "size_bytes": size["size_bytes"], "gzip_bytes": size["gzip_bytes"], **structure}

    def real(self, logits, y):
        """(logits, labels) of the examples metrics are taken over: for a tagger, its real tokens, padding out."""
        return self.task.rows(logits, y)

    def entities(self, logits) -> dict:
        """A tagger's entity scores over the whole test split: gold is every test sentence in full, so the
        entities of tokens past seq_len (which the model never sees) count as missed."""
        return self.task.entities(logits, self.ds.test.labels, self.ds.label_names)

    def truncation(self) -> dict:
        """What seq_len cut from a tagger's sentences, per split: sentences, tokens and test entities lost."""
        from ..data.conll import entities

        L = self.tok.seq_len
        out = {}
        for name in ("train", "dev", "test"):
            sp = getattr(self.ds, name)
            long = [t for t in sp.labels if len(t) > L]
            out[name] = {"sentences": len(long), "of": len(sp), "tokens_cut": sum(len(t) - L for t in long)}
        names = self.ds.label_names
        lost = sum(1 for t in self.ds.test.labels for e in entities([names[i] for i in t]) if e[2] > L)
        out["test"]["entities_cut"] = lost
        out["seq_len"] = L
        return out

    def _measure_float(self, model, k: str) -> dict:
        return {"artifact": "float32 export", **self.artifact_metrics(self.convert(k, model, "float32", 0))}


def structure_of(path: Path) -> dict:
    """What compression left in a file: weight sparsity/clusters (.tflite) or quantized node types (.onnx)."""
    if path.suffix == ".tflite":
        from ..inspect import inspect_tflite, summarize_weights

        return {"weights": summarize_weights(inspect_tflite(path))}
    from ..convert.onnx import quantized_node_types

    return {"quantized_nodes": quantized_node_types(path)}
