"""The pipeline: retrieve -> route -> generate -> check -> log. Yields events.

Front ends iterate `Assistant.ask(...)` and render the events; the final `Answered`
event carries the Turn exactly as the ledger stored it. The ledger write happens here,
once per turn, whatever happened: answered, replaced, refused, stopped or failed.

Local when it can, frontier when it must. A question routed to the local side is answered by:
1. the local model, when its draft is whole (not cut off at local.max_tokens), passes the
   grounding check (each sentence attributed to a passage; the answer is shown with those
   citations) and answers the question asked
   (`relevance`: faithful to a passage about changing a password is no answer to "how do I
   reset a forgotten one"), with the docs quote's lines the draft leaves out beneath it,
   verbatim and cited, when the quote is close enough to the question to add to it;
2. else a verbatim docs quote, when the quote is confident (`relevance.quote_relevance`);
3. else the frontier model, when it is usable; else the quote anyway, marked as such.
Frontier-routed questions go to the frontier, and to the docs quote when it is unusable (no
key, over budget, unreachable, erroring). No passage relevant enough: say so and offer a
human handoff (never answer from memory). Every turn records `answered_by`: local-model,
docs-quote, frontier or none.
"""
from __future__ import annotations

import re
import threading
import time
import unicodedata
import uuid
from dataclasses import replace
from typing import Generator, Iterator

from app.core.answer.budget import budget_use
from app.core.answer.costing import Spend, cost_turn
from app.core.answer.events import Answered, DraftWithdrawn, Drafting, Notice, Retrieved, Routed, Token
from app.core.answer.notes import (CONFIDENT_QUOTE_NOTE, CUT_OFF_NOTE, EXTRACTIVE_NOTE, OFF_QUESTION_NOTE, closing_notes,
                                   failed_check_note, part_way_note, withdrawn)
from app.core.answer.extractive import Quote, opens_mid_procedure
from app.core.answer.prompts import build_local_prompt, build_prompt
from app.core.answer.reading import Reading
from app.core.answer.router import Router
from app.core.docs.retrieval import Retriever
from app.core.errors import FrontdeskError, LedgerError, ModelError, ProviderError
from app.core.events import Event
from app.core.ledger.turns import Ledger, Turn
from app.core.passage import Passage
from app.core.providers.base import Provider, Usage
from app.core.settings import Settings
from app.core.text import with_docs_lines
from app.core.trust.egress import is_local_only, published_emails, redact
from app.core.trust.grounding import GroundingResult, check_grounding, mark_unsupported, with_citations
from app.core.trust.injection import quarantine
from app.core.trust.relevance import draft_relevance
from app.core.trust.secrets import scrub

REFUSAL = (
    "Sorry, I can only help with questions about our product and your account. "
    "Is there anything about the service I can help you with?"
)
HANDOFF = (
    "I couldn't find this in our documentation, so I won't guess. "
    "Would you like me to hand your question to a human colleague?"
)


# "Can I talk to a human?", "real person please", "get me an agent": the customer wants a person.
ASKS_FOR_A_HUMAN = re.compile(
    r"\b(?:a|an|real|live)\s+(?:human|agent|representative|operator)\b|\b(?:real|live)\s+person\b"
    r"|\bhuman\s+(?:agent|being)\b"
    r"|\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:someone|somebody|a\s+person|support\s+staff)\b", re.IGNORECASE)


class _Stopped(Exception):
    pass


