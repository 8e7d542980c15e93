"""An evaluation report: built from a run's results, saved as JSON, compared with an earlier one.

A report holds the measures and every question's row, so a number that moved can be traced
to the questions that moved it. Measures with nothing to measure are null.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core.errors import FrontdeskError
from app.core.evaluation.metrics import classification, cost, latency, mean, ranking_scores, share
from app.core.labelled import ROUTES
from app.core.ledger.turns import ANSWERED_BY

REPORT_KIND = "frontdesk-eval"
REPORT_VERSION = 1


def report_path(home: Path, source: Path, when: datetime) -> Path:
    """<home>/evals/<UTC timestamp>-<file stem>.json, never overwriting an earlier report."""
    folder = home / "evals"
    stem = f"{when:%Y%m%d-%H%M%S}-{source.stem}"
    path, copy = folder / f"{stem}.json", 2
    while path.exists() or path.with_suffix(".ledger.sqlite3").exists():
        path, copy = folder / f"{stem}-{copy}.json", copy + 1
    return path


def build_report(run: Any, *, with_docs: bool, batch_retrieval_ms: float | None, seconds: float,
                 notes: list[str] = ()) -> dict:
    """The report of a finished run (an `Evaluation`)."""
    results, settings = run.results, run.desk.settings
    notes = list(notes)
    if not with_docs:
        notes.append("The docs store is empty: questions were routed without the relevance thresholds "
                      "and retrieval was not measured. Pass --docs PATH to load docs first.")
    report = {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "file": str(run.path),
        "created_at": run.created_at.isoformat(timespec="seconds"),
        "mode": "generate" if run.generate else "no-generate",
        "questions": len(results),
        "complete": run.complete,
        "limit": run.limit,
        "seconds": seconds,
        "docs": {"root": str(run.docs) if run.docs else None, "chunks": run.desk.doc_count()},
        "setup": {
            "top_k": settings.general.top_k,
            "routing_policy": str(run.policy.path),
            "local_model": run.desk.local.model_name if run.generate else None,
            "frontier_model": settings.frontier.model,
        },
        "routing": _routing(results, run.policy.topic_names),
        "retrieval": _retrieval(results, with_docs, run.depth),
        "answers": _answers(results) if run.generate else None,
        "cost": cost([(r.cost_usd, r.counterfactual_usd, r.grounding_passed is True) for r in results]) if run.generate else None,
        "latency": _latency(results, batch_retrieval_ms, run.generate),
        "ledger": str(run.ledger_path) if run.generate else None,
        "notes": notes,
        "results": [r.to_json() for r in results],
    }
    return _rounded(report)


def _routing(results: list, topic_names: list[str]) -> dict:
    routes = [(r.expected_route, r.route) for r in results if r.expected_route]
    topics = [(r.expected_topic, r.topic) for r in results if r.expected_topic]
    # The relevance floor: does the router see when the docs don't cover a question?
    covered = [(_yes(r.expected_answerable), _yes(r.answerable)) for r in results
               if r.expected_answerable is not None and r.answerable is not None]
    return {
        "routes": classification(routes, ROUTES) if routes else None,
        "topics": classification(topics, topic_names) if topics else None,
        "answerable": classification(covered, ("yes", "no")) if covered else None,
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _retrieval(results: list, with_docs: bool, depth: int) -> dict:
    files = [r.file_rank for r in results if r.expected_files]
    headings = [r.heading_rank for r in results if r.expected_heading]
    return {
        "depth": depth,
        "file": ranking_scores(files) if files and with_docs else None,
        "heading": ranking_scores(headings) if headings and with_docs else None,
    }


def _answers(results: list) -> dict:
    n = len(results)
    answered = [r for r in results if r.answered_by != "none"]
    tiers = Counter(r.answered_by for r in results)
    with_facts = [r for r in results if r.facts]
    with_files = [r for r in answered if r.cites_expected_file is not None]
    f1 = [r.token_f1 for r in results if r.token_f1 is not None]
    unanswerable = [r for r in results if r.expected_answerable is False]
    answerable = [r for r in results if r.expected_answerable is True]
    return {
        "answered_by": {tier: {"count": tiers[tier], "share": share(tiers[tier], n)} for tier in ANSWERED_BY},
        "outcomes": dict(Counter(r.outcome for r in results).most_common()),
        "grounding": {
            "checked": len(answered),
            "passed": sum(1 for r in answered if r.grounding_passed),
            "pass_rate": share(sum(1 for r in answered if r.grounding_passed), len(answered)),
            "by_tier": {tier: share(sum(1 for r in answered if r.answered_by == tier and r.grounding_passed), tiers[tier])
                        for tier in ANSWERED_BY[:3]},
        },
        "facts": {
            "questions": len(with_facts),
            "facts": sum(r.facts for r in with_facts),
            "found": sum(r.facts_found for r in with_facts),
            "recall": share(sum(r.facts_found for r in with_facts), sum(r.facts for r in with_facts)),
            # Every fact stated, and (when files are labelled) an expected file cited: the benchmarks' "right".
            "correct": share(sum(1 for r in with_facts if r.facts_found == r.facts and r.cites_expected_file is not False),
                             len(with_facts)),
        },
        "cites_expected_file": share(sum(1 for r in with_files if r.cites_expected_file), len(with_files)),
        "token_f1": {"questions": len(f1), "mean": mean(f1)},
        "unanswerable_declined": share(sum(1 for r in unanswerable if r.answered_by == "none"), len(unanswerable)),
        "answerable_answered": share(sum(1 for r in answerable if r.answered_by != "none"), len(answerable)),
    }


def _latency(results: list, batch_retrieval_ms: float | None, generated: bool) -> dict:
    if generated:
        retrieval = latency(r.retrieval_ms for r in results)
    elif batch_retrieval_ms is not None:
        # Batched: one embedding call for many questions, so only the mean per question is real.
        retrieval = {"n": len(results), "mean_ms": batch_retrieval_ms, "batched": True}
    else:
        retrieval = None
    return {
        "retrieval": retrieval,
        "routing": latency(r.routing_ms for r in results),
        "first_token": latency(r.first_token_ms for r in results) if generated else None,
        "total": latency(r.total_ms for r in results) if generated else None,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


# --- saving, loading, comparing ------------------------------------------------------------

def save_report(report: dict, path: Path) -> Path:
    # The measures indented, one question per line: a 5,000-row report stays easy to grep and diff.
    rows = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in report.get("results", []))
    text = json.dumps({**report, "results": "\0rows"}, ensure_ascii=False, indent=1)
    text = text.replace('"\\u0000rows"', f"[\n{rows}\n ]" if rows else "[]")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise FrontdeskError(f"Cannot save the report to {path}: {error.strerror or error}",
                             "Check that the data directory (--home) is writable.") from None
    return path


def load_report(path: str | Path) -> dict:
    path = Path(path).expanduser()
    fix = "Pass a report that `frontdesk eval` saved (it prints the path; they are under <home>/evals/)."
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrontdeskError(f"No such report: {path}", fix) from None
    except (OSError, UnicodeDecodeError) as error:
        raise FrontdeskError(f"Cannot read the report {path}: {error}", fix) from None
    except json.JSONDecodeError as error:
        raise FrontdeskError(f"{path} is not JSON ({error.msg}, line {error.lineno})", fix) from None
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        raise FrontdeskError(f"{path} is not a frontdesk eval report", fix)
    return report


# Measures where less is better; the all-frontier price is a yardstick, neither better nor worse.
_LOWER_IS_BETTER = ("latency.", "cost.spend_per_1000_usd")
_NEUTRAL = ("cost.all_frontier_per_1000_usd",)


def headline(report: dict) -> dict[str, float | None]:
    """The report's measures by dotted name, in reading order (what --compare compares)."""
    out: dict[str, float | None] = {}
    routing = report.get("routing") or {}
    for name in ("routes", "topics", "answerable"):
        block = routing.get(name)
        if block:
            out[f"{name}.accuracy"] = block["accuracy"]
            for label, scores in block["labels"].items():
                if not (scores["expected"] or scores["predicted"]):
                    continue  # a policy topic this file neither labels nor got: nothing measured
                for measure in ("precision", "recall", "f1"):
                    out[f"{name}.{label}.{measure}"] = scores[measure]
    for level in ("file", "heading"):
        block = (report.get("retrieval") or {}).get(level)
        if block:
            for measure in ("hit@1", "hit@5", "mrr"):
                out[f"retrieval.{level}.{measure}"] = block[measure]
    answers = report.get("answers")
    if answers:
        for tier, counted in answers["answered_by"].items():
            out[f"answers.{tier}.share"] = counted["share"]
        out["answers.grounding.pass_rate"] = answers["grounding"]["pass_rate"]
        out["answers.fact_recall"] = answers["facts"]["recall"]
        out["answers.right"] = answers["facts"]["correct"]
        out["answers.cites_expected_file"] = answers["cites_expected_file"]
        out["answers.token_f1"] = answers["token_f1"]["mean"]
        out["answers.unanswerable_declined"] = answers["unanswerable_declined"]
    if report.get("cost"):
        for measure in ("spend_per_1000_usd", "all_frontier_per_1000_usd", "savings_share"):
            out[f"cost.{measure}"] = report["cost"][measure]
    for stage, block in (report.get("latency") or {}).items():
        if block:
            for measure in ("p50_ms", "p95_ms", "mean_ms"):
                if measure in block:
                    out[f"latency.{stage}.{measure}"] = block[measure]
    return out


