"""report.md: what a person reads next to manifest.json (same numbers, no new ones)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .tasks import task_for


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _n(x) -> str:
    return "-" if x is None else f"{x:,}"


def _f6(x) -> str:
    return "n/a" if x is None else f"{x:.6f}"


def _latency_rows(rows: list, label: str) -> list[str]:
    return [f"| {label} | {r['threads']} | {'on' if r['xnnpack'] else 'off'} | "
            f"{'yes' if r['delegate_applied'] else ('no (refused)' if r.get('delegate_error') else 'no')} | {r['p50_ms']:.4f} | {r['p90_ms']:.4f} | {r['p99_ms']:.4f} | "
            f"{r['iterations']} |" for r in rows]


def render(m: dict) -> str:
    met, bud = m["metrics"], m["budgets"]
    mach = (met["latency"] or [{}])[0].get("machine", {})
    rt = (met["latency"] or [{}])[0].get("runtime", "")
    deployed = next(a for a in m["artifacts"] if a.get("role") == "deployed")
    lines = [
        f"# edgeopt build: {m['model']} for {m['target']}",
        "",
        f"**Verdict: {'PASSED' if bud['passed'] else 'FAILED'}** — deployed `{deployed['path']}` "
        f"({m['recipe']['convert']['quantization']}), "
        + (f"entity F1 {met['entity_f1']:.4f} (float32 artifact {met['baseline_entity_f1']:.4f}) on "
           f"{met['test_examples']} test sentences; token accuracy {_pct(met['accuracy'])}, drop "
           f"{_pct(met['accuracy_drop'])}." if "entity_f1" in met else
           f"accuracy {_pct(met['accuracy'])} on {met['test_examples']} test examples, drop "
           f"{_pct(met['accuracy_drop'])} vs the float32 artifact."),
        "",
    ]
    conv = m.get("conversion") or {}
    if conv.get("fell_back"):
        lines += ["", f"**Fallback:** the target asked for {conv['asked']}; deployed {conv['deployed']}. "
                  + "; ".join(f"{a['mode']}: {a['outcome']}" + (f" ({a['error']}; layer types "
                                                                  f"{', '.join(a['layer_types'])})" if 'error' in a
                                                                 else "") for a in conv["attempts"]) + "."]
    src = m.get("model_source") or {}
    if src.get("kind") in ("file", "builder"):
        lines += ["", f"**Model:** {src['description']}; input {src.get('input_dtype')} [batch, "
                      f"{src.get('seq_len') or 'any'}], output {src.get('output')}"
                  + (f"; weights {src['weights']}" if src.get("weights") else "")
                  + (f"; sha256 `{src['model_file_sha256'][:16]}`" if src.get("model_file_sha256") else "")
                  + (f"; Keras {src['keras3_rebuild']['keras_version']} file rebuilt in tf_keras (max abs difference "
                     f"{src['keras3_rebuild']['max_abs_difference']:.2g} on {src['keras3_rebuild']['compared_examples']}"
                     f" dev examples)" if src.get("keras3_rebuild") else "") + "."]
    lines += ["", "## Budgets", "", "| budget | limit | measured | result |", "|---|---|---|---|"]
    layer_md = []
    if src.get("layers"):
        cols = ("layer", "type", "params", "prune", "cluster", "qat", "converter")
        layer_md = ["", "## Layers (what each pass did to each layer; what the converter does with it)", "",
                    "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        layer_md += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in src["layers"]]
    lines += [f"| {c['name']} | {c['limit']} {c['unit']} | {c['value']} {c['unit']} | "
              f"{'pass' if c['passed'] else '**FAIL**'} |" for c in bud["checks"]] or ["| (none) | | | |"]
    recipe = met.get("baseline_keras_accuracy") is not None  # the baseline comes from the model before the recipe
    lines += ["", "## Accuracy (measured by running each artifact over the test split)", "",
              "| model | accuracy | argmax agreement vs its Keras model | max abs logit diff vs its Keras model |",
              "|---|---|---|---|"]
    if recipe:
        lines.append(f"| Keras, before the recipe (float32; the baseline is exported from it) | "
                     f"{_pct(met['baseline_keras_accuracy'])} | | |")
    lines += [f"| Keras{', after the recipe' if recipe else ''} (float32, before export) | "
              f"{_pct(met['keras_accuracy'])} | | |",
              f"| `{met['baseline']['artifact']}` (baseline{', from the model before the recipe' if recipe else ''}) | "
              f"{_pct(met['baseline']['accuracy'])} | "
              f"{_pct(met['baseline']['parity_vs_keras']['argmax_agreement'])} | "
              f"{_f6(met['baseline']['parity_vs_keras']['max_abs_diff'])} |"]
    if met["artifact"] != met["baseline"]["artifact"]:
        lines.append(f"| `{met['artifact']}` (deployed{', from the model after the recipe' if recipe else ''}) | "
                     f"{_pct(met['accuracy'])} | "
                     f"{_pct(met['parity_vs_keras']['argmax_agreement'])} | "
                     f"{_f6(met['parity_vs_keras']['max_abs_diff'])} |")
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
                      "deployed file after convert/QAT)", "",
                  "| step | accuracy | dev: best epoch / epoch kept | zero fraction | unique values (median / max) | m:n "
                  "| bytes | gzip bytes | cached |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in passes:
            w = r.get("weights", {})
            lines.append(f"| {r['step']} | {_pct(r['accuracy'])} | {_epochs(r)} | {w.get('zero_fraction', 0):.1%} | "
                         f"{w.get('unique_values_median', '')} / {w.get('unique_values_max', '')} | "
                         f"{', '.join(w.get('m_by_n', [])) or ''} | {r['size_bytes']:,} | {r['gzip_bytes']:,} | "
                         f"{r.get('cached') or 'no'} |")
        steps = m["recipe"].get("steps", [])
        if steps:
            lines += ["", "Resolved recipe: " + " -> ".join(f"`{s}`" for s in steps)]
    cf = met.get("cross_format")
    if cf:
        ag = cf["agreement_with_deployed"]
        lines += ["", "## Cross-format parity (same weights, both formats)", "",
                  "| artifact | format | quantization | accuracy | bytes | p50 ms (1 thread) |", "|---|---|---|---|---|---|",
                  f"| `{met['artifact']}` (deployed) | {m['recipe']['convert']['format']} | "
                  f"{m['recipe']['convert']['quantization']} | {_pct(met['accuracy'])} | {met['size']['size_bytes']:,} | "
                  f"{next((r['p50_ms'] for r in met['latency'] if r['threads'] == 1), float('nan')):.4f} |",
                  f"| `{cf['artifact']}` | {cf['format']} | {cf['quantization']} | {_pct(cf['accuracy'])} | "
                  f"{cf['size_bytes']:,} | {cf['latency_1_thread']['p50_ms']:.4f} |", "",
                  f"Agreement between the two: argmax {_pct(ag['argmax_agreement'])}, max abs logit difference "
                  f"{ag['max_abs_diff']:.6f} over {ag['examples']} test examples."]
    lines += _entities_md(met)
    lines += _per_class_md(met)
    lines += _robustness_md(m.get("robustness"))
    lines += _app_md(m)
    lines += layer_md
    lines += ["", "## Artifacts", "", "| file | quantization | bytes | gzip bytes | sha256 |", "|---|---|---|---|---|"]
    lines += [f"| `{a['path']}` | {a.get('quantization', '')} | {a['size_bytes']:,} | {a['gzip_bytes']:,} | "
              f"`{a['sha256'][:16]}` |" for a in m["artifacts"]]
    qn = next((r.get("quantized_nodes") for r in m.get("passes", []) if r.get("quantized_nodes")), None)
    if qn:
        lines += ["", "Quantized ONNX nodes in the deployed file: " + ", ".join(f"{k} x{v}" for k, v in sorted(qn.items()))]
    lines += ["", "## Latency (batch 1, per call: set input + invoke + read output)", "",
              f"Measured on **this build machine**, not on the {m['target']} device: {mach.get('arch')} "
              f"{mach.get('cpu')}, {mach.get('cores')} cores; runtime {rt}. XNNPACK 'applied' is read from the "
              f"loaded graph.", "",
              "| artifact | threads | XNNPACK | applied | p50 ms | p90 ms | p99 ms | iterations |",
              "|---|---|---|---|---|---|---|---|"]
    lines += _latency_rows(met["latency"], f"`{met['artifact']}`")
    if met["artifact"] != met["baseline"]["artifact"]:
        lines += _latency_rows(met["baseline"]["latency"], f"`{met['baseline']['artifact']}`")
    emu = m.get("emulator")
    if emu:
        smp = emu["sample"]
        lines += ["", "## Emulated arm64 runs (qemu-user)", "",
                  f"{smp['examples']} of {smp['of']} test examples (seed {smp['seed']}), {emu['runtime']}, "
                  f"{emu['threads']} threads. Parity is against this machine's run of the same file on the same "
                  f"inputs. Emulated time is not device latency and is not reported here.", "",
                  "| qemu CPU | loads | XNNPACK applied | rejected ops | accuracy | parity | limit | result |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in emu["cpus"]:
            p = c["parity"]
            val = f"{p['max_steps']} steps" if "max_steps" in p else f"max abs {p.get('max_abs_diff')}"
            acc = _pct(c["accuracy"]) if c["accuracy"] is not None else "-"
            lines.append(f"| {c['cpu']} | {'yes' if c['loaded'] else 'NO'} | {'yes' if c['delegate_applied'] else 'no'} "
                         f"| {', '.join(c['rejected_ops']) or '-'} | {acc} | {val} | {p.get('limit', '-')} | "
                         f"{'pass' if c['passed'] else 'FAIL'} |")
        counted = [c for c in emu["cpus"] if c.get("instructions")]
        lines += ["", "**Emulated instructions per inference** (batch 1, 1 thread; counted by a qemu TCG plugin on the "
                      "CPU model: deterministic, an instruction count and not a time). "
                  + ("" if counted else emu.get("instructions_note", "Not counted.")), ""]
        if counted:
            lines += ["| qemu CPU | XNNPACK on | XNNPACK off | ONNX Runtime | spread over 20 invokes | seconds |",
                      "|---|---|---|---|---|---|"]
            for c in counted:
                ins = c["instructions"]
                lines.append(f"| {c['cpu']} | {_n(ins.get('xnnpack_on'))} | {_n(ins.get('xnnpack_off'))} | "
                             f"{_n(ins.get('onnxruntime'))} | {ins.get('spread')} | {ins.get('seconds')} |")
    dc = m.get("device_cost")
    if dc:
        ins = dc["counts"]
        how = (f"XNNPACK on {_n(ins.get('xnnpack_on'))}, off {_n(ins.get('xnnpack_off'))}" if "xnnpack_on" in ins
               else f"ONNX Runtime {_n(ins.get('onnxruntime'))}")
        lines += ["", f"**Device cost** ({m['target']}): "
                      + (f"{dc['instructions_per_inference']:,} {dc['label']}" if dc["instructions_per_inference"]
                         is not None else f"{dc['label']}: not counted ({dc.get('error', '')[:200]})")
                      + (f" at the target's setting (XNNPACK {'on' if dc['xnnpack'] else 'off'})"
                         if dc.get("xnnpack") is not None else "")
                      + f"; {how}; spread over 20 invokes {ins.get('spread')}, {ins.get('seconds')} s to count. "
                        f"Counted by {dc['counter']}: {dc['note']}."]
        if "estimated_latency_ms" in dc:
            lines += ["", f"**Estimated device latency: {dc['estimated_latency_ms']:.4f} ms. This is an estimate**, "
                          f"not a measurement: instructions / {dc['estimate_rate_instructions_per_ns']:g} instructions "
                          f"per ns (source: {dc['estimate_source']})."]
    dl = m.get("device_latency")
    if dl:
        bd = dl["board"]
        who = ", ".join(x for x in (bd.get("model"), f"{bd.get('arch')} {bd.get('cpu') or ''}".strip(),
                                     f"CPU parts {bd['cpu_parts']}" if bd.get("cpu_parts") else None,
                                     f"{bd.get('cores')} cores", f"host name {bd.get('hostname')}",
                                     f"kernel {bd.get('kernel')}") if x)
        lines += ["", "## Device latency (on the board)", "",
                  f"Measured on **{dl['remote']}** over SSH ({who}): {dl['runtime']} (Python {dl['python']}), "
                  f"{dl['threads']} threads, XNNPACK {'requested' if dl['xnnpack'] else 'off'} (applied: "
                  f"{'yes' if dl['delegate_applied'] else 'no'}), batch 1, {dl['iterations']} calls after "
                  f"{dl['warmup']} warm-up."
                  + ("" if dl["runtime_matches_build"] else " The board's runtime version differs from the build "
                                                            "machine's."), "",
                  "| p50 ms | p90 ms | p99 ms | mean ms |", "|---|---|---|---|",
                  f"| {dl['p50_ms']:.4f} | {dl['p90_ms']:.4f} | {dl['p99_ms']:.4f} | {dl['mean_ms']:.4f} |"]
    lines += gpu_md(m.get("gpu"))
    tr, data = m["training"], m["data"]
    lines += ["", "## Provenance", "",
              f"- data: {data['dataset']} ({data['labels']} labels), sizes {data.get('sizes')}, split seed "
              f"{data.get('split_seed')}",
              f"- tokenizer: {m['tokenizer']['type']}, vocab {m['tokenizer']['vocab_size']}, seq_len "
              f"{m['tokenizer']['seq_len']} ("
              + ("" if m["tokenizer"]["type"] == "tokens" else "`tokenizer.json` for Hugging Face tokenizers, ")
              + "`edgeopt_tokenizer.json`, `vocab.txt`; `tokenizer_golden.json` has text-to-ids vectors for a port)",
              f"- training: {tr['epochs_run']} epochs, "
              + (f"best dev entity F1 {tr['best_dev_entity_f1']:.4f}" if tr.get("best_dev_entity_f1") is not None else
                 f"best dev accuracy {_pct(tr.get('best_dev_accuracy'))}")
              + (f" at epoch {tr['best_epoch']}" if tr.get("best_epoch") is not None else "")
              + f", {tr['seconds']} s, seed {m['seed']}",
              *_teacher_lines(m),
              f"- edgeopt {m['edgeopt_version']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
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
    acc = next(((k, t[k]) for k in ("accuracy_float32_tflite", "accuracy_keras", "entity_f1_float32_tflite")
                if t.get(k) is not None), None)
    what = {"accuracy_float32_tflite": "test accuracy of its float32 .tflite",
            "accuracy_keras": "test accuracy of the Keras teacher (frozen encoder + its fitted head)",
            "entity_f1_float32_tflite": "test entity F1 of its float32 .tflite"}
    return [f"- distilled from {t['name']} ({t.get('architecture')}; temperature {rec.get('temperature')}, alpha "
            f"{rec.get('alpha')})" + (f": {what[acc[0]]} {_pct(acc[1])}" if acc else "")]


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
        return out + [f"**Not run: no GPU adapter** ({g.get('reason')}). Fix: `{g.get('setup')}` (a software Vulkan "
                      f"device) or install the GPU's Vulkan driver. No GPU figures are reported."]
    a, pt = g["adapter"], g["partition"]
    if not g.get("compiled", True):
        return out + [f"**Nothing runs on the GPU**: {gpu_partition_line(g)}. Fully delegated: **no**."]
    refused = "; ".join(f"`{r['op']}`: {r['reason']}" for r in pt["refused"]) or "none"
    out += [f"Adapter: **{a['name']}** ({a['backend']}, {a['type']}" + (", **software**: a CPU emulating a GPU; "
            "function, partition and numerics only" if g["software"] else "") + f"), driver: {g['driver']}.", "",
            f"- partition: **{pt['gpu_ops']} of {pt['total_ops']} ops on the GPU**, {pt['cpu_ops']} on the CPU; "
            f"refused: {refused}; fully delegated: **{'yes' if pt['fully_delegated'] else 'no'}** (GPU-only compile "
            f"{'works' if g['gpu_only_compiles'] else 'fails'}; LiteRT's is_fully_accelerated(), which also counts "
            f"XNNPACK's nodes: {g.get('is_fully_accelerated')})",
            f"- export: embedding lookups with {'1-D ids (ids clipped into the table, RESHAPE, GATHER, RESHAPE)' if g['export']['flat_lookup'] else '[1, seq_len] ids, as exported for the CPU'}",
            "", "| precision | examples | accuracy (GPU) | accuracy (CPU) | max abs deviation vs CPU | argmax agreement |",
            "|---|---|---|---|---|---|"]
    for name, label in (("fp16", "fp16 (GPU default)"), ("fp32", "enforce_f32")):
        r = g[name]
        if not r.get("ran"):
            out.append(f"| {label} | - | did not run: {r.get('error')} | | | |")
            continue
        out.append(f"| {label} | {g['examples']} | {_pct(r.get('accuracy'))} | {_pct(g.get('cpu_accuracy'))} | "
                   f"{r.get('max_abs_deviation', float('nan')):.3g} | {_pct(r.get('argmax_agreement'))} |")
    out += ["", f"Latency: {'%.4f ms' % g['latency_ms'] if g.get('latency_ms') is not None else 'none'} "
                f"({g.get('latency_note')})."]
    return out


def _entities_md(met: dict) -> list[str]:
    """A tagger's entity scores: strict BIO spans over the whole test split, deployed and float32 artifact."""
    dep, base = met.get("entities"), met.get("baseline_entities")
    if not dep:
        return []
    tr = met.get("truncation", {})
    cut = tr.get("test", {})
    lines = ["", "## Entities (exact spans, strict BIO; each artifact run over the whole test split)", "",
             "| entity type | support | precision | recall | F1 | F1 float32 artifact |", "|---|---|---|---|---|---|"]
    for name, row in [("**micro**", dep["micro"])] + sorted(dep["per_type"].items()):
        b = base["micro"] if name == "**micro**" else base["per_type"].get(name, {})
        lines.append(f"| {name} | {row['support']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | "
                     f"{b.get('f1', 0):.4f} |")
    lines += ["", f"Token accuracy (real tokens, padding excluded) {_pct(dep['token_accuracy'])}: a secondary figure, "
                  f"as most tokens are `O`. seq_len {tr.get('seq_len')}: {cut.get('sentences', 0)} of "
                  f"{cut.get('of', 0)} test sentences are longer; {cut.get('tokens_cut', 0)} tokens and "
                  f"{cut.get('entities_cut', 0)} gold entities past it count as missed."]
    return lines


