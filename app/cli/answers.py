"""`frontdesk ask` and `frontdesk route`: formatting only; the pipeline lives in app.core."""
from __future__ import annotations

import json
import sys

from app.core.answer.pipeline import Answered, Drafting, DraftWithdrawn, Notice, Token
from app.core.ledger.turns import Turn


def cmd_ask(services, args) -> int:
    from app.cli.common import EXIT_OK, EXIT_PARTIAL, in_batches, questions_from, require_documents

    questions = questions_from(args, "ask")
    services.local.start()  # the model loads in its worker while this process loads the embedder
    require_documents(services)
    as_json = args.json or args.stdin
    failed = 0
    for batch in in_batches(questions, 1):
        turn, shown = _run(services, batch[0], stream=not as_json)
        failed += turn.outcome == "failed" or any(kind == "ledger-failed" for kind, _ in shown)
        if as_json:
            print(json.dumps(turn.to_json(), ensure_ascii=False), flush=True)
        else:
            print_turn(turn, already_shown=shown)
    return EXIT_PARTIAL if failed else EXIT_OK


def _run(services, question: str, stream: bool) -> tuple[Turn, set[str]]:
    """Drive the pipeline; when streaming, drafts go to stderr so stdout holds only checked answers.

    Returns the turn and the notices already shown on the way.
    """
    out = sys.stderr
    shown: set[tuple[str, str]] = set()  # (kind, text) of the notices shown
    for event in services.assistant.ask(question):
        if isinstance(event, Notice) and event.kind == "ledger-failed":
            out.write(f"warning: {event.text}\n")  # said even with --json: the turn is not logged
            shown.add((event.kind, event.text))
            continue
        if not stream:
            if isinstance(event, Answered):
                return event.turn, shown
            continue
        if isinstance(event, Drafting):
            out.write(f"\x1b[2m[{event.kind} draft: {event.model}]\x1b[0m\n" if out.isatty() else f"[{event.kind} draft: {event.model}]\n")
        elif isinstance(event, Token):
            out.write(event.text)
            out.flush()
        elif isinstance(event, DraftWithdrawn):
            if event.streamed:  # a model that failed before any text has no draft to withdraw
                out.write(f"\n[draft withdrawn: {event.reason}]\n")
        elif isinstance(event, Notice):
            out.write(f"\n[{event.text}]\n")
            shown.add((event.kind, event.text))
        elif isinstance(event, Answered):
            out.write("\n")
            return event.turn, shown
    raise AssertionError("the pipeline always ends with Answered")


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
        "extractive": "Quoted from the docs (not verified by the frontier model)",
        "refused": "Declined (outside customer support)",
        "handoff": "Not in the docs: offered a human handoff",
        "stopped": f"Stopped ({turn.model or 'no model'})",
        "failed": "Failed",
    }.get(turn.outcome, turn.outcome)
    check = turn.grounding.get("passed")
    verdict = "" if check is None else (" · check passed" if check else " · check FAILED")
    saved = turn.counterfactual_cost_usd - turn.cost_usd
    seconds = (turn.total_ms or 0) / 1000
    return (f"{who}{verdict} · {turn.reason} · cost ${turn.cost_usd:.6f} "
            f"(all-frontier ${turn.counterfactual_cost_usd:.6f}, saved ${saved:.6f}) · {seconds:.1f} s")


def cmd_route(services, args) -> int:
    from app.cli.common import EXIT_OK, in_batches, questions_from, require_documents

    questions = questions_from(args, "route")
    if args.docs:
        require_documents(services)
    as_json = args.json or args.stdin
    for batch in in_batches(questions, 512):
        top_scores = None
        vectors = None
        if args.docs:
            vectors = services.embedder.embed(batch)
            top_scores = [hits[0].score if hits else 0.0 for hits in services.store.query(vectors, 1)]
        for question, decision in zip(batch, services.router.decide_many(batch, top_scores, vectors=vectors)):
            if as_json:
                print(json.dumps({"question": question, **decision.to_json()}, ensure_ascii=False))
            else:
                print(f"{decision.route} ({decision.topic}): {decision.reason}")
    return EXIT_OK
