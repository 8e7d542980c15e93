"""The pipeline: retrieve -> route -> generate -> check -> log. Yields events.

Front ends iterate `Assistant.ask(...)` and render the events; the final `Answered`
event carries the Turn exactly as the ledger stored it. The ledger write happens here,
once per turn, whatever happened: answered, replaced, refused, stopped or failed.

Fallbacks, in order of preference, so the desk keeps working when a seam fails:
- local answer fails the grounding check -> frontier (if usable) -> extractive quote
- frontier unusable (no key, over budget, unreachable, erroring) -> extractive quote
- no passage relevant enough -> say so and offer a human handoff (never answer from memory)
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Generator, Iterator, Union

from app.core.egress import is_local_only, redact
from app.core.embeddings import Embedder
from app.core.errors import FrontdeskError, ModelError, ProviderError
from app.core.extractive import extractive_answer
from app.core.injection import quarantine
from app.core.grounding import GroundingResult, check_grounding, cited_ids
from app.core.ledger import Ledger, Turn
from app.core.passage import Passage
from app.core.pricing import estimate_tokens, prices_for
from app.core.prompts import build_prompt
from app.core.providers.base import Provider, Usage
from app.core.router import RouteDecision, Router
from app.core.store import Store
from app.settings import Settings

LOCAL_PASSAGES = 3  # a small local model reads few passages well and many slowly
REFUSAL = (
    "Sorry, I can only help with questions about our product and your account. "
    "Is there anything about the service I can help you with?"
)
HANDOFF = (
    "I couldn't find this in our documentation, so I won't guess. "
    "Would you like me to hand your question to a human colleague?"
)


@dataclass(frozen=True)
class Retrieved:
    passages: list[Passage]


@dataclass(frozen=True)
class Routed:
    decision: RouteDecision


@dataclass(frozen=True)
class Drafting:
    """A model starts a draft; the Tokens that follow belong to it until it is kept or withdrawn."""
    model: str
    kind: str  # local | frontier


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class DraftWithdrawn:
    """The streamed draft must not be shown as an answer (failed the check, or its model failed).

    `streamed` is False when the model failed before sending any text: there is no draft to
    take back, only the placeholder, and the reason arrives as a Notice.
    """
    reason: str
    streamed: bool = True


@dataclass(frozen=True)
class Notice:
    """Something the user should know, e.g. the frontier is unavailable and why.

    `kind` lets a front end decide how loud to be: "frontier-unavailable" (no key, over
    budget), "frontier-failed" (the call failed: unreachable, errors after retries),
    "local-only" (nothing could be sent), "extractive" (the answer quotes the docs).
    """
    text: str
    kind: str = "info"


@dataclass(frozen=True)
class Answered:
    turn: Turn


Event = Union[Retrieved, Routed, Drafting, Token, DraftWithdrawn, Notice, Answered]


class _Stopped(Exception):
    pass


class Assistant:
    def __init__(self, settings: Settings, store: Store, embedder: Embedder, router: Router,
                 local: Provider, frontier, ledger: Ledger):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.router = router
        self.local = local
        self.frontier = frontier
        self.ledger = ledger

    def answer(self, question: str, **options) -> Turn:
        """Run the whole pipeline and return the recorded turn (no streaming)."""
        for event in self.ask(question, **options):
            if isinstance(event, Answered):
                return event.turn
        raise AssertionError("the pipeline always ends with Answered")

    def ask(self, question: str, conversation_id: str | None = None, stop: threading.Event | None = None,
            k: int | None = None) -> Iterator[Event]:
        turn = Turn(question=question.strip(), conversation_id=conversation_id or uuid.uuid4().hex[:12])
        run = _Run(self, turn, stop or threading.Event(), time.perf_counter())
        try:
            yield from run.execute(k or self.settings["top_k"])
        except _Stopped:
            turn.outcome = "stopped"
            turn.actions.append("stopped by the user")
        except GeneratorExit:  # the front end stopped listening: still one ledger row
            turn.outcome = "stopped"
            turn.actions.append("abandoned by the front end")
            raise
        except (FrontdeskError, ProviderError) as error:
            turn.outcome, turn.error = "failed", str(error)
        except Exception as error:  # the pipeline never dies on a third-party exception
            turn.outcome, turn.error = "failed", f"{type(error).__name__}: {error}"
        finally:
            run.finish()
        yield Answered(turn)


class _Run:
    """State of one turn while it runs; `finish` costs it and writes it to the ledger once."""

    def __init__(self, assistant: Assistant, turn: Turn, stop: threading.Event, started: float):
        self.a = assistant
        self.turn = turn
        self.stop = stop
        self.started = started
        self.local_usage = Usage()
        self.frontier_usage = Usage()
        self.frontier_called = False
        self.full_prompt_chars = 0
        self.recorded = False

    # --- the flow -----------------------------------------------------------------------

    def execute(self, k: int) -> Iterator[Event]:
        turn = self.turn
        if not turn.question:
            raise FrontdeskError("Empty question", "Type a question first.")
        vector = self.a.embedder.embed([turn.question])
        passages, held = quarantine(self.a.store.query(vector, k)[0])
        for passage, why in held:
            turn.actions.append(f"quarantined passage {passage.id} of {passage.file}: it {why}")
        turn.retrieval_ms = self._ms()
        turn.sources = [p.to_json() for p in passages]
        yield Retrieved(passages)

        top_score = passages[0].score if passages else 0.0
        decision = self.a.router.decide_many([turn.question], [top_score], vectors=vector)[0]
        turn.route, turn.topic, turn.reason = decision.route, decision.topic, decision.reason
        yield Routed(decision)

        if decision.topic == "out_of_scope":
            self._final("refused", REFUSAL, route="none", action="declined: outside customer support")
        elif not decision.answerable or not passages:
            self._final("handoff", HANDOFF, route="none", action=f"handoff: best passage score {top_score:.2f} below the relevance floor")
        elif decision.route == "local":
            yield from self._local_then_fallbacks(passages)
        else:
            yield from self._frontier_or_extractive(passages, why="routed to the frontier")

    def _local_then_fallbacks(self, passages: list[Passage]) -> Iterator[Event]:
        used = passages[:LOCAL_PASSAGES]
        prompt = build_prompt(self.turn.question, used)
        self.full_prompt_chars = len(prompt.system) + len(prompt.user)
        try:
            yield Drafting(self.a.local.model_name, "local")
            answer = yield from self._stream(self.a.local, prompt, self.local_usage)
        except (ModelError, ProviderError) as error:
            self.turn.error = str(error)
            yield DraftWithdrawn(f"The local model failed: {error.title}")
            yield from self._frontier_or_extractive(passages, why=f"local model failed: {error.title}")
            return
        self.turn.model = self.a.local.model_name
        check = check_grounding(answer, used, self.a.embedder)
        self.turn.grounding = check.to_json()
        if check.passed and cited_ids(answer, used):
            self._final("answered", answer, sources=used, action="local answer passed the grounding check")
            return
        # An answer that cites nothing is unchecked in substance ("I can't help with that"),
        # so it is not kept even when no single span in it is false.
        why = "local answer failed the grounding check: " + (_spans_text(check) if not check.passed else "it cites no passage")
        yield DraftWithdrawn(why)
        self.turn.actions.append(why)
        yield from self._frontier_or_extractive(passages, why="escalated after the local answer failed the check")

    def _frontier_or_extractive(self, passages: list[Passage], why: str) -> Iterator[Event]:
        unusable = self._frontier_unusable()
        if unusable:
            self.turn.error = self.turn.error or unusable
            yield Notice(unusable, "frontier-unavailable")
            yield from self._extractive(passages, f"frontier not used: {unusable}")
            return
        sendable = [p for p in passages if not is_local_only(p.file, self.a.settings["egress.local_only"])]
        if not sendable:
            yield Notice("Every relevant passage is marked local-only, so nothing was sent to the frontier model.", "local-only")
            yield from self._extractive(passages, "frontier not used: all passages are local-only")
            return
        sent, redactions = self._redacted(sendable)
        question = redact(self.turn.question, _published_emails(sendable)) if self.a.settings["egress.redact"] else None
        prompt = build_prompt(question.text if question else self.turn.question, sent)
        self.full_prompt_chars = len(prompt.system) + len(prompt.user)
        self.turn.egress_passage_ids = [p.id for p in sendable]
        self.turn.redactions = redactions + (question.count if question else 0)
        self.turn.actions.append(why)
        self.frontier_called = True
        try:
            yield Drafting(self.a.frontier.model_name, "frontier")
            answer = yield from self._stream(self.a.frontier, prompt, self.frontier_usage)
        except ProviderError as error:
            self.turn.error = str(error)
            yield DraftWithdrawn(f"{error.title}")
            yield Notice(f"{error.title} Answering from your docs instead.")
            yield from self._extractive(passages, f"frontier failed: {error.title}")
            return
        self.turn.route, self.turn.model = "frontier", self.a.frontier.model_name
        check = check_grounding(answer, sendable, self.a.embedder)
        self.turn.grounding = check.to_json()
        if check.passed:
            self._final("answered", answer, sources=sendable, action="frontier answer passed the grounding check")
        else:
            # Shown, but never as fact: every unsupported span is marked in the text itself.
            self._final("answered", mark_unsupported(answer, check), sources=sendable,
                        action="frontier answer failed the check; unsupported spans marked: " + _spans_text(check))

    def _extractive(self, passages: list[Passage], action: str) -> Iterator[Event]:
        used = passages[:LOCAL_PASSAGES]
        answer = extractive_answer(self.turn.question, used, self.a.embedder)
        self.turn.model = "docs (extractive)"  # the docs wrote this answer, whatever drafted before
        # Verbatim quotes of the passages: supported by construction. A failed draft's
        # check is kept in `actions`; `grounding` describes the answer actually shown.
        self.turn.grounding = {"passed": True, "unsupported": [], "method": "extractive: quoted verbatim from the passages"}
        yield Notice("Quoted from your docs; not verified by the frontier model.", "extractive")
        self._final("extractive", answer, sources=used, action=action)

    # --- pieces -------------------------------------------------------------------------

    def _stream(self, provider: Provider, prompt, usage: Usage) -> Generator[Event, None, str]:
        if self.stop.is_set():  # stopped while retrieving or between drafts
            raise _Stopped
        pieces: list[str] = []
        stream = provider.generate(prompt, usage)
        try:
            for text in stream:
                if self.turn.first_token_ms is None:
                    self.turn.first_token_ms = self._ms()
                pieces.append(text)
                yield Token(text)
                if self.stop.is_set():
                    self.turn.answer = "".join(pieces)
                    raise _Stopped
        finally:
            stream.close()
        return "".join(pieces).strip()

    def _frontier_unusable(self) -> str | None:
        if not self.a.frontier.available:
            return self.a.frontier.unavailable_reason()
        budget = self.a.settings["frontier.monthly_budget_usd"]
        if budget > 0:
            month_start = datetime.now(timezone.utc).strftime("%Y-%m-01")
            spent = self.a.ledger.spend_since(month_start)
            if spent >= budget:
                return (f"The monthly frontier budget is used up (${spent:.2f} of ${budget:.2f}): "
                        "raise frontier.monthly_budget_usd in frontdesk.toml to escalate again.")
        return None

    def _redacted(self, passages: list[Passage]) -> tuple[list[Passage], int]:
        if not self.a.settings["egress.redact"]:
            return passages, 0
        keep = _published_emails(passages)
        out, count = [], 0
        for passage in passages:
            result = redact(passage.text, keep)
            count += result.count
            out.append(_with_text(passage, result.text))
        return out, count

    def _final(self, outcome: str, answer: str, *, sources: list[Passage] | None = None, route: str | None = None, action: str) -> None:
        self.turn.outcome, self.turn.answer = outcome, answer
        if route:
            self.turn.route = route
        if sources is not None:
            self.turn.sources = [p.to_json() for p in sources]
        self.turn.actions.append(action)

    def _ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def finish(self) -> None:
        if self.recorded:
            return
        self.recorded = True
        turn, settings = self.turn, self.a.settings
        turn.total_ms = self._ms()
        turn.input_tokens = self.local_usage.input_tokens + self.frontier_usage.input_tokens
        turn.output_tokens = self.local_usage.output_tokens + self.frontier_usage.output_tokens
        turn.cost_usd = round(prices_for(settings, "local").cost(self.local_usage) + prices_for(settings, "frontier").cost(self.frontier_usage), 8)
        # What an all-frontier desk would have paid for this question: the frontier call
        # itself when there was one, else the same prompt and answer at frontier prices.
        counterfactual_usage = self.frontier_usage if self.frontier_called else Usage(
            estimate_tokens("x" * self.full_prompt_chars) if self.full_prompt_chars else estimate_tokens(turn.question),
            estimate_tokens(turn.answer),
        )
        turn.counterfactual_cost_usd = round(prices_for(settings, "frontier").cost(counterfactual_usage), 8)
        self.a.ledger.record(turn)


def mark_unsupported(answer: str, check: GroundingResult) -> str:
    """Wrap each unsupported span as ⟦unverified: …⟧ so no unsupported claim reads as fact."""
    out, position = [], 0
    for span in sorted(check.unsupported, key=lambda s: s.start):
        if span.start < position or span.kind == "sentence":
            continue
        out += [answer[position:span.start], f"⟦unverified: {answer[span.start:span.end]}⟧"]
        position = span.end
    out.append(answer[position:])
    marked = "".join(out)
    sentences = [s for s in check.unsupported if s.kind == "sentence"]
    if sentences:
        marked += "\n\n⚠ Not found in the docs: " + "; ".join(f"“{s.text.strip()}”" for s in sentences)
    return marked


def _spans_text(check: GroundingResult) -> str:
    return ", ".join(f"{s.kind} “{s.text.strip()[:60]}”" for s in check.unsupported[:5]) or "no spans"


def _published_emails(passages: list[Passage]) -> set[str]:
    """Role addresses the docs publish (support@, billing@ ...): not personal, so not redacted."""
    roles = ("support", "help", "billing", "sales", "security", "privacy", "legal", "info", "contact", "noreply", "no-reply", "abuse", "dpo")
    found = set()
    for passage in passages:
        for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", passage.text):
            if email.split("@")[0].lower() in roles:
                found.add(email)
    return found


def _with_text(passage: Passage, text: str) -> Passage:
    return replace(passage, text=text)
