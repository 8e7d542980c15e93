"""`frontdesk eval FILE`: how well the desk routes, retrieves and answers labelled questions.

Formatting only: the measuring is app.core's `Evaluation`. The table goes to stdout, the
progress bar and notices to stderr; the report is always saved under <home>/evals/.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from app.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, IngestShown, ProgressBar
from app.core import Desk, Evaluation, compare_reports, dispatch, load_gate, load_report, printable, save_report, shortfalls

MISSES_SHOWN = 5
_DECIMALS = {"precision", "recall", "f1", "mrr", "token_f1"}  # shown as 0.000; other rates as percentages


def add_eval_arguments(command) -> None:
    command.add_argument("file", type=Path, help="labelled questions: JSONL (one object per line) or CSV with a header row")
    command.add_argument("--no-generate", action="store_true", help="measure routing and retrieval only (fast: no answers are written)")
    command.add_argument("--docs", type=Path, metavar="PATH",
                         help="ingest this docs folder first (incremental); expected files are relative to it")
    command.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    command.add_argument("--compare", type=Path, metavar="REPORT", help="show each measure's change against an earlier report")
    command.add_argument("--json", action="store_true", help="print the report (and the comparison) as JSON")
    command.add_argument("--gate", type=Path, metavar="FILE",
                         help="TOML of the least each measure may score ([minimum]); exit 1 when one falls below")


def cmd_eval(desk: Desk, args) -> int:
    evaluation = Evaluation(desk.settings, args.file, generate=not args.no_generate, docs=args.docs, limit=args.limit)
    before = load_report(args.compare) if args.compare else None  # a wrong path fails before the long part
    gate = load_gate(args.gate) if args.gate else None
    on_terminal = sys.stderr.isatty()
    if args.docs:
        _ingest(evaluation, ProgressBar() if on_terminal else None)
    report = evaluation.run(ProgressBar() if on_terminal else None)
    path = save_report(report, evaluation.report_path)
    comparison = compare_reports(before, report) if before else None
    if args.json:
        print(json.dumps({**report, "report_path": str(path), "compare": comparison}, ensure_ascii=False))
    else:
        print_report(report)
        if comparison:
            print_comparison(comparison, args.compare)
        print(f"\nreport saved: {path}")
    if not report["complete"]:
        return EXIT_INTERRUPTED  # stopped part way: measured what was answered
    return _gated(report, gate) if gate else EXIT_OK


def _gated(report: dict, gate: dict[str, float]) -> int:
    below = shortfalls(report, gate)
    for shortfall in below:
        print(f"below the gate: {shortfall.describe()}", file=sys.stderr)
    if below:
        return EXIT_PARTIAL
    print(f"gate passed: {len(gate)} measures at or above their minimum", file=sys.stderr)
    return EXIT_OK


# --- ingest --------------------------------------------------------------------------------

def _ingest(evaluation: Evaluation, progress: ProgressBar | None) -> None:
    shown = IngestShown(progress, verbose=False)
    for event in evaluation.ingest():
        dispatch(event, shown)
    if progress:
        progress.stop()
    print(shown.summary.describe(), file=sys.stderr)


# --- the table -----------------------------------------------------------------------------

def print_report(report: dict) -> None:
    mode = "routing and retrieval only (--no-generate)" if report["mode"] == "no-generate" else "answered through the pipeline"
    print(f"{Path(report['file']).name}: {report['questions']} questions · {mode} · {report['seconds']:.1f} s")
    docs = report["docs"]
    print(f"docs: {docs['chunks']} chunks in the store" + (f" · expected files relative to {docs['root']}" if docs["root"] else ""))
    for note in report["notes"]:
        print(f"note: {note}")
    _print_routing(report["routing"])
    _print_retrieval(report["retrieval"])
    if report["answers"]:
        _print_answers(report["answers"], report["cost"])
    _print_latency(report["latency"])
    _print_misses(report)
    if report["ledger"]:
        print(f"\nThe run's turns are in {report['ledger']} (not in your ledger).")


def _print_routing(routing: dict) -> None:
    for name, title in (("routes", "Routing (the router's decision)"), ("topics", "Topics"),
                        ("answerable", "Covered by the docs (the relevance floor)")):
        block = routing.get(name)
        if not block:
            continue
        print(f"\n{title}: accuracy {_percent(block['accuracy'])} of {block['n']} labelled")
        labels = [label for label, scores in block["labels"].items() if scores["expected"] or scores["predicted"]]
        width = max(len(label) for label in labels + ["expected"]) + 2
        print(f"  {'':<{width}}{'precision':>10}{'recall':>8}{'F1':>8}{'expected':>10}{'got':>6}")
        for label in labels:
            scores = block["labels"][label]
            print(f"  {label:<{width}}{_decimal(scores['precision']):>10}{_decimal(scores['recall']):>8}"
                  f"{_decimal(scores['f1']):>8}{scores['expected']:>10}{scores['predicted']:>6}")
        print("  confusion (rows: expected, columns: got):")
        print(f"  {'':<{width}}" + "".join(f"{label[:12]:>13}" for label in labels))
        for expected in (label for label in labels if block["labels"][label]["expected"]):
            print(f"  {expected:<{width}}" + "".join(f"{block['confusion'][expected][got]:>13}" for got in labels))


def _print_retrieval(retrieval: dict) -> None:
    levels = [(level, retrieval[level]) for level in ("file", "heading") if retrieval.get(level)]
    if not levels:
        return
    print(f"\nRetrieval (top {retrieval['depth']} passages)")
    print(f"  {'':<10}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}{'questions':>11}")
    for level, block in levels:
        print(f"  {level:<10}{_percent(block['hit@1']):>8}{_percent(block['hit@5']):>8}{_decimal(block['mrr']):>8}{block['n']:>11}")


def _print_answers(answers: dict, cost: dict) -> None:
    print("\nAnswers")
    tiers = answers["answered_by"]
    print("  answered by          " + " · ".join(f"{tier} {_percent(counted['share'])} ({counted['count']})"
                                                   for tier, counted in tiers.items()))
    grounding = answers["grounding"]
    by_tier = ", ".join(f"{tier} {_percent(rate)}" for tier, rate in grounding["by_tier"].items() if rate is not None)
    print(f"  grounding check      {_percent(grounding['pass_rate'])} of {grounding['checked']} answers passed"
          + (f" ({by_tier})" if by_tier else ""))
    facts = answers["facts"]
    if facts["questions"]:
        print(f"  fact recall          {_percent(facts['recall'])} ({facts['found']} of {facts['facts']} facts stated)")
        print(f"  right answers        {_percent(facts['correct'])} of {facts['questions']} (every fact, and an expected file cited)")
    if answers["cites_expected_file"] is not None:
        print(f"  cites expected file  {_percent(answers['cites_expected_file'])} of answers")
    if answers["token_f1"]["questions"]:
        print(f"  token F1             {_decimal(answers['token_f1']['mean'])} against {answers['token_f1']['questions']} reference answers")
    if answers["unanswerable_declined"] is not None:
        print(f"  not in the docs      {_percent(answers['unanswerable_declined'])} declined or handed off (no answer made up)")
    if answers["answerable_answered"] is not None:
        print(f"  in the docs          {_percent(answers['answerable_answered'])} answered")
    print(f"\nCost per 1,000 questions: ${cost['spend_per_1000_usd']:.4f} · all-frontier ${cost['all_frontier_per_1000_usd']:.4f}"
          f" · saved ${cost['savings_per_1000_usd']:.4f} ({_percent(cost['savings_share'])}; only answers that passed the check count)")


def _print_latency(latency: dict) -> None:
    stages = [(stage, block) for stage, block in latency.items() if block and block.get("n")]
    if not stages:
        return
    print(f"\nLatency (ms){'p50':>10}{'p95':>9}{'n':>7}")
    for stage, block in stages:
        name = stage.replace("_", " ")
        if block.get("batched"):
            print(f"  {name:<12}{_ms(block['mean_ms']):>8} mean per question, batched (--no-generate)")
        else:
            print(f"  {name:<12}{_ms(block['p50_ms']):>8}{_ms(block['p95_ms']):>9}{block['n']:>7}")


def _print_misses(report: dict) -> None:
    results = report["results"]
    misses = [
        ("Misrouted", [(r, f"expected {r['expected_route']}, routed {r['route']} (topic {r['topic']})")
                       for r in results if r["expected_route"] and r["route"] != r["expected_route"]]),
        ("Not retrieved", [(r, f"no passage of {', '.join(r['expected_files'])} in the top {report['retrieval']['depth']}")
                           for r in results if r["expected_files"] and r["file_rank"] is None and report["retrieval"]["file"]]),
        ("Facts missing", [(r, f"{r['facts'] - r['facts_found']} of {r['facts']} facts not stated ({r['answered_by']})")
                           for r in results if r["facts"] and r["answered_by"] is not None and r["facts_found"] < r["facts"]]),
    ]
    for title, rows in misses:
        if not rows:
            continue
        print(f"\n{title}: {len(rows)}" + (f" (first {MISSES_SHOWN}; all in the report)" if len(rows) > MISSES_SHOWN else ""))
        for row, why in rows[:MISSES_SHOWN]:
            print(f"  line {row['line']}: {why}: {printable(_clip(row['question'], 70))}")


def print_comparison(comparison: dict, before_path: Path) -> None:
    print(f"\nCompared with {before_path} ({comparison['before']}):")
    for warning in comparison["warnings"]:
        print(f"  warning: {warning}")
    width = max(len(change["metric"]) for change in comparison["changes"]) + 2
    print(f"  {'measure':<{width}}{'before':>10}{'after':>10}{'change':>12}")
    for change in comparison["changes"]:
        metric = change["metric"]
        verdict = {True: "  better", False: "  worse", None: ""}[change["better"]]
        print(f"  {metric:<{width}}{_value(metric, change['before']):>10}{_value(metric, change['after']):>10}"
              f"{_delta(metric, change['delta']):>12}{verdict}")


# --- numbers -------------------------------------------------------------------------------

def _kind(metric: str) -> str:
    last = metric.rsplit(".", 1)[-1]
    if last.endswith("_ms"):
        return "ms"
    if last.endswith("_usd"):
        return "usd"
    return "decimal" if last in _DECIMALS else "percent"


def _value(metric: str, value: float | None) -> str:
    kind = _kind(metric)
    return {"ms": _ms, "usd": lambda v: "–" if v is None else f"${v:.4f}", "decimal": _decimal, "percent": _percent}[kind](value)


def _delta(metric: str, delta: float | None) -> str:
    if delta is None:
        return "–"
    if delta == 0:
        return "0"
    kind = _kind(metric)
    if kind == "percent":
        return f"{delta * 100:+.1f} pts"
    if kind == "ms":
        return f"{delta:+.1f} ms"
    if kind == "usd":
        return f"{'+' if delta > 0 else '-'}${abs(delta):.4f}"
    return f"{delta:+.3f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _decimal(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