def _per_class_md(met: dict) -> list[str]:
    from .validate.classes import biggest_losses, top_confusions

    dep, base = met.get("per_class"), met.get("baseline_per_class")
    if not dep or not base:
        return []
    lines = ["", "## Per-class quality (test split, each artifact run over it)", "",
             f"Macro-F1 {dep['macro_f1']:.4f} deployed vs {base['macro_f1']:.4f} float32 (drop "
             f"{base['macro_f1'] - dep['macro_f1']:+.4f}); weighted-F1 {dep['weighted_f1']:.4f} vs "
             f"{base['weighted_f1']:.4f}. The full per-class precision, recall, F1 and confusion matrices are in "
             f"manifest.json (`metrics.per_class`, `metrics.baseline_per_class`)."]
    worst = sorted(zip(dep["f1"], dep["labels"], dep["support"]))[:5]
    lines += ["", "Weakest classes of the deployed file: " + ", ".join(f"{n} (F1 {f:.3f}, {s} examples)"
                                                                      for f, n, s in worst) + "."]
    lost = biggest_losses(dep, base)
    if lost:
        lines += ["", "| class that lost most | F1 float32 | F1 deployed | drop | support |", "|---|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['f1_float32']:.3f} | {r['f1_deployed']:.3f} | {r['drop']:.3f} | "
                  f"{r['support']} |" for r in lost]
    else:
        lines += ["", "No class lost F1 from the float32 artifact to the deployed one."]
    conf = top_confusions(dep)
    if conf:
        lines += ["", "| top confusion (deployed): true | predicted | count | of the true class |", "|---|---|---|---|"]
        lines += [f"| {c['true']} | {c['predicted']} | {c['count']} | {c['of_true']} |" for c in conf]
    return lines


