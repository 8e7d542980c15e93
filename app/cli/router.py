"""`frontdesk router fit FILE`: calibrate the routing policy on the user's labelled questions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import EXIT_OK
from app.core import FitTarget, fit_router


def add_router_arguments(command: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = command.add_subparsers(dest="router_action", metavar="ACTION", required=True)
    fit = actions.add_parser(
        "fit", parents=[common], help="fit the routing policy to labelled questions, write it as a new file and use it",
        description="Adds the file's labelled questions to the policy's topics as examples and chooses the escalation "
                    "topics' min_score and the keyword bonus to meet a target; prints escalation precision, recall and "
                    "frontier share before and after on a held-out fifth of the file; writes a new policy under "
                    "<home>/routing/ and points routing.policy at it (the shipped policy is never changed).",
    )
    fit.add_argument("file", type=Path, help="labelled questions, JSONL or CSV: question, route (local, frontier or a topic "
                                             "such as pricing, api, support, out_of_scope), optional source")
    fit.add_argument("--min-recall", type=_share, metavar="R", default=None,
                     help="escalate at least this share of the questions that should escalate, e.g. 0.95")
    fit.add_argument("--max-frontier-share", type=_share, metavar="S", default=None,
                     help="send at most this share of all questions to the frontier model, e.g. 0.25")
    fit.add_argument("--seed", type=int, default=13, help="seed of the held-out and tuning splits (default 13)")


def _share(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {raw!r} (write 95% as 0.95)")
    return value


def cmd_router(desk, args) -> int:
    target = FitTarget(args.min_recall, args.max_frontier_share)
    print(f"Fitting the routing policy on {args.file} ({target.describe()})…", file=sys.stderr, flush=True)
    report = fit_router(desk.settings, args.file, target, seed=args.seed, progress=_progress if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    before, after = report.before, report.after
    print(f"{report.rows:,} questions from {report.file.name}: {report.fit_rows:,} to fit on, {report.held_out_rows:,} held out "
          "(stratified by label; identical questions on one side).")
    tuned = report.tuning
    print(f"Target: {report.target.describe()}: met on the tuning rows (recall {tuned.metrics.recall:.3f}, "
          f"frontier share {tuned.metrics.frontier_share:.1%}).")
    changes = [f"keyword_bonus {report.previous['keyword_bonus']:g} -> {tuned.keyword_bonus:g}"]
    changes += [f"{name}.min_score {report.previous[name]:g} -> {floor:g}" for name, floor in tuned.min_scores.items()]
    print("Tuned: " + ", ".join(changes) + ".")

    print(f"\nHeld-out questions ({report.held_out_rows:,}, not used to fit): before = {report.starting_policy.name}, "
          "after = the fitted thresholds with the fit rows as examples.")
    print(f"{'':<24}{'before':>9}{'after':>9}")
    for name, attr in (("escalation precision", "precision"), ("escalation recall", "recall"), ("escalation F1", "f1")):
        print(f"{name:<24}{getattr(before, attr):>9.3f}{getattr(after, attr):>9.3f}")
    print(f"{'frontier share':<24}{before.frontier_share:>9.1%}{after.frontier_share:>9.1%}")
    print(f"\n{'sent to the frontier, by label':<32}{'n':>7}{'before':>9}{'after':>9}   topic recall before -> after")
    for label, stats in sorted(after.by_label.items(), key=lambda item: -item[1].n):
        was = before.by_label[label]
        recall = f"   {was.recall:.3f} -> {stats.recall:.3f}" if stats.recall is not None and was.recall is not None else ""
        print(f"{label:<32}{stats.n:>7,}{was.escalated:>9.1%}{stats.escalated:>9.1%}{recall}")
    if report.target.min_recall is not None or report.target.max_frontier_share is not None:
        verdict = "met" if after.meets(report.target) else (
            f"missed (recall {after.recall:.3f}, frontier share {after.frontier_share:.1%}; it was met on the tuning rows, "
            "and more labelled rows bring the two closer)")
        print(f"Target on the held-out rows: {verdict}.")
    if report.sources:
        print("\nHeld out by source (fitted on the other sources, tested on this one): does the fit carry over to new data?")
        print(f"{'source':<24}{'n':>7}   {'precision':>16}   {'recall':>16}   {'F1':>16}   {'frontier share':>16}")
        for check in report.sources:
            b, a = check.before, check.after
            print(f"{check.source:<24}{len(check.rows):>7,}   {b.precision:>7.3f} -> {a.precision:.3f}   {b.recall:>7.3f} -> {a.recall:.3f}"
                  f"   {b.f1:>7.3f} -> {a.f1:.3f}   {b.frontier_share:>7.1%} -> {a.frontier_share:.1%}")

    print(f"\nWrote {report.policy_file} ({report.examples:,} labelled examples in {report.examples_file.name}, their vectors beside it; "
          f"the policy uses every labelled row, held-out ones too).")
    print(f"routing.policy now points at it in {report.config_file}{' (created)' if report.config_created else ''}: "
          "`frontdesk route` and the app use it from their next start. The shipped policy is unchanged.")
    print(f"Fitted in {_duration(report.seconds)} (embedding the questions: {_duration(report.embed_seconds)}).")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _progress(done: int, total: int) -> None:
    print(f"\rembedding questions: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
