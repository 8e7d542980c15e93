"""One evaluation run: a file of labelled questions through a desk of its own.

Routing and retrieval are measured for every question in one batch pass (one embedding per
question, reused by the router as the pipeline reuses it), so `generate=False` is fast.
With `generate=True` each question then goes through the real pipeline (`Desk.answer`):
retrieve, route, draft, check, log. Its turns are logged to the run's own ledger next to the
report, never to the user's: an eval is not customer traffic, and its turns must not move
`frontdesk logs`, the savings shown in the app or the handoff queue.
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

from app.core.desk import Desk
from app.core.errors import FrontdeskError
from app.core.evaluation.facts import cited_files, fact_match
from app.core.evaluation.metrics import first_rank, heading_matches, token_f1
from app.core.evaluation.report import build_report, report_path
from app.core.labelled import LabelledFileError, LabelledQuestion, load_questions

if TYPE_CHECKING:
    from app.core.events import Event
    from app.core.ledger.turns import Ledger, Turn
    from app.core.passage import Passage
    from app.core.providers.base import Provider
    from app.core.settings import Settings

# Passages read per question: hit@1 and hit@5 need 5; MRR is counted down to rank 10.
RETRIEVAL_DEPTH = 10
# Questions embedded per call: the progress bar moves and memory stays bounded on big files.
BATCH = 256


class Progress(Protocol):
    """What a front end passes to follow a run (the CLI's ProgressBar is one)."""

    def start(self, total: int, description: str) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Result:
    """One labelled question and what the desk did with it: a row of the report."""

    line: int
    question: str
    expected_route: str | None = None
    expected_topic: str | None = None
    expected_answerable: bool | None = None
    expected_files: tuple[str, ...] = ()
    expected_heading: str | None = None
    route: str | None = None  # the router's decision (before any escalation by the pipeline)
    topic: str | None = None
    answerable: bool | None = None  # the router's relevance floor: False = the docs don't cover it
    file_rank: int | None = None  # rank of the first passage from an expected file (None = missed)
    heading_rank: int | None = None
    routing_ms: float | None = None
    # with generate=True:
    turn_id: int | None = None
    outcome: str | None = None
    answered_by: str | None = None
    grounding_passed: bool | None = None
    facts: int = 0
    facts_found: int = 0
    cites_expected_file: bool | None = None
    token_f1: float | None = None
    cost_usd: float | None = None
    counterfactual_usd: float | None = None  # what an all-frontier desk would have paid (the turn's own figure)
    retrieval_ms: float | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None
    answer: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


class _EvalDesk(Desk):
    """A desk like the user's (same settings, store and models) that logs to another ledger."""

    def __init__(self, settings: Settings, ledger_path: Path, **providers: Provider | None):
        super().__init__(settings, **providers)
        self.ledger_path = ledger_path

    @cached_property
    def ledger(self) -> Ledger:
        from app.core.ledger.turns import Ledger

        return Ledger(self.ledger_path)


class Evaluation:
    """Read and check a labelled file now (errors name the line); measure with `run`.

    `docs`: a docs folder to ingest first (`ingest`); expected files are relative to it and
    only its passages count as hits. `local`/`frontier` replace the configured models (tests).
    """

    def __init__(self, settings: Settings, path: str | Path, *, generate: bool = True, docs: Path | None = None,
                 limit: int | None = None, local: Provider | None = None, frontier: Provider | None = None,
                 now: datetime | None = None):
        self.path = Path(path).expanduser().resolve()
        if limit is not None and limit < 1:
            raise FrontdeskError(f"--limit must be at least 1, got {limit}", "Leave it out to evaluate every question.")
        self.questions = load_questions(self.path)[:limit]
        self.limit = limit
        self.generate = generate
        self.docs = docs.expanduser().resolve() if docs else None
        self.created_at = now or datetime.now(timezone.utc)
        self.report_path = report_path(settings.home, self.path, self.created_at)
        self.ledger_path = self.report_path.with_suffix(".ledger.sqlite3")
        self.desk = _EvalDesk(settings, self.ledger_path, local=local, frontier=frontier)
        self.policy = self.desk.router.policy  # read now (the embedder loads later): a wrong topic is said at once
        self.depth = max(RETRIEVAL_DEPTH, settings.general.top_k)
        self.results = [self._expected(q) for q in self.questions]
        self.complete = True  # False when answering was stopped part way

    def _expected(self, question: LabelledQuestion) -> Result:
        topic = question.topic
        if topic is not None and topic not in self.policy.topics:
            where = self.policy.path or "the shipped policy"
            written = f" (its route {question.label!r} is read as a topic)" if (question.label or "").lower() == topic else ""
            raise LabelledFileError(
                f"{self.path}, line {question.line}: topic {topic!r}{written} is not in the routing policy ({where})",
                f"Use one of its topics ({', '.join(self.policy.topic_names)}), a route (local or frontier), "
                "or add the topic to the policy.")
        # A topic label expects the route the policy in use gives that topic.
        route = question.route or (self.policy.topics[topic].route if topic else None)
        return Result(question.line, question.question, route, topic, question.answerable, question.files, question.heading)

    # --- running ---------------------------------------------------------------------------

    def ingest(self) -> Iterator[Event]:
        """Bring the docs folder into the store (incrementally: unchanged files are skipped)."""
        if self.docs is None:
            raise FrontdeskError("No docs folder given to ingest", "Pass --docs PATH.")
        return self.desk.ingest(self.docs)

    def run(self, progress: Progress | None = None) -> dict:
        """Measure every question; returns the report (see `report.build_report`)."""
        with_docs = self.desk.doc_count() > 0
        if self.generate and not with_docs:
            raise FrontdeskError("The docs store is empty, so there is nothing to answer from",
                                 "Pass --docs PATH to load a docs folder first, or use --no-generate to measure routing only.")
        if self.generate and hasattr(self.desk.local, "start"):  # not part of the Provider protocol
            self.desk.start_local_model()  # it loads in its worker while this process embeds
        started = time.perf_counter()
        # Loaded before the clocks start: a model's load time is no question's latency.
        self.desk.embedder.load()
        self.desk.router.warm()
        retrieval_ms = self._route_and_retrieve(with_docs, progress)
        notes = self._unknown_files() if with_docs else []
        if self.generate:
            notes += self._unavailable_models()
            stopped = self._answer(progress)
            if stopped:
                notes.append(stopped)
        return build_report(self, with_docs=with_docs, batch_retrieval_ms=retrieval_ms,
                            seconds=time.perf_counter() - started, notes=notes)

    def _unknown_files(self) -> list[str]:
        """Expected files the store doesn't hold: a typo, or a path not relative to the docs folder,
        would otherwise pass for a retrieval miss."""
        expected = {file for question in self.questions for file in question.files}
        if not expected:
            return []
        store = self.desk.store
        roots = [str(self.docs)] if self.docs else list(store.roots())
        unknown = sorted(expected - {file for root in roots for file in store.files(root)})
        if not unknown:
            return []
        folder = f"the docs folder ({self.docs})" if self.docs else "their docs folder (name it with --docs PATH)"
        return [f"{len(unknown)} expected file(s) are not in the docs store, so their questions count as retrieval "
                f"misses: {', '.join(unknown[:3])}{', …' if len(unknown) > 3 else ''}. Expected files are relative to {folder}."]

    def _unavailable_models(self) -> list[str]:
        """Say up front when a tier can't answer: its questions then measure the fallback, not the model.
        The local model is waited for here, so its load time is no question's latency."""
        notes = []
        for tier, fallback in (("local", "the docs quote or the frontier"), ("frontier", "the docs quote")):
            try:
                provider = getattr(self.desk, tier)
                reason = None if provider.available else provider.unavailable_reason()
                if reason is None and tier == "local" and hasattr(provider, "load"):  # not in the Provider protocol
                    provider.load()
            except FrontdeskError as error:
                reason = str(error)
            if reason:
                notes.append(f"The {tier} model was unavailable, so its questions were answered by {fallback}: "
                             f"{reason.splitlines()[0]}")
        return notes

    def _route_and_retrieve(self, with_docs: bool, progress: Progress | None) -> float | None:
        """Route and rank passages for every question in batches; returns the retrieval time per
        question (embedding + store query, amortised over the batch) or None without docs."""
        desk = self.desk
        spent = 0.0
        _start(progress, len(self.results), "Routing and retrieval")
        for begin in range(0, len(self.results), BATCH):
            batch = self.results[begin:begin + BATCH]
            # As the pipeline reads a question: compatibility forms ("ｒｅｓｅｔ") as the words they are.
            texts = [unicodedata.normalize("NFKC", r.question) for r in batch]
            if with_docs:
                clock = time.perf_counter()
                found = desk.retriever.find(texts, self.depth)
                spent += time.perf_counter() - clock
                vectors, ranked, best_scores = found.vectors, found.passages, found.best_scores
            else:
                vectors, ranked, best_scores = desk.embedder.embed(texts), [[] for _ in texts], None
            for i, (result, passages) in enumerate(zip(batch, ranked)):
                clock = time.perf_counter()
                # Decided as `Desk.route(with_docs=True)` decides, on the best passage's similarity.
                decision = desk.router.decide_many([texts[i]], best_scores[i:i + 1] if with_docs else None,
                                                   vectors=vectors[i:i + 1])[0]
                result.routing_ms = round((time.perf_counter() - clock) * 1000, 3)
                result.route, result.topic = decision.route, decision.topic
                result.answerable = decision.answerable if with_docs else None
                question = self.questions[begin + i]
                if question.files or question.heading:  # routing-only rows skip the quarantine screening
                    self._rank(result, question, _clean(passages))
                _advance(progress, result.question)
        _stop(progress)
        return round(spent * 1000 / len(self.results), 2) if with_docs else None

    def _rank(self, result: Result, question: LabelledQuestion, passages: list[Passage]) -> None:
        in_file = [self._in_expected_file(question, p) for p in passages]
        if question.files:
            result.file_rank = first_rank(in_file)
        if question.heading:
            result.heading_rank = first_rank(
                heading_matches(question.heading, p.heading) and (hit or not question.files)
                for p, hit in zip(passages, in_file))

    def _in_expected_file(self, question: LabelledQuestion, passage: Passage) -> bool:
        return passage.file in question.files and (self.docs is None or passage.root == str(self.docs))

    def _answer(self, progress: Progress | None) -> str | None:
        """Answer every question; returns a note when stopped part way (Ctrl-C), after which the
        run measures the questions answered so far rather than losing them."""
        _start(progress, len(self.results), "Answering")
        try:
            for done, (result, question) in enumerate(zip(self.results, self.questions)):
                _judge(result, question, self.desk.answer(question.question))
                _advance(progress, result.question)
        except KeyboardInterrupt:
            if done == 0:
                raise
            total, self.complete = len(self.results), False
            self.results, self.questions = self.results[:done], self.questions[:done]
            return f"Stopped after {done} of {total} questions: every measure covers those {done} only."
        finally:
            _stop(progress)
        return None


def _judge(result: Result, question: LabelledQuestion, turn: Turn) -> None:
    answered = turn.answered_by != "none"
    result.turn_id, result.outcome, result.answered_by = turn.id, turn.outcome, turn.answered_by
    result.answer = turn.answer
    result.grounding_passed = turn.grounding.get("passed") if answered else None
    result.facts = len(question.facts)
    result.facts_found = sum(fact_match(fact, turn.answer).ok for fact in question.facts) if answered else 0
    if question.files and answered:
        result.cites_expected_file = bool(cited_files(turn.answer, turn.sources) & set(question.files))
    if question.reference is not None:
        result.token_f1 = token_f1(turn.answer, question.reference) if answered else 0.0
    result.cost_usd = turn.cost_usd
    result.counterfactual_usd = turn.counterfactual_cost_usd
    result.retrieval_ms, result.first_token_ms, result.total_ms = turn.retrieval_ms, turn.first_token_ms, turn.total_ms


def _clean(passages: list[Passage]) -> list[Passage]:
    """The passages the pipeline would use: those that talk to the assistant are quarantined."""
    from app.core.trust.injection import quarantine

    return quarantine(passages)[0]


def _start(progress: Progress | None, total: int, description: str) -> None:
    if progress:
        progress.start(total, description)


def _advance(progress: Progress | None, label: str) -> None:
    if progress:
        progress.advance(label)


def _stop(progress: Progress | None) -> None:
    if progress:
        progress.stop()