def _robustness_md(r: dict | None) -> list[str]:
    """The deployed file on the test split as people type it (validate/robustness.py)."""
    if not r:
        return []
    fig = r["figure"]
    name = {"accuracy": "accuracy", "entity_f1": "entity F1"}[fig]
    client = "client_accuracy" in r["as_typed"]
    head = f"| texts | {name} (edgeopt) | drop |" + (" client accuracy | client drop |" if client else "") + \
        " texts changed | ids changed |"
    lines = ["", "## How people type it (the deployed file on transformed copies of the test split)", "",
             f"Each transform of the {r['examples']} test texts goes through the build's tokenizer ({r['tokenizer']}"
             f"{', case folded' if r['lowercase'] else ', case-sensitive'}) and the runtime"
             + (", and through the client with its own tokenizer" if client else "") + "; the drop is from the texts "
             f"as written. Worst: **{r['worst']['transform']}**, {r['worst']['drop'] * 100:+.2f} points "
             f"({r['worst']['measured_in']}).", "", head, "|---|---|---|" + ("---|---|" if client else "") + "---|---|",
             f"| as written | {_pct(r['as_typed'][fig])} | |" + (f" {_pct(r['as_typed']['client_accuracy'])} | |"
                                                                  if client else "") + " | |"]
    for t in r["transforms"]:
        lines.append(f"| {t['transform']} | {_pct(t[fig])} | {t['drop'] * 100:+.2f} pt |"
                     + (f" {_pct(t['client_accuracy'])} | {t['client_drop'] * 100:+.2f} pt |" if client else "")
                     + f" {t['texts_changed']} | {t['ids_changed']} |")
    return lines


