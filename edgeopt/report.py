"""report.md and report.html: what a person reads next to manifest.json (the same numbers, no new ones).

Everything is written through :mod:`edgeopt.writer`: tables by ``writer.table`` (every cell escaped), data (labels,
texts, names, messages) through ``writer.esc``/``writer.code``, numbers by its formatters; report.html is the same
Markdown rendered by markdown-it-py, with the plots of :mod:`edgeopt.plots`. Every code snippet in a report runs as
printed from the build directory (tests run each one).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from . import writer as w
from .tasks import task_for
from .writer import code, esc, table

EXAMPLE_TEXT = "I still have not received my new card"  # what the snippets classify; any text works


def _pct(x) -> str:
    return w.pct(x)


def _n(x) -> str:
    return "-" if x is None else w.count(x)


def _f6(x) -> str:
    return "n/a" if x is None else f"{x:.6f}"


def _latency_rows(rows: list, label: str) -> list[list]:
    return [[label, r["threads"], "on" if r["xnnpack"] else "off",
             "yes" if r["delegate_applied"] else ("no (refused)" if r.get("delegate_error") else "no"),
             f"{r['p50_ms']:.4f}", f"{r['p90_ms']:.4f}", f"{r['p99_ms']:.4f}", f"{r['iterations']:,}"] for r in rows]


def _head_md(m: dict) -> list[str]:
    """The title, the verdict line, and what was deployed instead or from which model file."""
    met, bud = m["metrics"], m["budgets"]
    deployed = next(a for a in m["artifacts"] if a.get("role") == "deployed")
    lines = [
        f"# edgeopt build: {esc(m['model'])} for {esc(m['target'])}",
        "",
        f"**Verdict: {'PASSED' if bud['passed'] else 'FAILED'}**{_skipped_note(bud)} — deployed "
        f"{code(deployed['path'])} "
        f"({m['recipe']['convert']['quantization']}, {w.size(deployed['size_bytes'])}), "
        + (f"entity F1 {met['entity_f1']:.4f} (float32 file {met['baseline_entity_f1']:.4f}) on "
           f"{met['test_examples']:,} test sentences; token accuracy {_pct(met['accuracy'])}, "
           f"{w.versus(met['accuracy_drop'], 'the float32 file')}." if "entity_f1" in met else
           f"accuracy {_pct(met['accuracy'])} on {met['test_examples']:,} test examples, "
           f"{w.versus(met['accuracy_drop'], 'the float32 file')} ({_pct(met['baseline']['accuracy'])})."),
        "",
    ]
    conv = m.get("conversion") or {}
    if conv.get("fell_back"):
        lines += ["", f"**Fallback:** the target asked for {conv['asked']}; deployed {conv['deployed']}. "
                  + "; ".join(f"{a['mode']}: {esc(a['outcome'])}" + (f" ({esc(a['error'])}; layer types "
                                                                       f"{', '.join(code(t) for t in a['layer_types'])})"
                                                                       if 'error' in a else "")
                              for a in conv["attempts"]) + "."]
        note = (m.get("target_profile") or {}).get("fallback_note")
        if note:
            lines += ["", f"Why {esc(' then '.join((m.get('target_profile') or {}).get('fallback') or []))}, in "
                          f"that order: {esc(note)}"]
    src = m.get("model_source") or {}
    z = src.get("fit_size")
    if z:
        c = z["chosen"]
        lines += ["", f"**Sized to the budget (--fit-size):** vocabulary {c['vocab_size']:,} (max_vocab "
                      f"{c['max_vocab']:,}, was {z['was']['max_vocab']:,}) x embedding width {c['embed_dim']} (was "
                      f"{z['was']['embed_dim']}), {c['weights']:,} weights: the largest of {z['candidates']} "
                      f"configurations whose untrained file, converted as this target converts, fit "
                      f"{w.size(z['limits'][m['target']], exact=True)} (predicted "
                      f"{w.size(c['predicted_bytes'][m['target']], exact=True)}; this file "
                      f"{w.size(deployed['size_bytes'], exact=True)})."]
    if src.get("kind") in ("file", "builder"):
        lines += ["", f"**Model:** {esc(src['description'])}; input {src.get('input_dtype')} [batch, "
                      f"{src.get('seq_len') or 'any'}], output {esc(src.get('output'))}"
                  + (f"; weights {esc(src['weights'])}" if src.get("weights") else "")
                  + (f"; sha256 {code(src['model_file_sha256'][:16])}" if src.get("model_file_sha256") else "")
                  + (f"; Keras {src['keras3_rebuild']['keras_version']} file rebuilt in tf_keras (max abs difference "
                     f"{src['keras3_rebuild']['max_abs_difference']:.2g} on {src['keras3_rebuild']['compared_examples']}"
                     f" dev examples)" if src.get("keras3_rebuild") else "")
                  + (f"; {esc(src['used_as_is'])}" if src.get("used_as_is") else "") + "."]
        if str(src.get("vocabulary_check", "")).startswith("not run"):
            lines += ["", f"**Vocabulary check {esc(src['vocabulary_check'])}.**"]
    tv = src.get("textvectorization")
    if tv:
        own = (f" The model as given, on the raw test strings: accuracy {_pct(tv['own_test_accuracy'])}; this "
               f"file: {_pct(met['accuracy'])}." if tv.get("own_test_accuracy") is not None else "")
        lines += ["", f"**Text in:** the file's TextVectorization {code(tv['layer'])} (standardize "
                      f"{code(tv['standardize'] or 'none')}, split {code(tv['split'])}, {tv['vocabulary_size']:,} words, "
                      + (f"output length {tv['output_sequence_length']}" if tv.get("output_sequence_length")
                         else f"no output length: {tv['seq_len']} ids, a length edgeopt chose from the data")
                      + f") is the build's tokenizer (`tokenizer.json`); the deployed file is the model after it, "
                      f"taking ids. Its ids equal the layer's own on all {tv['texts_compared']:,} texts of the "
                      f"data." + own]
    return lines


def _skipped_note(bud: dict) -> str:
    """" (not judged: ...)" when budgets were skipped (``--no-count``): a PASSED that did not judge them says so."""
    names = [c["name"] for c in bud["checks"] if c.get("skipped")]
    return f" (not judged: {', '.join(code(n) for n in names)}; see the budgets)" if names else ""


def _budgets_md(m: dict) -> list[str]:
    hints = [f"**{esc(c['name'])}:** {esc(c['hint'])}." for c in m["budgets"]["checks"] if c.get("hint")]
    return _budget_rows(m) + [x for h in hints for x in ("", h)]


def _budget_rows(m: dict) -> list[str]:
    return table(["budget", "limit", "measured", "result"],
                 [[c["name"], w.budget_value(c["name"], c["limit"], c["unit"]),
                   esc(c["skipped"]) if c.get("skipped") else w.budget_value(c["name"], c["value"], c["unit"]),
                   "skipped" if c.get("skipped") else "pass" if c["passed"] else "**FAIL**"]
                  for c in m["budgets"]["checks"]] or [["(none)", "", "", ""]])


def summary(m: dict) -> str:
    """The verdict and the budgets: what a notebook shows of a build (BuildResult's display)."""
    return "\n".join([*_head_md(m), "", "**Budgets**", "", *_budgets_md(m)]).strip() + "\n"


def render(m: dict) -> str:
    met = m["metrics"]
    mach = (met["latency"] or [{}])[0].get("machine", {})
    rt = (met["latency"] or [{}])[0].get("runtime", "")
    src = m.get("model_source") or {}
    lines = [*_head_md(m), "", "## Budgets", "", *_budgets_md(m)]
    layer_md = []
    if src.get("layers"):
        cols = ("layer", "type", "params", "prune", "cluster", "qat", "converter")
        layer_md = ["", "## Layers (what each pass did to each layer; what the converter does with it)", "",
                    *table(cols, [[esc(r.get(c, "")) for c in cols] for r in src["layers"]])]
    recipe = met.get("baseline_keras_accuracy") is not None  # the baseline comes from the model before the recipe
    rows = []
    if recipe:
        rows.append(["Keras, before the recipe (float32; the baseline is exported from it)",
                     _pct(met["baseline_keras_accuracy"]), "", ""])
    rows += [[f"Keras{', after the recipe' if recipe else ''} (float32, before export)", _pct(met["keras_accuracy"]),
              "", ""],
             [f"{code(met['baseline']['artifact'])} (baseline{', from the model before the recipe' if recipe else ''})",
              _pct(met["baseline"]["accuracy"]), _pct(met["baseline"]["parity_vs_keras"]["argmax_agreement"]),
              _f6(met["baseline"]["parity_vs_keras"]["max_abs_diff"])]]
    if met["artifact"] != met["baseline"]["artifact"]:
        rows.append([f"{code(met['artifact'])} (deployed{', from the model after the recipe' if recipe else ''})",
                     _pct(met["accuracy"]), _pct(met["parity_vs_keras"]["argmax_agreement"]),
                     _f6(met["parity_vs_keras"]["max_abs_diff"])])
    lines += ["", "## Accuracy (measured by running each artifact over the test split)", "",
              *table(["model", "accuracy", "argmax agreement vs its Keras model",
                      "max abs logit diff vs its Keras model"], rows)]
    if met["artifact"] != met["baseline"]["artifact"]:
        pb = met["parity_vs_baseline"]
        lines += ["", f"Deployed vs float32 artifact: argmax agreement {_pct(pb['argmax_agreement'])}, "
                      f"max abs logit diff {_f6(pb['max_abs_diff'])}."]
    if met.get("variable_tensors"):
        lines += ["", f"**Stateful graph:** the artifact has {met['variable_tensors']} variable tensors (recurrent state "
                      "that persists across `invoke()`). Every number here was measured with "
                      "`interpreter.reset_all_variables()` before each call; an app must do the same, or each "
                      "input starts from the previous input's state."]
    passes = [r for r in m.get("passes", []) if "accuracy" in r and "weights" in r]
    if len(passes) > 1:
        lines += ["", "## Passes (each measured on an exported .tflite: float32 after a weight-changing pass, the "
                      "deployed file after convert/QAT)", ""]
        prow = []
        for r in passes:
            wt = r.get("weights", {})
            prow.append([esc(r["step"]), _pct(r["accuracy"]), _epochs(r), f"{wt.get('zero_fraction', 0):.1%}",
                         f"{wt.get('unique_values_median', '')} / {wt.get('unique_values_max', '')}",
                         ", ".join(wt.get("m_by_n", [])), w.size(r["size_bytes"]), w.size(r["gzip_bytes"]),
                         esc(r.get("cached") or "no")])
        lines += table(["step", "accuracy", "dev: best epoch / epoch kept", "zero fraction",
                        "unique values (median / max)", "m:n", "size", "gzip size", "cached"], prow)
        steps = m["recipe"].get("steps", [])
        if steps:
            lines += ["", "Resolved recipe: " + " -> ".join(code(s) for s in steps)]
    cf = met.get("cross_format")
    if cf:
        ag = cf["agreement_with_deployed"]
        p50 = next((r["p50_ms"] for r in met["latency"] if r["threads"] == 1), None)
        lines += ["", "## Cross-format parity (same weights, both formats)", "",
                  *table(["artifact", "format", "quantization", "accuracy", "size", "p50 ms (1 thread)"],
                         [[f"{code(met['artifact'])} (deployed)", m["recipe"]["convert"]["format"],
                           m["recipe"]["convert"]["quantization"], _pct(met["accuracy"]),
                           w.size(met["size"]["size_bytes"], exact=True), "-" if p50 is None else f"{p50:.4f}"],
                          [code(cf["artifact"]), cf["format"], cf["quantization"], _pct(cf["accuracy"]),
                           w.size(cf["size_bytes"], exact=True), f"{cf['latency_1_thread']['p50_ms']:.4f}"]]), "",
                  f"Agreement between the two: argmax {_pct(ag['argmax_agreement'])}, max abs logit difference "
                  f"{ag['max_abs_diff']:.6f} over {ag['examples']:,} test examples."]
    lines += _entities_md(met)
    lines += _per_class_md(met)
    lines += _robustness_md(m.get("robustness"))
    lines += _app_md(m)
    lines += layer_md
    lines += ["", "## Artifacts", "",
              *table(["file", "quantization", "size", "gzip size", "sha256"],
                     [[code(a["path"]), a.get("quantization", ""), w.size(a["size_bytes"], exact=True),
                       w.size(a["gzip_bytes"], exact=True), code(a["sha256"][:16])] for a in m["artifacts"]])]
    qn = next((r.get("quantized_nodes") for r in m.get("passes", []) if r.get("quantized_nodes")), None)
    if qn:
        lines += ["", "Quantized ONNX nodes in the deployed file: " + ", ".join(f"{esc(k)} x{v}"
                                                                               for k, v in sorted(qn.items()))]
    lat_rows = _latency_rows(met["latency"], code(met["artifact"]))
    if met["artifact"] != met["baseline"]["artifact"]:
        lat_rows += _latency_rows(met["baseline"]["latency"], code(met["baseline"]["artifact"]))
    lines += ["", "## Latency (batch 1, per call: set input + invoke + read output)", "",
              f"Measured on **this build machine**, not on the {esc(m['target'])} device: {esc(mach.get('arch'))} "
              f"{esc(mach.get('cpu'))}, {mach.get('cores')} cores; runtime {esc(rt)}. XNNPACK 'applied' is read from "
              f"the loaded graph.", "",
              *table(["artifact", "threads", "XNNPACK", "applied", "p50 ms", "p90 ms", "p99 ms", "calls"], lat_rows)]
    emu = m.get("emulator")
    if emu:
        smp = emu["sample"]
        erows = []
        for c in emu["cpus"]:
            p = c["parity"]
            val = f"{p['max_steps']} steps" if "max_steps" in p else f"max abs {p.get('max_abs_diff')}"
            erows.append([c["cpu"], "yes" if c["loaded"] else "NO", "yes" if c["delegate_applied"] else "no",
                          ", ".join(code(o) for o in c["rejected_ops"]) or "-",
                          _pct(c["accuracy"]) if c["accuracy"] is not None else "-", val, p.get("limit", "-"),
                          "pass" if c["passed"] else "FAIL"])
        lines += ["", "## Emulated arm64 runs (qemu-user)", "",
                  f"{smp['examples']} of {smp['of']} test examples (seed {smp['seed']}), {esc(emu['runtime'])}, "
                  f"{emu['threads']} threads. Parity is against this machine's run of the same file on the same "
                  f"inputs. Emulated time is not device latency and is not reported here.", "",
                  *table(["qemu CPU", "loads", "XNNPACK applied", "rejected ops", "accuracy", "parity", "limit",
                          "result"], erows)]
        counted = [c for c in emu["cpus"] if c.get("instructions")]
        lines += ["", "**Emulated instructions per inference** (batch 1, 1 thread; counted by a qemu TCG plugin on the "
                      "CPU model: deterministic, an instruction count and not a time). "
                  + ("" if counted else esc(emu.get("instructions_note", "Not counted."))), ""]
        if counted:
            lines += table(["qemu CPU", "XNNPACK on", "XNNPACK off", "ONNX Runtime", "spread over 20 invokes",
                            "seconds to count"],
                           [[c["cpu"], _n(c["instructions"].get("xnnpack_on")),
                             _n(c["instructions"].get("xnnpack_off")), _n(c["instructions"].get("onnxruntime")),
                             c["instructions"].get("spread"), c["instructions"].get("seconds")] for c in counted])
    dc = m.get("device_cost")
    if dc:
        ins = dc["counts"]
        how = (f"XNNPACK on {_n(ins.get('xnnpack_on'))}, off {_n(ins.get('xnnpack_off'))}" if "xnnpack_on" in ins
               else f"ONNX Runtime {_n(ins.get('onnxruntime'))}")
        lines += ["", f"**Device cost** ({esc(m['target'])}): "
                      + (f"{dc['instructions_per_inference']:,} {esc(dc['label'])} "
                         f"({w.count(dc['instructions_per_inference'])})" if dc["instructions_per_inference"]
                         is not None else f"{esc(dc['label'])}: not counted ({esc(dc.get('error', '')[:200])})")
                      + (f" at the target's setting (XNNPACK {'on' if dc['xnnpack'] else 'off'})"
                         if dc.get("xnnpack") is not None else "")
                      + f"; {how}; spread over 20 invokes {ins.get('spread')}, {ins.get('seconds')} s to count. "
                        f"Counted by {esc(dc['counter'])}: {esc(dc['note'])}."]
        if "estimated_latency_ms" in dc:
            lines += ["", f"**Estimated device latency: {w.ms(dc['estimated_latency_ms'], 4)}. This is an estimate**, "
                          f"not a measurement: instructions / {dc['estimate_rate_instructions_per_ns']:g} instructions "
                          f"per ns (source: {esc(dc['estimate_source'])})."]
    dl = m.get("device_latency")
    if dl:
        bd = dl["board"]
        who = ", ".join(x for x in (bd.get("model"), f"{bd.get('arch')} {bd.get('cpu') or ''}".strip(),
                                     f"CPU parts {bd['cpu_parts']}" if bd.get("cpu_parts") else None,
                                     f"{bd.get('cores')} cores", f"host name {bd.get('hostname')}",
                                     f"kernel {bd.get('kernel')}") if x)
        lines += ["", "## Device latency (on the board)", "",
                  f"Measured on **{esc(dl['remote'])}** over SSH ({esc(who)}): {esc(dl['runtime'])} (Python "
                  f"{esc(dl['python'])}), {dl['threads']} threads, XNNPACK {'requested' if dl['xnnpack'] else 'off'} "
                  f"(applied: {'yes' if dl['delegate_applied'] else 'no'}), batch 1, {dl['iterations']:,} calls after "
                  f"{dl['warmup']} warm-up."
                  + ("" if dl["runtime_matches_build"] else " The board's runtime version differs from the build "
                                                            "machine's."), "",
                  *table(["p50 ms", "p90 ms", "p99 ms", "mean ms"],
                         [[f"{dl['p50_ms']:.4f}", f"{dl['p90_ms']:.4f}", f"{dl['p99_ms']:.4f}",
                           f"{dl['mean_ms']:.4f}"]])]
    lines += gpu_md(m.get("gpu"))
    tr, data = m["training"], m["data"]
    sizes = data.get("sizes") or {}
    carved = "; ".join(esc(data[k]) for k in ("test_split", "dev_split") if data.get(k))
    lines += ["", "## Provenance", "",
              f"- data: {esc(data['dataset'])} ({data['labels']} labels), "
              + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + f" examples, split seed {data.get('split_seed')}"
              + (f" ({carved})" if carved else ""),
              f"- tokenizer: {esc(m['tokenizer']['type'])}, vocab {m['tokenizer']['vocab_size']:,}, seq_len "
              f"{m['tokenizer']['seq_len']} ("
              + ("" if m["tokenizer"]["type"] == "tokens" else "`tokenizer.json` for Hugging Face tokenizers, ")
              + "`edgeopt_tokenizer.json`, `vocab.txt`; `tokenizer_golden.json` has text-to-ids vectors for a port)",
              f"- training: {tr['epochs_run']} epochs, "
              + (f"best dev entity F1 {tr['best_dev_entity_f1']:.4f}" if tr.get("best_dev_entity_f1") is not None else
                 f"best dev accuracy {_pct(tr.get('best_dev_accuracy'))}")
              + (f" at epoch {tr['best_epoch']}" if tr.get("best_epoch") is not None else "")
              + f", {tr['seconds']} s, seed {m['seed']}",
              *_teacher_lines(m),
              f"- edgeopt {m['edgeopt_version']}; " + ", ".join(f"{esc(k)} {esc(v)}" for k, v in m["versions"].items()),
              ""]
    return "\n".join(lines)


def _epochs(r: dict) -> str:
    """A training pass's best dev epoch and the epoch whose weights it kept (train and distill keep the best,
    a compression pass the last of its schedule)."""
    if r.get("best_epoch") is None:
        return ""
    best = next((r[k] for k in ("best_dev", "best_dev_accuracy", "best_dev_entity_f1") if r.get(k) is not None), None)
    kept_epoch = r.get("kept_epoch", r["best_epoch"])
    kept = r.get("kept_dev", best)
    return (f"{r['best_epoch']} ({_pct(best)}) / {kept_epoch} ({_pct(kept)}) of {r.get('epochs_run', '?')}"
            if best is not None else f"{r['best_epoch']} / {kept_epoch}")


def _teacher_lines(m: dict) -> list[str]:
    """The distillation teacher, with its own accuracy, when the model was distilled."""
    rec = next((r for r in m.get("passes", []) if r.get("step") == "distill" and r.get("teacher")), None)
    if rec is None:
        return []
    t = rec["teacher"]
    acc = next(((k, t[k]) for k in ("accuracy_float32_tflite", "accuracy_keras", "accuracy_onnxruntime",
                                     "entity_f1_float32_tflite") if t.get(k) is not None), None)
    what = {"accuracy_float32_tflite": "test accuracy of its float32 .tflite",
            "accuracy_keras": "test accuracy of the Keras teacher",
            "accuracy_onnxruntime": "test accuracy of the ONNX teacher in ONNX Runtime",
            "entity_f1_float32_tflite": "test entity F1 of its float32 .tflite"}
    lines = [f"- distilled from {esc(t['name'])} ({esc(t.get('architecture'))}; temperature {rec.get('temperature')}, "
             f"alpha {rec.get('alpha')})" + (f": {what[acc[0]]} {_pct(acc[1])}" if acc else "")]
    tr = rec.get("transfer")
    if tr:
        lines.append(f"- transfer set: {tr['augmented']:,} augmented copies of the {tr['training_texts']:,} training "
                     f"texts ({tr['words_masked']:,} words masked, {tr['words_replaced']:,} replaced by a near word, "
                     f"{tr['ngram_cuts']:,} cut to n-grams) and {tr['unlabeled']:,} unlabeled texts, learned from the "
                     f"teacher's outputs alone")
    return lines


def gpu_partition_line(g: dict) -> str:
    """One line: the adapter and the partition (``inspect --gpu``, ``bench --accelerator gpu``)."""
    if not g.get("available"):
        return f"no GPU adapter ({g.get('reason')}). Fix: {g.get('setup')}"
    a, pt = g["adapter"], g["partition"]
    if not g.get("compiled", True):
        return (f"{a['name'] if a else 'the adapter'}{' (software)' if g.get('software') else ''} never sees it: "
                f"LiteRT's CompiledModel (the GPU path) does not load the file ({g['reason']}); nothing runs on the "
                f"GPU, not fully delegated")
    refused = "; ".join(f"{r['op']}: {r['reason']}" for r in pt["refused"])
    return (f"{a['name']}{' (software)' if g['software'] else ''}: {pt['gpu_ops']} of {pt['total_ops']} ops on the "
            f"GPU, {pt['cpu_ops']} on the CPU" + (f" (refused: {refused})" if refused else "")
            + ("; fully delegated" if pt["fully_delegated"] else "; not fully delegated"))


def gpu_md(g: dict | None) -> list[str]:
    """The GPU section: adapter (software or not), partition with LiteRT's reasons, numerics; never a CPU figure."""
    if not g:
        return []
    out = ["", "## GPU (LiteRT's GPU accelerator, CPU fallback)", ""]
    if not g.get("available"):
        return out + [f"**Not run: no GPU adapter** ({esc(g.get('reason'))}). Fix: {code(g.get('setup'))} (a software "
                      f"Vulkan device) or install the GPU's Vulkan driver. No GPU figures are reported."]
    a, pt = g["adapter"], g["partition"]
    if not g.get("compiled", True):
        return out + [f"**Nothing runs on the GPU**: {esc(gpu_partition_line(g))}. Fully delegated: **no**."]
    refused = "; ".join(f"{code(r['op'])}: {esc(r['reason'])}" for r in pt["refused"]) or "none"
    out += [f"Adapter: **{esc(a['name'])}** ({esc(a['backend'])}, {esc(a['type'])}"
            + (", **software**: a CPU emulating a GPU; function, partition and numerics only" if g["software"] else "")
            + f"), driver: {esc(g['driver'])}.", "",
            f"- partition: **{pt['gpu_ops']} of {pt['total_ops']} ops on the GPU**, {pt['cpu_ops']} on the CPU; "
            f"refused: {refused}; fully delegated: **{'yes' if pt['fully_delegated'] else 'no'}** (GPU-only compile "
            f"{'works' if g['gpu_only_compiles'] else 'fails'}; LiteRT's is_fully_accelerated(), which also counts "
            f"XNNPACK's nodes: {g.get('is_fully_accelerated')})",
            f"- export: embedding lookups with {'1-D ids (ids clipped into the table, RESHAPE, GATHER, RESHAPE)' if g['export']['flat_lookup'] else '[1, seq_len] ids, as exported for the CPU'}",
            ""]
    rows = []
    for name, label in (("fp16", "fp16 (GPU default)"), ("fp32", "enforce_f32")):
        r = g[name]
        if not r.get("ran"):
            rows.append([label, "-", f"did not run: {esc(r.get('error'))}", "", "", ""])
            continue
        dev = r.get("max_abs_deviation")
        rows.append([label, f"{g['examples']:,}", _pct(r.get("accuracy")), _pct(g.get("cpu_accuracy")),
                     "n/a" if dev is None else f"{dev:.3g}", _pct(r.get("argmax_agreement"))])
    out += table(["precision", "examples", "accuracy (GPU)", "accuracy (CPU)", "max abs deviation vs CPU",
                  "argmax agreement"], rows)
    out += ["", f"Latency: {w.ms(g['latency_ms'], 4) if g.get('latency_ms') is not None else 'none'} "
                f"({esc(g.get('latency_note'))})."]
    return out


def _entities_md(met: dict) -> list[str]:
    """A tagger's entity scores: strict BIO spans over the whole test split, deployed and float32 artifact."""
    dep, base = met.get("entities"), met.get("baseline_entities")
    if not dep:
        return []
    tr = met.get("truncation", {})
    cut = tr.get("test", {})
    rows = []
    pairs = [("**micro**", dep["micro"], base["micro"])] + [
        (esc(k), v, base["per_type"].get(k, {})) for k, v in sorted(dep["per_type"].items())]
    for name, row, b in pairs:
        rows.append([name, f"{row['support']:,}", f"{row['precision']:.4f}", f"{row['recall']:.4f}",
                     f"{row['f1']:.4f}", f"{b.get('f1', 0):.4f}"])
    return ["", "## Entities (exact spans, strict BIO; each artifact run over the whole test split)", "",
            *table(["entity type", "support", "precision", "recall", "F1", "F1 float32 artifact"], rows), "",
            f"Token accuracy (real tokens, padding excluded) {_pct(dep['token_accuracy'])}: a secondary figure, "
            f"as most tokens are `O`. seq_len {tr.get('seq_len')}: {cut.get('sentences', 0)} of "
            f"{cut.get('of', 0)} test sentences are longer; {cut.get('tokens_cut', 0)} tokens and "
            f"{cut.get('entities_cut', 0)} gold entities past it count as missed."]


def _per_class_md(met: dict) -> list[str]:
    from .validate.classes import biggest_losses, top_confusions

    dep, base = met.get("per_class"), met.get("baseline_per_class")
    if not dep or not base:
        return []
    lines = ["", "## Per-class quality (test split, each artifact run over it)", "",
             f"Macro-F1 {dep['macro_f1']:.4f} deployed vs {base['macro_f1']:.4f} float32 (difference "
             f"{dep['macro_f1'] - base['macro_f1']:+.4f}); weighted-F1 {dep['weighted_f1']:.4f} vs "
             f"{base['weighted_f1']:.4f}. The full per-class precision, recall, F1 and confusion matrices are in "
             f"manifest.json (`metrics.per_class`, `metrics.baseline_per_class`); report.html draws them."]
    worst = sorted(zip(dep["f1"], dep["labels"], dep["support"]))[:5]
    lines += ["", "Weakest classes of the deployed file: " + ", ".join(f"{esc(n)} (F1 {f:.3f}, {s} examples)"
                                                                      for f, n, s in worst) + "."]
    lost = biggest_losses(dep, base)
    if lost:
        lines += ["", *table(["class that lost most", "F1 float32", "F1 deployed", "drop", "support"],
                             [[esc(r["label"]), f"{r['f1_float32']:.3f}", f"{r['f1_deployed']:.3f}", f"{r['drop']:.3f}",
                               r["support"]] for r in lost])]
    else:
        lines += ["", "No class lost F1 from the float32 artifact to the deployed one."]
    conf = top_confusions(dep)
    if conf:
        lines += ["", *table(["top confusion (deployed): true", "predicted", "count", "of the true class"],
                             [[esc(c["true"]), esc(c["predicted"]), c["count"], c["of_true"]] for c in conf])]
    return lines


def _robustness_md(r: dict | None) -> list[str]:
    """The deployed file on the test split as people type it (validate/robustness.py)."""
    if not r:
        return []
    fig = r["figure"]
    name = {"accuracy": "accuracy", "entity_f1": "entity F1"}[fig]
    client = "client_accuracy" in r["as_typed"]
    head = ["texts", f"{name} (edgeopt)", "change"] + (["client accuracy", "client change"] if client else []) + \
        ["texts changed", "ids changed"]
    rows = [["as written", _pct(r["as_typed"][fig]), ""] + ([_pct(r["as_typed"]["client_accuracy"]), ""]
                                                            if client else []) + ["", ""]]
    for t in r["transforms"]:
        rows.append([esc(t["transform"]), _pct(t[fig]), w.points(-t["drop"])]
                    + ([_pct(t["client_accuracy"]), w.points(-t["client_drop"])] if client else [])
                    + [f"{t['texts_changed']:,}", f"{t['ids_changed']:,}"])
    return ["", "## How people type it (the deployed file on transformed copies of the test split)", "",
            f"Each transform of the {r['examples']:,} test texts goes through the build's tokenizer "
            f"({esc(r['tokenizer'])}{', case folded' if r['lowercase'] else ', case-sensitive'}) and the runtime"
            + (", and through the client with its own tokenizer" if client else "") + "; the change is from the "
            f"texts as written. Worst: **{esc(r['worst']['transform'])}**, {w.drop(r['worst']['drop'])} "
            f"({esc(r['worst']['measured_in'])}).", "", *table(head, rows)]


def client_line(c: dict) -> str:
    if not c.get("ran"):
        return f"{c['client']} ({c['package']}): not run: {c['reason']}"
    return (f"{c['client']} ({c['package']}) on {c['artifact']}: accuracy {_pct(c['accuracy'])} vs edgeopt's "
            f"{_pct(c['edgeopt_accuracy'])}, predictions agree on {_pct(c['agreement'])} of {c['examples']:,} "
            f"examples ({c['disagreements']} differ; needs >= {_pct(c['agreement_min'])}; "
            f"{c['ties_broken_differently']} rows tie for the top score and the client lists another tied label "
            f"first), scores identical to "
            f"{'n/a' if c.get('max_abs_score_diff') is None else format(c['max_abs_score_diff'], '.3g')}, "
            f"{'PASS' if c['passed'] else 'FAIL'}")


def _py(lines: list[str]) -> list[str]:
    return ["```python", *lines, "```"]


def snippets(artifact: str, seq_len: int, client_ready: bool, gpu: bool = False,
             gap: Optional[str] = None) -> list[str]:
    """How to load the artifact in an Android app and in Python. Every Python snippet runs as printed from the
    build directory (the tests run each one); a GPU target's snippets run the file on the GPU."""
    text = f"text = {EXAMPLE_TEXT!r}"
    kotlin = ["```kotlin", "// build.gradle: implementation(\"com.google.mediapipe:tasks-text:0.10.21\")",
              "// put the file in app/src/main/assets/",
              "import com.google.mediapipe.tasks.core.BaseOptions",
              "import com.google.mediapipe.tasks.text.textclassifier.TextClassifier",
              "import com.google.mediapipe.tasks.text.textclassifier.TextClassifier.TextClassifierOptions", "",
              "val options = TextClassifierOptions.builder()",
              f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{artifact}\").build())",
              "    .setMaxResults(3)", "    .build()",
              "val classifier = TextClassifier.createFromOptions(context, options)",
              f"val text = \"{EXAMPLE_TEXT}\"",
              "val top = classifier.classify(text).classificationResult().classifications()[0].categories()[0]",
              "// top.categoryName(), top.score(); classifier.close() when done",
              "// score() is the model's raw output for the label (a logit, not a probability): for probabilities ask",
              "// for every label (setMaxResults(-1)) and take exp(score - max) / sum over them", "```"]
    mediapipe = _py(["# pip install mediapipe==1.2.2", "from mediapipe.tasks.python.core.base_options import BaseOptions",
                     "from mediapipe.tasks.python.text import text_classifier", "", text,
                     "clf = text_classifier.TextClassifier.create_from_options(text_classifier.TextClassifierOptions(",
                     f"    base_options=BaseOptions(model_asset_path=\"{artifact}\"), max_results=3))",
                     "top = clf.classify(text).classifications[0].categories[0]",
                     "print(top.category_name, top.score)",
                     "# .score is the model's raw output (a logit, not a probability); for probabilities, max_results=-1",
                     "# and softmax over every category's score",
                     "clf.close()"])
    head = ["# tokenize with the build's tokenizer.json (Hugging Face tokenizers), run with LiteRT",
            "import numpy as np", "from tokenizers import Tokenizer"]
    tail = ["labels = open(\"labels.txt\", encoding=\"utf-8\").read().splitlines()",
            "probs = np.exp(scores - scores.max()); probs /= probs.sum()  # the outputs are logits",
            "print(labels[int(scores.argmax())], float(probs.max()))"]
    tok = ["tok = Tokenizer.from_file(\"tokenizer.json\")  # truncates and pads to the model's input length",
           text, "ids = np.array([tok.encode(text).ids], np.int32)"]
    if gpu:  # LiteRT's CompiledModel with the GPU accelerator (CPU for what the GPU refuses)
        litert = _py([*head, "from ai_edge_litert.compiled_model import CompiledModel",
                      "from ai_edge_litert.hardware_accelerator import HardwareAccelerator", "",
                      f"model = CompiledModel.from_file(\"{artifact}\",",
                      "                              hardware_accel=HardwareAccelerator.GPU | HardwareAccelerator.CPU)",
                      *tok, "inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)",
                      "inputs[0].write(ids)  # the file's input holds the same number of ids",
                      "model.run_by_index(0, inputs, outputs)",
                      "n = len(open(\"labels.txt\", encoding=\"utf-8\").read().splitlines())",
                      "scores = np.asarray(outputs[0].read(n, np.float32))", *tail])
        kotlin = ["```kotlin", "// build.gradle: implementation(\"com.google.ai.edge.litert:litert:2.3.0\") and",
                  "//               implementation(\"com.google.ai.edge.litert:litert-gpu:2.3.0\")",
                  "// put the file in app/src/main/assets/; ids: the text through tokenizer.json (e.g. a port of it)",
                  "import com.google.ai.edge.litert.Accelerator", "import com.google.ai.edge.litert.CompiledModel", "",
                  f"val model = CompiledModel.create(context.assets, \"{artifact}\", "
                  "CompiledModel.Options(Accelerator.GPU))",
                  "val inputs = model.createInputBuffers()", "val outputs = model.createOutputBuffers()",
                  f"inputs[0].writeInt(ids)  // IntArray of {seq_len} token ids", "model.run(inputs, outputs)",
                  "val scores = outputs[0].readFloat()  // logits, in labels.txt order", "```"]
        return ["On the device's GPU: LiteRT's CompiledModel with the GPU accelerator (ops the GPU refuses run on the "
                "CPU; see the GPU section for the partition).", "", "Android (Kotlin, LiteRT):", "", *kotlin, "",
                "Python (LiteRT, the same accelerator):", "", *litert]
    litert = _py([*head, "from ai_edge_litert.interpreter import Interpreter", "", *tok,
                  f"it = Interpreter(model_path=\"{artifact}\"); it.allocate_tensors()",
                  f"it.set_tensor(it.get_input_details()[0][\"index\"], ids)  # shape [1, {seq_len}]",
                  "it.invoke(); scores = it.get_tensor(it.get_output_details()[0][\"index\"])[0]", *tail])
    if client_ready:
        return ["The file carries its tokenizer and labels: MediaPipe tokenizes the text itself.", "",
                "Android (Kotlin, MediaPipe Tasks):", "", *kotlin, "", "Python (MediaPipe Tasks):", "", *mediapipe,
                "", "Python without MediaPipe:", "", *litert]
    why = gap or ("its ids come from edgeopt's tokenizer, which MediaPipe's regex tokenizer does not reproduce; "
                  "rebuild with `tokenizer: {kind: regex}` to make the file MediaPipe-ready")
    return [f"**Not for MediaPipe's TextClassifier:** {esc(why)}. The app tokenizes the text itself and runs the "
            f"file with LiteRT (Android: `com.google.ai.edge.litert:litert`, the Interpreter or CompiledModel): "
            f"tokenize with the build's `tokenizer.json` (Hugging Face tokenizers in Python and Rust; "
            f"swift-transformers and transformers.js read it too), or with a port of it that reproduces every row "
            f"of `tokenizer_golden.json`, then feed the {seq_len} ids and read one score per label of `labels.txt`.",
            "", "Python:", "", *litert]


def _app_md(m: dict) -> list[str]:
    md = m.get("metadata")
    if md is None and m["recipe"]["convert"]["format"] != "tflite":
        return []
    lines = ["", "## In an app", "", "Each Python snippet below runs as printed from this build directory."]
    if md:
        lines += ["", f"Model metadata inside the .tflite files (written by {esc(md['writer'])}): name "
                      f"{code(md['name'])}, version {code(md['version'])}, input {esc(md['input_tokenizer'])}, "
                      f"associated files {', '.join(code(f) for f in md['associated_files'])} (min parser "
                      f"{md['min_parser_version']})."]
    for c in m.get("clients") or []:
        lines += ["", "**Client check:** " + esc(client_line(c)) + "."]
        if c.get("shown"):
            lines += ["", *table(["#", "text", "label", "edgeopt", "client", "tie"],
                                 [[r["index"], esc(r["text"][:60]), esc(r["label"]), esc(r["edgeopt"]),
                                   esc(r["client"]), "yes" if r["tie"] else "no"] for r in c["shown"]])]
    if task_for(m.get("task")).per_token:
        return lines + ["", *tagger_snippet(m["metrics"]["artifact"], m["tokenizer"]["seq_len"])]
    gpu = "gpu" in ((m.get("target_profile") or {}).get("runtime", {}).get("delegates") or ())
    lines += [""] + snippets(m["metrics"]["artifact"], m["tokenizer"]["seq_len"], bool(md and md["client_ready"]),
                             gpu=gpu, gap=(md or {}).get("client_gap"))
    return lines + scores_md(m["metrics"].get("scores"))


def scores_md(sc: Optional[dict]) -> list[str]:
    """Why the file's scores are logits, measured on this build, and how an app turns them into probabilities."""
    if not sc or "examples" not in sc:
        return []
    return ["", f"**Scores are logits, not probabilities.** MediaPipe's `score`, LiteRT's output and ONNX Runtime's "
                f"are the model's raw outputs; {esc(sc['to_probabilities'])} gives probabilities (with MediaPipe, ask "
                f"for every label: max results -1). The file keeps logits because every parity check here reads them, "
                f"and a softmax squashes the int8 error they show: on {sc['examples']:,} test texts this file "
                f"differs from its float32 twin by up to {sc['max_abs_logit_diff_vs_baseline']:.4f} in logits, but "
                f"only {sc['max_abs_probability_diff_vs_baseline']:.4f} in probabilities. Its mean top-1 "
                f"probability is {sc['mean_top1_probability']:.3f}; a threshold on confidence belongs on the "
                f"probabilities, not on the logits."]


def tagger_snippet(artifact: str, seq_len: int) -> list[str]:
    """How to run a tagger in Python: the text split at whitespace (the tokens it was trained on), one tag a token."""
    fmt_run = (["from ai_edge_litert.interpreter import Interpreter", "",
                f"it = Interpreter(model_path=\"{artifact}\"); it.allocate_tensors()",
                "it.set_tensor(it.get_input_details()[0][\"index\"], ids)",
                "it.invoke(); scores = it.get_tensor(it.get_output_details()[0][\"index\"])[0]"]
               if artifact.endswith(".tflite") else
               ["import onnxruntime as ort", "", f"sess = ort.InferenceSession(\"{artifact}\")",
                "scores = sess.run(None, {sess.get_inputs()[0].name: ids})[0][0]"])
    return ["A tagger: one row of tag scores per token (`labels.txt` lists the BIO tags); `edgeopt predict` prints "
            "the entities. In Python (edgeopt installed: its tokenizer gives unknown words their shape):", "",
            *_py([*fmt_run[:1], "from edgeopt.data.tokenizer import load_tokenizer  # or a port: tokenizer_golden.json",
                  "", "text = 'Going to see Taylor Swift in Paris on Friday'",
                  "tok = load_tokenizer(\".\")  # edgeopt_tokenizer.json: whitespace tokens; unknown ones by shape",
                  "words = text.split()", f"ids = tok.encode_batch([text])  # [1, {seq_len}] int32", *fmt_run[1:],
                  "tags = [open(\"labels.txt\", encoding=\"utf-8\").read().splitlines()[i] "
                  "for i in scores.argmax(-1)[:len(words)]]", "print(list(zip(words, tags)))"])]


def html(manifest: dict, markdown: Optional[str] = None) -> str:
    """report.html: report.md's Markdown (``markdown``, rendered here when not given) as HTML, with the plots
    (edgeopt/plots.py) before the budgets."""
    from .plots import figures

    return w.to_html(render(manifest) if markdown is None else markdown,
                     f"edgeopt build: {manifest['model']} for {manifest['target']}", figures(manifest))


def write_report(path: Path, manifest: dict) -> None:
    """report.md at ``path`` and report.html beside it, from one rendering of the Markdown."""
    path = Path(path)
    md = render(manifest)
    path.write_text(md, encoding="utf-8")
    path.with_suffix(".html").write_text(html(manifest, md), encoding="utf-8")
