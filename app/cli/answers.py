"""`frontdesk ask` and `frontdesk route`: formatting only; the pipeline lives in app.core."""
from __future__ import annotations

import json
import sys

from app.cli.common import EXIT_OK, EXIT_PARTIAL, in_batches, questions_from, require_documents, versus_frontier
from app.core import Desk, Turn, dispatch


def cmd_ask(desk: Desk, args) -> int:
    questions = questions_from(args, "ask")
    desk.start_local_model()  # the model loads in its worker while this process loads the embedder
    require_documents(desk)
    as_json = args.json or args.stdin
    failed = 0
    told: set[tuple[str, str]] = set()  # notices already said in this run: each is said once
    for question in questions:
        shown = _Shown(stream=not as_json, told=told)
        events = desk.ask(question)
        try:
            for event in events:
                dispatch(event, shown)
        except KeyboardInterrupt as interrupt:  # Ctrl-C or a signal while this loop, not the
            events.throw(interrupt)  # pipeline, ran: the pipeline still records the stop, then re-raises
        turn = shown.turn
        failed += turn.outcome == "failed" or shown.ledger_failed
        if as_json:
            print(json.dumps(turn.to_json(), ensure_ascii=False), flush=True)
        else:
            print_turn(turn, already_shown=told)
    warn_about_budget(desk)
    return EXIT_PARTIAL if failed else EXIT_OK


def warn_about_budget(desk: Desk) -> None:
    """From 80% of a frontier cap, say so on stderr (at the cap, escalations stop)."""
    for use in desk.budget():
        if use.near:
            verdict = "used up: escalations are answered from your docs" if use.exhausted else "nearly used"
            print(f"warning: {use.describe()}, {verdict} (raise {use.setting} to change it)", file=sys.stderr)


class _Shown:
    """Renders one turn's events. When streaming, drafts go to stderr so stdout holds only
    checked answers. Notices go to stderr once per run (`told`, shared by the run's turns):
    a paused Claude or a missing key is said once, not for every question of a batch."""

    def __init__(self, stream: bool, told: set[tuple[str, str]]):
        self.stream, self.out, self.told = stream, sys.stderr, told
        self.ledger_failed = False
        self.pending_label = ""
        self.turn: Turn | None = None

    def on_drafting(self, event) -> None:
        # Said with the first token: a model that fails to load or start sends none, and no
        # "[local draft: …]" header then announces a draft that never comes.
        self.pending_label = f"[{event.kind} draft: {event.model}]"

    def on_token(self, event) -> None:
        if not self.stream:
            return
        if self.pending_label:
            label, self.pending_label = self.pending_label, ""
            self.out.write(f"\x1b[2m{label}\x1b[0m\n" if self.out.isatty() else f"{label}\n")
        self.out.write(event.text)
        self.out.flush()

    def on_draft_withdrawn(self, event) -> None:
        if self.stream and event.streamed:  # a model that failed before any text has no draft to withdraw
            self.out.write(f"\n[draft withdrawn: {event.reason}]\n")

    def on_notice(self, event) -> None:
        if event.kind == "ledger-failed":
            self.ledger_failed = True
            self.out.write(f"warning: {event.text}\n")  # said every time: this turn is not logged
        elif (event.kind, event.text) in self.told:
            return
        elif self.stream:
            self.out.write(f"\n[{event.text}]\n")
        elif event.kind in ("frontier-unavailable", "frontier-failed"):  # --json: why Claude wasn't used
            self.out.write(f"note: {event.text}\n")
        else:
            return
        self.told.add((event.kind, event.text))

    def on_answered(self, event) -> None:
        if self.stream:
            self.out.write("\n")
        self.turn = event.turn


def print_turn(turn: Turn, already_shown: set[tuple[str, str]] = frozenset()) -> None:
    print(turn.answer)
    if turn.sources and turn.outcome not in ("refused", "handoff"):  # those answers cite nothing
        print("\nSources:")
        for number, source in enumerate(turn.sources, 1):
            heading = f" § {source['heading']}" if source.get("heading") else ""
            print(f"  [{number}] {source['file']}{heading}")
    print("\n" + describe(turn))
    if turn.error and not any(turn.error.split("\n")[0] in text for _, text in already_shown):
        print(f"note: {turn.error}", file=sys.stderr)


def describe(turn: Turn) -> str:
    """One line: who answered, why, what it cost, how long it took."""
    who = {
        "answered": f"Answered by {turn.model} ({turn.route})",
        # A confident quote is the answer; one standing in for the frontier says so (its note).
        "extractive": next((n["text"].rstrip(".") for n in turn.notes if n["kind"] == "extractive"), "Quoted from your docs"),
        "refused": "Declined (outside customer support)",
        "handoff": "Not in the docs: offered a human handoff",
        "stopped": f"Stopped ({turn.model or 'no model'})",
        "failed": "Failed",
    }.get(turn.outcome, turn.outcome)
    check = turn.grounding.get("passed")
    verdict = "" if check is None else (" · check passed" if check else " · check FAILED")
    versus = versus_frontier(turn.counterfactual_cost_usd - turn.cost_usd, turn.counterfactual_cost_usd, 6, ", ")
    seconds = (turn.total_ms or 0) / 1000
    return f"{who}{verdict} · {turn.reason} · cost ${turn.cost_usd:.6f} ({versus}) · {seconds:.1f} s"


def cmd_route(desk: Desk, args) -> int:
    questions = questions_from(args, "route")
    if args.docs:
        require_documents(desk)
    as_json = args.json or args.stdin
    for batch in in_batches(questions, 512):
        for question, decision in zip(batch, desk.route(batch, with_docs=args.docs)):
            if as_json:
                print(json.dumps({"question": question, **decision.to_json()}, ensure_ascii=False))
            else:
                print(f"{decision.route} ({decision.topic}): {decision.reason}")
    return EXIT_OK