def client_line(c: dict) -> str:
    if not c.get("ran"):
        return f"{c['client']} ({c['package']}): not run: {c['reason']}"
    return (f"{c['client']} ({c['package']}) on `{c['artifact']}`: accuracy {_pct(c['accuracy'])} vs edgeopt's "
            f"{_pct(c['edgeopt_accuracy'])}, predictions agree on {_pct(c['agreement'])} of {c['examples']} "
            f"examples ({c['disagreements']} differ; needs >= {_pct(c['agreement_min'])}; "
            f"{c['ties_broken_differently']} rows tie for the top score and the client lists another tied label "
            f"first), scores identical to {c['max_abs_score_diff']}, {'PASS' if c['passed'] else 'FAIL'}")


def snippets(artifact: str, seq_len: int, client_ready: bool) -> list[str]:
    """How to load the artifact in an Android app (MediaPipe Tasks) and in Python."""
    kotlin = ["```kotlin", "// build.gradle: implementation(\"com.google.mediapipe:tasks-text:0.10.21\")",
              "// put the file in app/src/main/assets/",
              "import com.google.mediapipe.tasks.core.BaseOptions",
              "import com.google.mediapipe.tasks.text.textclassifier.TextClassifier",
              "import com.google.mediapipe.tasks.text.textclassifier.TextClassifier.TextClassifierOptions", "",
              "val options = TextClassifierOptions.builder()",
              f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{artifact}\").build())",
              "    .setMaxResults(3)", "    .build()",
              "val classifier = TextClassifier.createFromOptions(context, options)",
              "val top = classifier.classify(text).classificationResult().classifications()[0].categories()[0]",
              "// top.categoryName(), top.score(); classifier.close() when done",
              "// score() is the model's raw output for the label (a logit, not a probability): for probabilities ask",
              "// for every label (setMaxResults(-1)) and take exp(score - max) / sum over them", "```"]
    python = ["```python", "# pip install mediapipe==1.2.2",
              "from mediapipe.tasks.python.core.base_options import BaseOptions",
              "from mediapipe.tasks.python.text import text_classifier", "",
              "clf = text_classifier.TextClassifier.create_from_options(text_classifier.TextClassifierOptions(",
              f"    base_options=BaseOptions(model_asset_path=\"{artifact}\"), max_results=3))",
              "top = clf.classify(text).classifications[0].categories[0]  # .category_name, .score",
              "# .score is the model's raw output (a logit, not a probability); for probabilities, max_results=-1 and",
              "# softmax over every category's score",
              "clf.close()", "```"]
    litert = ["```python", "# any tokenizer-less runtime: tokenize with the build's tokenizer.json, run with LiteRT",
              "import numpy as np",
              "from ai_edge_litert.interpreter import Interpreter",
              "from tokenizers import Tokenizer", "",
              "tok = Tokenizer.from_file(\"tokenizer.json\")  # truncates and pads to the model's input length",
              f"it = Interpreter(model_path=\"{artifact}\"); it.allocate_tensors()",
              "ids = np.array([tok.encode(text).ids], np.int32)",
              f"it.set_tensor(it.get_input_details()[0][\"index\"], ids)  # shape [1, {seq_len}]",
              "it.invoke(); scores = it.get_tensor(it.get_output_details()[0][\"index\"])[0]",
              "label = open(\"labels.txt\").read().splitlines()[int(scores.argmax())]",
              "probs = np.exp(scores - scores.max()); probs /= probs.sum()  # the outputs are logits", "```"]
    if client_ready:
        return ["The file carries its tokenizer and labels: MediaPipe tokenizes the text itself.", "",
                "Android (Kotlin, MediaPipe Tasks):", "", *kotlin, "", "Python (MediaPipe Tasks):", "", *python,
                "", "Python without MediaPipe:", "", *litert]
    return ["The model takes token ids from edgeopt's tokenizer, which MediaPipe's regex tokenizer does not "
            "reproduce: tokenize in the app with the build's `tokenizer.json` (Hugging Face tokenizers; "
            "swift-transformers and transformers.js read it too), or rebuild with `tokenizer: {kind: regex}` to "
            "make the file MediaPipe-ready.", "", "Python:", "", *litert]