class Assistant:
    def __init__(self, settings: Settings, retriever: Retriever, router: Router,
                 local: Provider, frontier: Provider, ledger: Ledger):
        self.settings = settings
        self.retriever = retriever
        self.store = retriever.store
        self.embedder = retriever.embedder
        self.router = router
        self.local = local
        self.frontier = frontier
        self.ledger = ledger
        self.reading = Reading(self.store, self.embedder)

    def retrieve(self, question: str, k: int) -> tuple[list[Passage], list[tuple[Passage, str]], object, float]:
        """(passages best first, quarantined passages with why, the question's vector, the best
        cosine of any passage: what the router's relevance thresholds were calibrated on, since
        the fused first passage can be less similar than another)."""
        found = self.retriever.find([question], k)
        vector, best_score, ranked = found.vectors, found.best_scores[0], found.passages[0]
        if not ranked and self.store.count() == 0:  # counted only when nothing came back
            raise FrontdeskError("No docs loaded yet, so there is nothing to answer from.",
                                 "Load a docs folder first: F3 in the app, or `frontdesk ingest PATH`.")
        passages, held = quarantine(ranked)
        if held:  # a quarantined passage's similarity is no evidence the docs answer the question
            best_score = max((p.score for p in passages), default=0.0)
        return passages, held, vector, best_score

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
        ledger_problem = None
        try:
            yield from run.execute(k or self.settings.general.top_k)
        except _Stopped:
            turn.outcome = "stopped"
            turn.actions.append("stopped by the user")
        except GeneratorExit:  # the front end stopped listening: still one ledger row
            turn.outcome = "stopped"
            turn.actions.append("abandoned by the front end")
            raise
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or a front end's SIGTERM/SIGHUP: record, then stop
            turn.outcome = "stopped"
            turn.actions.append(f"interrupted ({str(interrupt) or 'Ctrl-C'})")
            raise
        except (FrontdeskError, ProviderError) as error:
            turn.outcome, turn.error = "failed", str(error)
        except Exception as error:  # the pipeline never dies on a third-party exception
            turn.outcome, turn.error = "failed", f"{type(error).__name__}: {error}"
        finally:
            ledger_problem = run.finish()
        if ledger_problem:  # the answer still reaches the user; the ledger's trouble is said aloud
            yield Notice(ledger_problem, "ledger-failed")
        yield Answered(turn)


