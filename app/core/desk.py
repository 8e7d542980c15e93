"""The desk: builds the core's parts once and is the one handle front ends hold.

A front end calls `Desk` methods and nothing below them: ask, ingest, search, route, the
ledger's turns and summaries, export. Everything heavy (torch, Chroma, the local model's
worker) is built on first use, so constructing a `Desk` is instant and a front end can show
its first frame before any model loads. Tests may reach the parts (`desk.store`,
`desk.ledger`, `desk.assistant`); front ends may not (import-linter checks the imports).
"""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from app.core.errors import ConfigError, FrontdeskError, LedgerError
from app.core.events import Event
from app.core.settings import Settings

if TYPE_CHECKING:
    from app.core.answer.budget import BudgetUse
    from app.core.answer.pipeline import Assistant
    from app.core.answer.router import RouteDecision, Router
    from app.core.docs.embeddings import Embedder, Tokenizer
    from app.core.docs.retrieval import Retriever
    from app.core.docs.store import Store
    from app.core.ledger.turns import Ledger, Summary, Turn, TurnFilter
    from app.core.passage import Passage
    from app.core.providers.base import Provider


class Desk:
    def __init__(self, settings: Settings, *, local: Provider | None = None, frontier: Provider | None = None):
        """`local` and `frontier` replace the configured providers (tests script them this way)."""
        self.settings = settings
        if local is not None:
            self.__dict__["local"] = local  # what the cached_property below would have built
        if frontier is not None:
            self.__dict__["frontier"] = frontier

    # --- the parts, built on first use -------------------------------------------------------

    @cached_property
    def store(self) -> Store:
        from app.core.docs.store import Store

        return Store(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        from app.core.docs.embeddings import Embedder

        return Embedder(max_seq_length=self.settings.general.chunk_tokens, batch_size=self.settings.general.embed_batch)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        from app.core.docs.embeddings import Tokenizer

        return Tokenizer()

    @cached_property
    def retriever(self) -> Retriever:
        from app.core.docs.retrieval import Retriever

        return Retriever(self.store, self.embedder, self.settings.general.top_k)

    @cached_property
    def router(self) -> Router:
        from app.core.answer.router import Router

        return Router.from_settings(self.settings, self.embedder)

    @cached_property
    def local(self) -> Provider:
        from app.core.providers.local import LocalProvider

        return LocalProvider(self.settings)

    @cached_property
    def frontier(self) -> Provider:
        """The primary frontier (Claude, or by `frontier.provider` any OpenAI-compatible endpoint)
        behind its breaker; with `[fallback]` set, an OpenAI-compatible endpoint behind its own
        breaker takes over when the primary fails, is paused or has no key."""
        from app.core.providers.anthropic import AnthropicProvider
        from app.core.providers.breaker import Breaker, GuardedProvider

        home = self.settings.home
        frontier = self.settings.frontier
        if frontier.provider == "anthropic":
            primary = GuardedProvider(AnthropicProvider(self.settings), Breaker(home / "frontier-breaker.json"))
        elif frontier.provider == "openai-compatible":  # switching providers is configuration, not code
            if not frontier.base_url:
                raise ConfigError("frontier.provider is openai-compatible but frontier.base_url is empty",
                                  "Set frontier.base_url to the endpoint (…/v1) and frontier.model to a model it serves.")
            primary = GuardedProvider(_openai_compatible(frontier.base_url, frontier.model, frontier.key_env, frontier,
                                                         "frontier.base_url"),
                                      Breaker(home / "frontier-breaker.json", name=frontier.model))
        else:
            raise ConfigError(f"Unknown frontier.provider {frontier.provider!r}",
                              "Set frontier.provider to anthropic or openai-compatible.")
        fallback = self.settings.fallback
        if not fallback.url:
            return primary
        from app.core.providers.failover import FailoverProvider
        from app.core.providers.pricing import Prices, prices_for

        if not fallback.model:
            raise ConfigError("fallback.url is set but fallback.model is empty",
                              "Set fallback.model to the name of a model the endpoint serves.")
        second = _openai_compatible(fallback.url, fallback.model, fallback.key_env, frontier, "fallback.url")
        return FailoverProvider(
            primary, prices_for(self.settings, "frontier"),
            GuardedProvider(second, Breaker(home / "fallback-breaker.json", name=f"The fallback ({fallback.model})")),
            Prices(fallback.input_usd_per_mtok, fallback.output_usd_per_mtok),
        )

    def frontier_status(self) -> str:
        """The frontier breakers' state in one line: closed, open (until when) or half-open."""
        providers = [getattr(self.frontier, "primary", self.frontier), getattr(self.frontier, "fallback", None)]
        states = [(p.breaker.name, p.breaker.status()) for p in providers if getattr(p, "breaker", None) is not None]
        if not states:
            return "no breaker (a provider given directly)"
        if len(states) == 1:
            return states[0][1]
        return "; ".join(f"{name}: {status}" for name, status in states)

    @cached_property
    def ledger(self) -> Ledger:
        from app.core.ledger.turns import Ledger

        return Ledger(self.settings.ledger_path)

    @cached_property
    def assistant(self) -> Assistant:
        from app.core.answer.pipeline import Assistant

        return Assistant(self.settings, self.retriever, self.router, self.local, self.frontier, self.ledger)

    # --- answering ---------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the embedder, the store and the local model now (a front end calls this in the background).

        The local model loads in its worker process while this one loads the embedder.
        """
        self.local.start()
        self.embedder.load()
        self.store.count()
        self.retriever.keywords.sync()  # built or brought up to date now, not on the first question
        self.router.decide("warm up")
        self.local.load()

    def start_local_model(self) -> None:
        """Start loading the local model in its worker without waiting (a no-op if it is remote)."""
        self.local.start()

    @property
    def local_model(self) -> tuple[str, Path | None]:
        """(name, GGUF path); the path is None for a model served at `local.url`."""
        return self.local.model_name, getattr(self.local, "model_path", None)

    def ask(self, question: str, conversation_id: str | None = None, stop: threading.Event | None = None,
            k: int | None = None) -> Iterator[Event]:
        """Answer one question: the pipeline's events, ending with Answered (the turn as logged)."""
        return self.assistant.ask(question, conversation_id=conversation_id, stop=stop, k=k)

    def answer(self, question: str, **options) -> Turn:
        return self.assistant.answer(question, **options)

    def route(self, questions: list[str], with_docs: bool = False) -> list[RouteDecision]:
        """Who would answer each question, and why; `with_docs` also applies the relevance floor."""
        if not with_docs:
            return self.router.decide_many(questions)
        found = self.retriever.find(questions, 1)
        # The best cosine of any passage (the fused first one may score lower): what the thresholds were calibrated on.
        return self.router.decide_many(questions, found.best_scores, vectors=found.vectors)

    # --- docs ------------------------------------------------------------------------------------

    def ingest(self, root: Path | None = None) -> Iterator[Event]:
        """Make the store mirror a docs folder: IngestStarted, FileIngested…, IngestFinished."""
        from app.core.docs.ingest import ingest_folder

        docs = self.settings.general
        return ingest_folder(
            root or self.settings.docs, self.store, self.embedder, self.tokenizer,
            chunk_tokens=docs.chunk_tokens, max_file_bytes=int(docs.max_file_mb * 2**20),
        )

    def search(self, questions: list[str], k: int | None = None) -> list[list[Passage]]:
        return self.retriever.search_many(questions, k)

    def doc_count(self) -> int:
        return self.store.count()

    def doc_roots(self) -> dict[str, int]:
        """Chunks per docs folder."""
        return self.store.roots()

    def passages(self, ids: list[str]) -> list[Passage]:
        return self.store.get(ids)

    # --- the ledger ------------------------------------------------------------------------------

    def turns(self, where: TurnFilter | None = None, limit: int | None = None, newest_first: bool = True) -> list[Turn]:
        from app.core.ledger.turns import TurnFilter

        return self.ledger.turns(where or TurnFilter(), limit=limit, newest_first=newest_first)

    def summary(self, where: TurnFilter | None = None) -> Summary:
        from app.core.ledger.turns import TurnFilter

        return self.ledger.summary(where or TurnFilter())

    def daily(self, where: TurnFilter | None = None) -> list[tuple[str, float, float]]:
        from app.core.ledger.turns import TurnFilter

        return self.ledger.daily(where or TurnFilter())

    def conversations(self, limit: int = 50) -> list[tuple[str, str, str, int]]:
        return self.ledger.conversations(limit)

    # --- handoff to a human ----------------------------------------------------------------------

    def handoffs(self, status: str = "open") -> list[Turn]:
        """The handoff queue: turns a person should look at, oldest first."""
        from app.core.ledger.turns import TurnFilter

        return self.ledger.turns(TurnFilter(handoff=status), newest_first=False)

    def set_handoff(self, turn_id: int, status: str, reason: str = "handed to a human") -> Turn:
        """Hand a turn to a human ("open"), or mark its ticket done, or reopen it."""
        return self.ledger.set_handoff(turn_id, status, reason)

    def handoff_ticket(self, turn_id: int) -> tuple[dict, str]:
        """The ticket of a turn: (JSON-ready dict, Markdown)."""
        from app.core.ledger.handoff import ticket, ticket_markdown
        from app.core.ledger.turns import TurnFilter

        turn = self.ledger.turn(turn_id)
        conversation = self.ledger.turns(TurnFilter(conversation_id=turn.conversation_id), newest_first=False)
        data = ticket(turn, [t for t in conversation if t.id <= turn.id])
        return data, ticket_markdown(data)

    def export_handoffs(self, ids: list[int], folder: Path) -> list[Path]:
        """Write each ticket as handoff-ID.md and handoff-ID.json in `folder`; returns the .md paths.
        Raises FrontdeskError (with a fix) when the folder can't be written."""
        import json

        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for turn_id in ids:
                data, markdown = self.handoff_ticket(turn_id)
                (folder / f"handoff-{turn_id}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n",
                                                              encoding="utf-8")
                (folder / f"handoff-{turn_id}.md").write_text(markdown, encoding="utf-8")
                written.append(folder / f"handoff-{turn_id}.md")
        except OSError as error:
            raise FrontdeskError(f"Cannot write the tickets to {folder}: {error.strerror or error}",
                                 "Choose another folder, or fix its permissions.") from None
        return written

    def budget(self) -> list[BudgetUse]:
        """Each frontier cap that is set, with what was spent in its period (warn at `near`)."""
        from app.core.answer.budget import budget_use

        try:
            return budget_use(self.settings.frontier, self.ledger.spend_since)
        except LedgerError:  # the ledger's own trouble is reported where it is used
            return []

    def export(self, where: TurnFilter | None, path: Path) -> int:
        """Write the matching turns to `path` (JSON for .json, else CSV); returns how many."""
        from app.core.ledger.export import export_format, write_turns

        turns = self.turns(where)
        with path.open("w", newline="", encoding="utf-8") as out:
            write_turns(out, turns, self.summary(where), export_format(path))
        return len(turns)


def _openai_compatible(url: str, model: str, key_env: str, frontier, setting: str) -> Provider:
    """An OpenAI-compatible endpoint as a frontier provider; its key is read from the named
    environment variable here and never stored."""
    from app.core.providers.openai_frontier import OpenAIFrontierProvider

    key = os.environ.get(key_env, "").strip() if key_env else ""
    return OpenAIFrontierProvider(url, model, key or None, key_env, frontier.timeout, frontier.max_retries,
                                  frontier.max_tokens, requires_key=bool(key_env), setting=setting)