def _app_md(m: dict) -> list[str]:
    md = m.get("metadata")
    if md is None and m["recipe"]["convert"]["format"] != "tflite":
        return []
    lines = ["", "## In an app"]
    if md:
        lines += ["", f"Model metadata inside the .tflite files (written by {md['writer']}): name `{md['name']}`, "
                      f"version `{md['version']}`, input {md['input_tokenizer']}, associated files "
                      f"{', '.join(f'`{f}`' for f in md['associated_files'])} (min parser {md['min_parser_version']})."]
    for c in m.get("clients") or []:
        lines += ["", "**Client check:** " + client_line(c) + "."]
        if c.get("shown"):
            lines += ["", "| # | text | label | edgeopt | client | tie |", "|---|---|---|---|---|---|"]
            lines += [f"| {r['index']} | {r['text'][:60]!r} | {r['label']} | {r['edgeopt']} | {r['client']} | "
                      f"{'yes' if r['tie'] else 'no'} |" for r in c["shown"]]
    if task_for(m.get("task")).per_token:
        return lines + ["", *tagger_snippet(m["metrics"]["artifact"], m["tokenizer"]["seq_len"])]
    lines += [""] + snippets(m["metrics"]["artifact"], m["tokenizer"]["seq_len"], bool(md and md["client_ready"]))
    return lines + scores_md(m["metrics"].get("scores"))


