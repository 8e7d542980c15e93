"""`frontdesk logs`: recent turns, a cost summary, filters and CSV/JSON export."""
from __future__ import annotations

import sys

from app.cli.common import EXIT_OK, versus_frontier
from app.core import ANSWERED_BY, TIERS, Desk, Turn, TurnFilter, clean_input, parse_day, printable, write_turns


def add_logs_arguments(command) -> None:
    command.add_argument("--route", choices=["local", "frontier", "none"], help="only turns with this route")
    command.add_argument("--model", help="only turns whose model name contains this (e.g. claude, sonnet)")
    command.add_argument("--outcome", choices=["answered", "extractive", "refused", "handoff", "stopped", "failed"])
    command.add_argument("--answered-by", choices=list(ANSWERED_BY), help="only turns answered by this tier")
    command.add_argument("--since", metavar="DATE", help="from this date (YYYY-MM-DD, UTC), inclusive")
    command.add_argument("--until", metavar="DATE", help="through this date (YYYY-MM-DD, UTC), inclusive")
    command.add_argument("--search", metavar="TEXT", help="text in the question or answer")
    command.add_argument("--egress", action="store_true", help="only escalations: what left the machine (passages, redactions)")
    command.add_argument("-n", "--limit", type=int, default=None, help="turns to list (default 20; exports take all unless set)")
    output = command.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="export turns and the summary as JSON")
    output.add_argument("--csv", action="store_true", help="export turns as CSV")


def turn_filter(args) -> TurnFilter:
    # --model and --search reach SQLite, which can't take argv's undecodable bytes as they come.
    return TurnFilter(route=args.route, model=args.model and clean_input(args.model), outcome=args.outcome,
                      answered_by=args.answered_by,
                      since=parse_day(args.since, "--since date") if args.since else None,
                      until=parse_day(args.until, "--until date") if args.until else None,
                      text=args.search and clean_input(args.search), egress_only=args.egress)


def cmd_logs(desk: Desk, args) -> int:
    where = turn_filter(args)
    exporting = args.json or args.csv
    limit = args.limit if args.limit is not None else (None if exporting else 20)
    turns = desk.turns(where, limit=limit)
    summary = desk.summary(where)
    if exporting:
        write_turns(sys.stdout, turns, summary, "json" if args.json else "csv")
        return EXIT_OK
    if not turns:
        print("No turns match." if summary.turns == 0 and _filtered(args) else
              "No turns yet: ask a question (frontdesk ask \"…\", or in the app) and it is logged here.")
    elif args.egress:
        _print_egress(desk, turns)
    else:
        print(f"{'time':<19}  {'route':<8}  {'outcome':<10}  {'answered by':<11}  {'model':<28}  {'tokens':>11}  {'cost $':>9}  {'frontier $':>10}  {'ms':>7}  question")
        for turn in turns:
            print(f"{turn.created_at[:19]:<19}  {turn.route:<8}  {turn.outcome:<10}  {turn.answered_by:<11}  {_clip(turn.model, 28):<28}  "
                  f"{turn.input_tokens:>5}/{turn.output_tokens:<5}  {turn.cost_usd:>9.5f}  {turn.counterfactual_cost_usd:>10.5f}  "
                  f"{(turn.total_ms or 0):>7.0f}  {_clip(turn.question, 60)}")
    _print_tiers(summary)
    for use in desk.budget():  # spend against each cap that is set
        print(f"{use.describe()}{'  (used up: escalations stopped)' if use.exhausted else '  (over 80%: nearly used up)' if use.near else ''}")
    print(
        f"{summary.turns} turns · {summary.share_local:.0%} answered locally · spend ${summary.spend_usd:.4f} · "
        f"{versus_frontier(summary.savings_usd, summary.counterfactual_usd, 4, ' · ', summary.savings_pct)}"
    )
    return EXIT_OK


def _filtered(args) -> bool:
    return any((args.route, args.model, args.outcome, args.answered_by, args.since, args.until, args.search, args.egress))


TIER_NAMES = {"local-model": "local model", "docs-quote": "docs quote", "frontier": "frontier"}


def _print_tiers(summary) -> None:
    """Checked answers by tier: only an answer that passed the check counts, or saves anything."""
    print(f"\n{'checked answers by':<18}  {'answers':>7}  {'share':>6}  {'spend $':>9}  {'all-frontier $':>14}  {'saved $':>9}")
    for name in TIERS:
        tier = summary.tier(name)
        share = tier.answers / summary.turns if summary.turns else 0.0
        saved = f"{tier.savings_usd:.4f}" if tier.savings_usd >= 0 else f"{-tier.savings_usd:.4f} more"  # never negative
        print(f"{TIER_NAMES[name]:<18}  {tier.answers:>7}  {share:>6.0%}  {tier.spend_usd:>9.4f}  "
              f"{tier.counterfactual_usd:>14.4f}  {saved:>9}")


def _print_egress(desk: Desk, turns: list[Turn]) -> None:
    """Each escalation, and every passage that left the machine with its file and heading."""
    sources = {s["id"]: s for turn in turns for s in turn.sources}
    unknown = {i for turn in turns for i in turn.egress_passage_ids} - set(sources)
    if unknown:  # sent, but not among the passages the final answer cites: ask the store
        sources.update({p.id: p.to_json() for p in desk.passages(sorted(unknown))})
    for turn in turns:
        print(f"{turn.created_at[:19]}  #{turn.id}  {turn.model or '-'}  {len(turn.egress_passage_ids)} passage(s) sent, "
              f"{turn.redactions} redaction(s)  {_clip(turn.question, 50)}")
        for passage_id in turn.egress_passage_ids:
            source = sources.get(passage_id)
            where = printable(f"{source['file']} § {source['heading']}") if source else "(no longer in the store)"
            print(f"      {passage_id}  {where}")


def _clip(text: str, width: int) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