class _Run:
    """State of one turn while it runs; `finish` costs it (`costing`) and writes it to the ledger once."""

    def __init__(self, assistant: Assistant, turn: Turn, stop: threading.Event, started: float):
        self.a = assistant
        self.turn = turn
        self.stop = stop
        self.started = started
        self.spend = Spend()
        self.request_started = False
        self.draft_streamed = False
        self.partial = ""
        self.recorded = False
        self.notes: list[dict] = []  # for the user, in order; finish() adds the error's and the quote's
        self.quote_note = EXTRACTIVE_NOTE  # what a quote shown as the answer says it is

    # --- the flow -----------------------------------------------------------------------

    def execute(self, k: int) -> Iterator[Event]:
        turn = self.turn
        if not turn.question:
            raise FrontdeskError("Empty question", "Type a question first.")
        query = unicodedata.normalize("NFKC", turn.question)
        passages, held, vector, top_score = self.a.retrieve(turn.question, k)
        for passage, why in held:
            turn.actions.append(f"quarantined passage {passage.id} of {passage.file}: it {why}")
        turn.retrieval_ms = self._ms()
        turn.sources = [p.to_json() for p in passages]
        yield Retrieved(passages)

        decision = self.a.router.decide_many([query], [top_score], vectors=vector)[0]
        turn.route, turn.topic, turn.reason = decision.route, decision.topic, decision.reason
        yield Routed(decision)

        if ASKS_FOR_A_HUMAN.search(query):
            self._needs_human("the customer asked for a human")
        if decision.topic == "out_of_scope":
            self._final("refused", REFUSAL, route="none", action="declined: outside customer support")
        elif not decision.answerable or not passages:
            self._final("handoff", HANDOFF, route="none", action=f"handoff: best passage score {top_score:.2f} below the relevance floor")
            self._needs_human("no relevant source in the docs")
        elif decision.route == "local":
            yield from self._local_then_fallbacks(passages)
        else:
            yield from self._frontier_or_extractive(passages, why="routed to the frontier")

    def _local_then_fallbacks(self, passages: list[Passage]) -> Iterator[Event]:
        used = self.a.reading.local_passages(passages)
        prompt = build_local_prompt(self.turn.question, used)
        self.spend.prompt_chars = len(prompt.system) + len(prompt.user)
        if not self.a.local.available:  # e.g. no model file: say why, and draft nothing
            self.turn.error = self.a.local.unavailable_reason() or "The local model is unavailable."
            title = self.turn.error.split("\n", 1)[0]
            yield from self._quote_or_escalate(passages, used, why=f"local model unavailable: {title}")
            return
        self.turn.model = self.a.local.model_name  # a stopped turn still says whose draft it was
        try:
            yield Drafting(self.a.local.model_name, "local")
            answer = yield from self._stream(self.a.local, prompt, self.spend.local)
        except (ModelError, ProviderError) as error:
            self.turn.error = str(error)
            yield withdrawn(f"The local model failed: {error.title}", streamed=self.draft_streamed)
            yield from self._quote_or_escalate(passages, used, why=f"local model failed: {error.title}")
            return
        # A procedure cut off at step 4, or begun there, reads as whole and passes the check
        # sentence by sentence ("my app can't send emails over SMTP": steps 4 to 6 of a port
        # test); the docs quote answers instead, from step 1 when its passages hold it.
        skipped_to = opens_mid_procedure(answer)
        if self.spend.local.hit_limit or skipped_to:
            why, note = ((f"local answer cut off at its length limit (local.max_tokens = {self.a.settings.local.max_tokens})",
                          CUT_OFF_NOTE) if self.spend.local.hit_limit else
                         (f"local answer starts a numbered procedure at step {skipped_to}, leaving out the steps before it",
                          part_way_note(skipped_to)))
            yield self._withdraw_draft(why, note)
            yield from self._quote_or_escalate(passages, used, why=f"escalated: {why}")
            return
        check = check_grounding(answer, used, self.a.embedder)
        self.turn.grounding = check.to_json()
        supporting = list(check.supporting)
        if check.passed and supporting:
            # Faithful is not right: the draft must also answer the question asked.
            relevance = draft_relevance(self.turn.question, answer, [used[i] for i in supporting], self.a.embedder)
            if relevance.ok:
                self._final("answered", with_citations(answer, check), sources=used, answered_by="local-model",
                            action=f"local answer passed the grounding check; {relevance.why}")
                self._add_docs_lines(used)
                return
            yield self._withdraw_draft(f"local answer does not answer the question: {relevance.why}", OFF_QUESTION_NOTE)
        else:
            # An answer resting on no passage is unchecked in substance ("I can't help with that"),
            # so it is not kept even when no single span in it is false.
            why = "local answer failed the grounding check: " + (_spans_text(check) if not check.passed else "it rests on no passage")
            yield self._withdraw_draft(why, failed_check_note(check))
        yield from self._quote_or_escalate(passages, used, why="escalated after the local answer failed the check")

    def _withdraw_draft(self, why: str, note: str) -> DraftWithdrawn:
        """Take back a streamed local draft: `why` goes in the turn's actions, `note` (one line)
        under the answer, live and when the turn is read back from the ledger."""
        self.turn.actions.append(why)
        self._note("draft-withdrawn", note)
        return withdrawn(why, note=note)

    def _add_docs_lines(self, used: list[Passage]) -> None:
        """Beneath a kept draft, the docs quote's lines the draft leaves out, when the quote is
        close enough to the question to add to an answer (a lower bar than answering alone). A
        small model's draft is often one true sentence of a longer answer ("no SMS codes",
        without "use an authenticator app"); the docs' own words carry the rest, verbatim and cited.
        They come from the passages the draft read, `used` (why: extractive.QUOTE_PASSAGES)."""
        quote, confidence = self.a.reading.quote_from(self.turn.question, used, as_lines=True)
        lines = quote.lines_beyond(self.turn.answer) if confidence.ok else []
        if lines:
            self.turn.answer = with_docs_lines(self.turn.answer, lines)
            self.turn.actions.append(f"{len(lines)} quoted docs line(s) the draft leaves out added beneath it; {confidence.why}")
        else:
            self.turn.actions.append(f"no docs lines added: {confidence.why if not confidence.ok else 'the draft says all the docs quote says'}")

    def _quote_or_escalate(self, passages: list[Passage], used: list[Passage], why: str) -> Iterator[Event]:
        """After a local draft failed: a confident docs quote answers for free; else the frontier.
        `used` are the passages the draft read, already extended to step 1 (no second look-up)."""
        quote, confidence = self.a.reading.quote_from(self.turn.question, self.a.reading.quote_passages(passages, used))
        if confidence.ok:
            yield from self._show_quote(quote, f"docs quote used: {confidence.why}", notice=CONFIDENT_QUOTE_NOTE)
            return
        self.turn.actions.append(f"docs quote not used first: {confidence.why}")
        yield from self._frontier_or_extractive(passages, why=why, quote=quote)

    def _frontier_or_extractive(self, passages: list[Passage], why: str, quote: Quote | None = None) -> Iterator[Event]:
        self.spend.frontier_wanted = True
        unusable = self._frontier_unusable()
        if unusable:
            self.turn.error = self.turn.error or unusable
            yield Notice(unusable, "frontier-unavailable")
            yield from self._extractive(passages, f"frontier not used: {unusable}", quote)
            return
        sendable = [p for p in passages if not is_local_only(p.file, self.a.settings.egress.local_only, root=p.root)]
        if not sendable:
            yield Notice("Every relevant passage is marked local-only, so nothing was sent to the frontier model.", "local-only")
            self._note("local-only", "Every relevant passage is marked local-only: nothing was sent to the frontier model.")
            yield from self._extractive(passages, "frontier not used: all passages are local-only", quote)
            return
        sent, redactions = self._redacted(sendable)
        question = redact(self.turn.question, published_emails(sendable)) if self.a.settings.egress.redact else None
        prompt = build_prompt(question.text if question else self.turn.question, sent)
        self.spend.prompt_chars = len(prompt.system) + len(prompt.user)
        self.turn.actions.append(why)
        self.turn.model = self.a.frontier.model_name
        try:
            yield Drafting(self.a.frontier.model_name, "frontier")
            answer = yield from self._stream(self.a.frontier, prompt, self.spend.frontier)
        except (_Stopped, GeneratorExit, KeyboardInterrupt):
            if self.request_started:
                self._record_egress(sendable, redactions, question)
            raise
        except Exception as error:  # ProviderError, or a third-party surprise: the docs still answer
            failure = error if isinstance(error, ProviderError) else ProviderError(
                f"The frontier model failed unexpectedly ({type(error).__name__}: {error}).",
                "Ask again; if it repeats, check the frontier settings with `frontdesk config`.")
            if failure.sent:
                self._record_egress(sendable, redactions, question)
            self.turn.error = str(failure)
            if self.partial.strip():  # the cut-off text stays on record (its tokens are billed)
                self.turn.actions.append(f"frontier answer cut off after {len(self.partial)} characters: {self.partial}")
            yield withdrawn(failure.title, streamed=self.draft_streamed)
            yield Notice(f"{failure.title} Answering from your docs instead.", "frontier-failed")
            yield from self._extractive(passages, f"frontier failed: {failure.title}", quote)
            return
        self._record_egress(sendable, redactions, question)
        self.spend.frontier_answered = True
        self.turn.route, self.turn.model = "frontier", self.spend.frontier.answered_by_model or self.a.frontier.model_name
        if self.spend.frontier.failover:
            self.turn.actions.append(self.spend.frontier.failover)
            self._note("degraded", self.spend.frontier.failover[0].upper() + self.spend.frontier.failover[1:] + ".")
        check = check_grounding(answer, sendable, self.a.embedder)
        self.turn.grounding = check.to_json()
        if check.passed:
            self._final("answered", answer, sources=sendable, answered_by="frontier", action="frontier answer passed the grounding check")
        else:
            # Shown, but never as fact: every unsupported span is marked in the text itself.
            self._needs_human("the answer failed the grounding check")
            self._final("answered", mark_unsupported(answer, check), sources=sendable, answered_by="frontier",
                        action="frontier answer failed the check; unsupported spans marked: " + _spans_text(check))
        if self.spend.frontier.hit_limit:  # shown, but never as if it were whole
            limit = self.a.settings.frontier.max_tokens
            self.turn.answer += "\n\n… (cut off: the answer reached frontier.max_tokens)"
            self.turn.actions.append(f"frontier answer cut off at max_tokens ({limit})")
            self.turn.error = (f"The frontier's answer was cut off at frontier.max_tokens ({limit} tokens).\n"
                               "  Raise frontier.max_tokens in frontdesk.toml to get whole answers.")

    def _record_egress(self, sendable: list[Passage], redactions: int, question) -> None:
        """What left the machine: recorded only once a request may have reached the API."""
        self.turn.egress_passage_ids = [p.id for p in sendable]
        self.turn.redactions = redactions + (question.count if question else 0)

    def _extractive(self, passages: list[Passage], action: str, quote: Quote | None = None) -> Iterator[Event]:
        """The docs quote as the last resort: the frontier was wanted and could not answer."""
        if self.turn.topic == "pricing":  # a price quoted without the frontier's reading: a person checks
            self._needs_human("a pricing question answered from the docs while the frontier was unavailable")
        yield from self._show_quote(quote or self.a.reading.docs_quote(self.turn.question, passages)[0], action,
                                    notice=EXTRACTIVE_NOTE)

    def _show_quote(self, quote: Quote, action: str, notice: str) -> Iterator[Event]:
        self.turn.model = "docs (extractive)"  # the docs wrote this answer, whatever drafted before
        # Verbatim quotes of the passages: supported by construction. A failed draft's
        # check is kept in `actions`; `grounding` describes the answer actually shown.
        self.turn.grounding = {"passed": True, "unsupported": [], "method": "extractive: quoted verbatim from the passages"}
        yield Notice(notice, "extractive")
        self.quote_note = notice
        self._final("extractive", quote.text, sources=list(quote.passages), answered_by="docs-quote", action=action)

    # --- pieces -------------------------------------------------------------------------

    def _stream(self, provider: Provider, prompt, usage: Usage) -> Generator[Event, None, str]:
        if self.stop.is_set():  # stopped while retrieving or between drafts
            raise _Stopped
        self.draft_streamed = False
        self.partial = ""  # what a failed stream had said: kept in the ledger, never shown as the answer
        pieces: list[str] = []
        stream = provider.generate(prompt, usage)
        self.request_started = True  # the first next() below sends it
        try:
            for text in stream:
                if self.turn.first_token_ms is None:
                    self.turn.first_token_ms = self._ms()
                self.draft_streamed = True
                pieces.append(text)
                yield Token(text)
                if self.stop.is_set():
                    raise _Stopped
        except (_Stopped, GeneratorExit, KeyboardInterrupt):
            self.turn.answer = "".join(pieces)  # a stopped turn keeps what was said
            raise
        except BaseException:
            self.partial = "".join(pieces)
            raise
        finally:
            stream.close()
        return "".join(pieces).strip()

    def _frontier_unusable(self) -> str | None:
        if not self.a.frontier.available:
            return self.a.frontier.unavailable_reason()
        try:
            budget = budget_use(self.a.settings.frontier, self.a.ledger.spend_since)
        except LedgerError as error:  # no record of the spend: don't escalate blind
            return f"The frontier budget cannot be checked: {error.title}"
        for use in budget:
            if use.exhausted:
                return use.refusal()
        return None

    def _redacted(self, passages: list[Passage]) -> tuple[list[Passage], int]:
        if not self.a.settings.egress.redact:
            return passages, 0
        keep = published_emails(passages)
        out, count = [], 0
        for passage in passages:
            # The file path and heading are sent too (source="…", section="…"), and they can
            # name a person as easily as the text can: customers/jane.doe@acme-corp.com.md.
            text, file, heading = (redact(value, keep) for value in (passage.text, passage.file, passage.heading))
            count += text.count + file.count + heading.count
            out.append(replace(passage, text=text.text, file=file.text, heading=heading.text))
        return out, count

    def _final(self, outcome: str, answer: str, *, sources: list[Passage] | None = None, route: str | None = None,
               answered_by: str = "none", action: str) -> None:
        self.turn.outcome, self.turn.answer, self.turn.answered_by = outcome, answer, answered_by
        if route:
            self.turn.route = route
        if sources is not None:
            self.turn.sources = [p.to_json() for p in sources]
        self.turn.actions.append(action)

    def _needs_human(self, reason: str) -> None:
        """Queue the turn for a person (the first reason is kept)."""
        if not self.turn.needs_human:
            self.turn.needs_human, self.turn.handoff = reason, "open"

    def _note(self, kind: str, text: str) -> None:
        self.notes.append({"kind": kind, "text": text})

    def _ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def finish(self) -> str | None:
        """Cost the turn and write it to the ledger, once. Returns what went wrong writing it, if anything."""
        if self.recorded:
            return None
        self.recorded = True
        turn, settings = self.turn, self.a.settings
        turn.total_ms = self._ms()
        cost_turn(turn, self.spend, settings)
        turn.notes = self.notes + closing_notes(turn, self.quote_note)
        _scrub_turn(turn, settings.api_key)
        try:
            self.a.ledger.record(turn)
        except FrontdeskError as error:
            return str(error)
        return None


def _scrub_turn(turn: Turn, api_key: str | None) -> None:
    """Mask the configured API key anywhere in the turn (say, pasted into a question)."""
    if not api_key:
        return
    for name in ("question", "answer", "error", "reason"):
        setattr(turn, name, scrub(getattr(turn, name), api_key))
    turn.actions = [scrub(action, api_key) for action in turn.actions]
    turn.notes = [{**note, "text": scrub(note["text"], api_key)} for note in turn.notes]


def _spans_text(check: GroundingResult) -> str:
    return ", ".join(f"{s.kind} “{s.text.strip()[:60]}”" for s in check.unsupported[:5]) or "no spans"