def scores_md(sc: Optional[dict]) -> list[str]:
    """Why the file's scores are logits, measured on this build, and how an app turns them into probabilities."""
    if not sc or "examples" not in sc:
        return []
    return ["", f"**Scores are logits, not probabilities.** MediaPipe's `score`, LiteRT's output and ONNX Runtime's "
                f"are the model's raw outputs; {sc['to_probabilities']} gives probabilities (with MediaPipe, ask for "
                f"every label: max results -1). The file keeps logits because every parity check here reads them, and "
                f"a softmax squashes the int8 error they show: on {sc['examples']:,} test texts this file "
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
            "the entities. In Python:", "", "```python", "import numpy as np", "from tokenizers import Tokenizer",
            *fmt_run[:1], "from edgeopt.data.tokenizer import load_tokenizer  # or a port: tokenizer_golden.json", "",
            "tok = load_tokenizer(\".\")  # edgeopt_tokenizer.json: whitespace tokens; unknown ones by shape",
            "words = text.split()", f"ids = tok.encode_batch([text])  # [1, {seq_len}] int32", *fmt_run[1:],
            "tags = [open(\"labels.txt\").read().splitlines()[i] for i in scores.argmax(-1)[:len(words)]]", "```"]


def write_report(path: Path, manifest: dict) -> None:
    Path(path).write_text(render(manifest), encoding="utf-8")
