"""`frontdesk router fit FILE`: the command around `fit.fit_policy`.

`fit_router` reads the file, holds out a stratified fifth (identical texts on the same side)
to print before/after figures on, and, when the rows name several sources, fits on all but
one and tests on that one (`by_source`); then it writes the new policy next to its examples
file and their vectors, and points the config at it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from app.core.answer.config_file import point_config_at, set_toml_value
from app.core.answer.fit import (HELD_OUT_FOLDS, CachedEmbedder, FitError, FitTarget, Metrics, SourceCheck, Tuning,
                                 assign_topics, by_source, evaluate, fit_policy, rows_from_questions, split_folds,
                                 with_examples)
from app.core.answer.policy import DEFAULT_POLICY_PATH, RoutingPolicy, load_policy
from app.core.answer.router import Router, embedder_id, save_vectors, text_keys, vectors_file
from app.core.labelled import load_questions
from app.core.settings import Settings


@dataclass
class FitReport:
    file: Path
    rows: int
    fit_rows: int
    held_out_rows: int
    starting_policy: Path  # whose topics, keywords and examples the fit started from
    target: FitTarget
    tuning: Tuning
    before: Metrics  # the configured policy, on the held-out rows
    after: Metrics  # the fitted thresholds with the fit rows as examples, on the held-out rows
    sources: list[SourceCheck]  # with rows from several sources: fitted on the others, tested on each
    previous: dict[str, float]  # keyword_bonus and the escalation min_scores before the fit
    policy_file: Path
    examples_file: Path
    examples: int
    config_file: Path
    config_created: bool
    embed_seconds: float
    seconds: float
    warnings: list[str] = field(default_factory=list)


def fit_router(settings: Settings, path: str | Path, target: FitTarget = FitTarget(), seed: int = 13, embedder=None,
               progress: Callable[[int, int], None] | None = None) -> FitReport:
    """`frontdesk router fit FILE`: fit, check on held-out rows, write a new policy, point the config at it."""
    started = time.perf_counter()
    path = Path(path).expanduser()
    questions = load_questions(path)
    configured = settings.routing.policy or DEFAULT_POLICY_PATH
    current = load_policy(configured)
    base = load_policy(configured, with_examples_file=False)  # a refit replaces the examples a previous fit added
    rows = rows_from_questions(questions, base, path)

    if embedder is None:
        from app.core.docs.embeddings import Embedder  # torch loads only when a fit runs

        # The desk's embedder (the same model and token limit, so the router can reuse the vectors), in
        # bigger batches than for docs: questions are short, and 256 a batch embeds ~1.5x faster on 2 cores.
        embedder = Embedder(max_seq_length=settings.general.chunk_tokens, batch_size=max(256, settings.general.embed_batch))
    texts = list(dict.fromkeys(row.text for row in rows))
    clock = time.perf_counter()
    unique = _embed(embedder, texts, progress)
    embed_seconds = time.perf_counter() - clock
    position = {text: i for i, text in enumerate(texts)}
    vectors = unique[[position[row.text] for row in rows]]
    cached = CachedEmbedder(embedder, texts, unique)

    rows = assign_topics(base, cached, rows, vectors)
    held = split_folds(rows, HELD_OUT_FOLDS, seed) == 0
    fit_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
    fit_rows, held_rows = [rows[i] for i in fit_idx], [rows[i] for i in held_idx]
    fitted = fit_policy(base, fit_rows, vectors[fit_idx], cached, target, seed)
    if not fitted.tuning.met:
        result = fitted.tuning.metrics
        raise FitError(
            f"The target can't be met ({target.describe()}): the closest the grid gets on the tuning rows is escalation "
            f"recall {result.recall:.3f}, frontier share {result.frontier_share:.1%} (precision {result.precision:.3f}, "
            f"F1 {result.f1:.3f}). Nothing was written.",
            "Loosen the target to what is reachable, or label more questions like the ones it gets wrong and fit again.",
        )
    before = evaluate(current, cached, held_rows, vectors[held_idx])
    after = evaluate(fitted.policy, cached, held_rows, vectors[held_idx])
    sources = by_source(base, current, rows, vectors, cached, target, seed)
    warnings = []
    if current.examples_file:  # a previous fit: its examples may include the rows held out now
        known = {text for topic in current.topics.values() for text in topic.examples}
        if seen := sum(row.text in known for row in held_rows):
            warnings.append(f"{seen} of the {len(held_rows)} held-out questions are examples in {configured} already "
                            "(a previous fit), so its 'before' figures are flattering.")

    # The policy written uses every labelled row (held-out ones too): the figures above estimate it.
    final = with_examples(fitted.policy, held_rows)
    policy_file, examples_file = _new_policy_files(settings.home / "routing")
    examples = _write_examples(examples_file, final, base)
    model = embedder_id(embedder)
    if model is not None:  # the router finds these and embeds only the policy's own examples at first use
        save_vectors(vectors_file(replace(final, examples_file=examples_file)), model, text_keys(texts), unique)
    header = (f"{_HEADER} from {path} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC,\n"
              f"# starting from {configured}. Target: {target.describe()}. Held-out rows ({len(held_rows)}):\n"
              f"# escalation recall {before.recall:.3f} -> {after.recall:.3f}, precision {before.precision:.3f} -> "
              f"{after.precision:.3f}, frontier share {before.frontier_share:.1%} -> {after.frontier_share:.1%}.\n"
              f"# The labelled examples are in {examples_file.name}; their vectors in {examples_file.stem}.vectors.npz.\n\n")
    _write_policy(policy_file, configured, header, fitted.tuning, examples_file)
    Router(load_policy(policy_file), cached).warm()  # checks what was written, and stores the remaining vectors

    config_file, created, config_warnings = point_config_at(settings, policy_file)
    previous = {"keyword_bonus": base.keyword_bonus, **{name: base.topics[name].min_score for name in fitted.tuning.min_scores}}
    return FitReport(
        file=path, rows=len(rows), fit_rows=len(fit_rows), held_out_rows=len(held_rows), starting_policy=Path(configured),
        target=target, tuning=fitted.tuning, before=before, after=after, sources=sources, previous=previous, policy_file=policy_file,
        examples_file=examples_file, examples=examples, config_file=config_file, config_created=created,
        embed_seconds=embed_seconds, seconds=time.perf_counter() - started, warnings=warnings + config_warnings,
    )


def _embed(embedder, texts: list[str], progress: Callable[[int, int], None] | None, batch: int = 2048) -> np.ndarray:
    # Shortest first: a batch of like lengths pads little (the sentence-transformers sort covers one call only).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(texts), batch):
        part = order[start:start + batch]
        embedded = np.asarray(embedder.embed([texts[i] for i in part]), dtype=np.float32)
        if vectors.shape[1] != embedded.shape[1]:  # a model with another dimension
            vectors = np.zeros((len(texts), embedded.shape[1]), dtype=np.float32)
        vectors[part] = embedded
        if progress:
            progress(min(start + batch, len(texts)), len(texts))
    return vectors


def _new_policy_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"policy-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    name, n = stem, 1
    while (folder / f"{name}.toml").exists() or (folder / f"{name}.examples.jsonl").exists():
        n += 1
        name = f"{stem}-{n}"
    return folder / f"{name}.toml", folder / f"{name}.examples.jsonl"


def _write_examples(path: Path, policy: RoutingPolicy, base: RoutingPolicy) -> int:
    """The fitted examples beyond the starting policy's own, as labelled rows (question, topic): one format for all."""
    lines = []
    for name, topic in policy.topics.items():
        own = set(base.topics[name].examples)
        lines += [json.dumps({"question": text, "topic": name}, ensure_ascii=False) for text in topic.examples if text not in own]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


_HEADER = "# Fitted by `frontdesk router fit`"


def _write_policy(path: Path, starting: Path, header: str, tuning: Tuning, examples_file: Path) -> None:
    """The starting policy's text, comments kept, with the fitted values set in it."""
    text = Path(starting).read_text(encoding="utf-8")
    if text.startswith(_HEADER):  # a refit: the previous fit's header gives way to this one's
        text = text.split("\n\n", 1)[-1]
    text = set_toml_value(text, None, "examples_file", json.dumps(examples_file.name))
    text = set_toml_value(text, "scoring", "keyword_bonus", f"{tuning.keyword_bonus:g}")
    for name, floor in tuning.min_scores.items():
        text = set_toml_value(text, f"topics.{name}", "min_score", f"{floor:g}")
    path.write_text(header + text, encoding="utf-8")
    written = load_policy(path, with_examples_file=False)
    if written.keyword_bonus != tuning.keyword_bonus or any(written.topics[n].min_score != f for n, f in tuning.min_scores.items()):
        path.unlink()
        raise FitError(f"Could not write the fitted values into a copy of {starting}",
                       "Write its topics as [topics.NAME] tables and its scoring as a [scoring] table, then fit again.")