def compare(before: dict, after: dict) -> dict:
    """Each measure before and after, its change, and whether that is an improvement."""
    old, new = headline(before), headline(after)
    changes = []
    for metric in [*new, *(name for name in old if name not in new)]:
        was, now = old.get(metric), new.get(metric)
        delta = now - was if was is not None and now is not None else None
        changes.append({"metric": metric, "before": was, "after": now,
                        "delta": round(delta, 6) if delta is not None else None, "better": _better(metric, delta)})
    warnings = []
    if before.get("file") != after.get("file"):
        warnings.append(f"the reports are over different files ({before.get('file')} and {after.get('file')})")
    elif before.get("questions") != after.get("questions"):
        warnings.append(f"the reports cover different numbers of questions ({before.get('questions')} and {after.get('questions')})")
    if before.get("mode") != after.get("mode"):
        warnings.append(f"one run generated answers and the other did not ({before.get('mode')}, {after.get('mode')})")
    return {"before": before.get("created_at"), "after": after.get("created_at"), "changes": changes, "warnings": warnings}


def _better(metric: str, delta: float | None) -> bool | None:
    if not delta or metric.startswith(_NEUTRAL):
        return None
    return (delta < 0) if metric.startswith(_LOWER_IS_BETTER) else (delta > 0)
