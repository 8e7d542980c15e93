"""Hybrid retrieval over the real Chroma store and the real embedder: exact terms, a keyword
index that follows the store, procedures completed, scores that stay cosine."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.core.docs.ingest import IngestFinished
from app.core.docs.keyword import KeywordIndex
from app.core.docs.retrieval import Retriever
from conftest import RAILWAY_DOCS, killed_before_cleanup

# Fifteen real Railway pages about volumes, variables, builds and deploys: enough neighbours
# in meaning for a dense ranking to lose an exact term among them.
RAILWAY_PAGES = [
    "volumes.md", "volumes/backups.md", "volumes/point-in-time-recovery.md", "volumes/reference.md", "variables.md",
    "builds/build-and-start-commands.md", "builds/build-configuration.md", "builds/dockerfiles.md",
    "builds/private-registries.md", "builds/railpack.md", "builds/skipped-builds.md", "deployments/healthchecks.md",
    "deployments/restart-policy.md", "deployments/regions.md", "databases/postgresql.md",
]
RUN_UID_QUESTION = "what is RAILWAY_RUN_UID for"


def ingest(desk, root: Path):
    events = list(desk.ingest(root))
    assert isinstance(events[-1], IngestFinished)
    return events[-1].summary


@pytest.fixture(scope="module")
def railway(tmp_path_factory):
    """A Desk over the fifteen Railway pages, ingested once for this module (read-only use)."""
    from app.core.desk import Desk
    from app.core.settings import load_settings

    docs = tmp_path_factory.mktemp("railway-pages")
    for page in RAILWAY_PAGES:
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RAILWAY_DOCS / "content" / "docs" / page, docs / page)
    desk = Desk(load_settings(environ={"FRONTDESK_HOME": str(tmp_path_factory.mktemp("railway-home"))}))
    assert ingest(desk, docs).failed == []
    return desk


def dense(desk) -> Retriever:
    return Retriever(desk.store, desk.embedder, hybrid=False, neighbours=False)


def rank_of(passages, needle: str) -> int | None:
    return next((rank for rank, p in enumerate(passages, 1) if needle in p.text), None)


def test_an_exact_term_dense_search_ranks_low_is_found_first(railway):
    dense_rank = rank_of(dense(railway).search(RUN_UID_QUESTION, k=10), "RAILWAY_RUN_UID")
    hybrid = railway.retriever.search(RUN_UID_QUESTION, k=5)
    assert dense_rank is None or dense_rank > 3, "the dense ranking alone should not find the variable near the top"
    assert "RAILWAY_RUN_UID" in hybrid[0].text
    assert hybrid[0].file in ("volumes.md", "volumes/reference.md")


def test_scores_stay_the_cosine_similarity_to_the_question(railway, monkeypatch):
    import app.core.docs.retrieval as retrieval

    question = railway.embedder.embed([RUN_UID_QUESTION])[0]
    chroma = {p.id: p.score for p in dense(railway).search(RUN_UID_QUESTION, k=30)}  # 1 - Chroma's cosine distance
    found = railway.retriever.find([RUN_UID_QUESTION], k=10)
    passages = found.passages[0]
    assert any(p.id in chroma for p in passages)
    for passage in passages:
        if passage.id in chroma:
            assert passage.score == pytest.approx(chroma[passage.id], abs=1e-4)
    # Only the order is fused: the first passage is not the most similar one here, and the
    # best cosine of any candidate is still reported for the router's thresholds.
    assert passages[0].score < max(chroma.values())
    assert found.best_scores[0] == pytest.approx(max(chroma.values()), abs=1e-6)

    # Few dense candidates, so that keyword-only passages (not ranked by Chroma) are returned:
    # their score is their stored vector's cosine too.
    monkeypatch.setattr(retrieval, "CANDIDATES", 3)
    few = {p.id for p in dense(railway).search(RUN_UID_QUESTION, k=3)}
    passages = railway.retriever.search(RUN_UID_QUESTION, k=3)  # from 3 dense and 3 keyword candidates
    keyword_only = [p for p in passages if p.id not in few]
    assert keyword_only
    stored = dict((p.id, v) for p, v in railway.store.get_with_vectors([p.id for p in passages]))
    for passage in passages:
        assert passage.score == pytest.approx(float(np.dot(stored[passage.id], question)), abs=1e-4)


def test_questions_with_query_syntax_are_searched_as_words(railway):
    for question in ['"RAILWAY_RUN_UID', "NEAR(volume backup) AND OR NOT *", "volume: -backups ^ (", "", "   ", "???"]:
        railway.retriever.search(question, k=3)  # no FTS5 syntax error reaches the user
    assert rank_of(railway.retriever.search('"RAILWAY_RUN_UID" AND', k=3), "RAILWAY_RUN_UID") == 1


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "alpha.md").write_text("# Alpha\n\n## Tuning\n\nSet ZORBLAX_WINDOW to widen the sync window on slow links.\n")
    (folder / "beta.md").write_text("# Beta\n\n## Limits\n\nUploads are capped at 2 GB per file on every plan.\n")
    (folder / "gamma.md").write_text("# Gamma\n\n## Codes\n\nThe error code QX-7731 means the signer declined.\n")
    return folder


def keyword_ids(desk, term: str) -> set[str]:
    return {hit.id for hit in desk.retriever.keywords.search_many([term], 20)[0]}


def assert_index_mirrors_store(desk) -> None:
    index = desk.retriever.keywords
    index.sync()
    indexed = {row[0] for row in index._connection().execute("SELECT id FROM ids")}
    assert indexed == desk.store.ids()


def test_the_keyword_index_follows_a_changed_and_a_deleted_file(services, docs):
    ingest(services, docs)
    old = keyword_ids(services, "ZORBLAX_WINDOW")
    assert len(old) == 1 and old <= services.store.ids()

    (docs / "alpha.md").write_text("# Alpha\n\n## Tuning\n\nSet QUIMBLE_DEPTH to deepen the sync queue.\n")
    ingest(services, docs)
    assert keyword_ids(services, "ZORBLAX_WINDOW") == set()
    assert rank_of(services.retriever.search("QUIMBLE_DEPTH", k=3), "QUIMBLE_DEPTH") == 1
    assert_index_mirrors_store(services)

    gamma = keyword_ids(services, "QX-7731")
    assert gamma
    (docs / "gamma.md").unlink()
    ingest(services, docs)
    assert not gamma & keyword_ids(services, "QX-7731")
    assert all(p.file != "gamma.md" for p in services.retriever.search("what does error QX-7731 mean", k=5))
    assert_index_mirrors_store(services)


def test_the_keyword_index_follows_an_ingest_by_another_desk(services, docs, monkeypatch):
    """Another process's ingest: a second Desk on the same data dir, its own Store and index."""
    import time
    from types import SimpleNamespace

    import app.core.docs.store as store_module
    from app.core.desk import Desk

    # As if the store's file were last written long ago, so the store trusts its file's time and
    # size to say nothing changed (its shortcut past asking Chroma): the other desk's writes
    # must still be seen.
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time_ns=lambda: time.time_ns() + 60 * 10**9))
    ingest(services, docs)
    services.store.fingerprint()
    assert services.store._known is not None  # the shortcut is in use
    old = keyword_ids(services, "QX-7731")  # this desk's index is built and in sync
    assert old
    (docs / "gamma.md").write_text("# Gamma\n\n## Codes\n\nThe error code QX-9902 means the envelope expired.\n")
    other = Desk(services.settings)
    ingest(other, docs)
    assert not old & keyword_ids(services, "QX-7731")
    assert rank_of(services.retriever.search("QX-9902", k=3), "QX-9902") == 1
    assert_index_mirrors_store(services)


def test_the_keyword_index_is_rebuilt_for_a_store_rebuilt_elsewhere(tmp_path, docs):
    """A data dir whose store is replaced by one built elsewhere (a restore, a synced folder)
    while the keyword index file of the old store stays: the index must not be trusted."""
    from app.core.desk import Desk
    from app.core.settings import load_settings

    def desk(name: str) -> Desk:
        return Desk(load_settings(environ={"FRONTDESK_HOME": str(tmp_path / name)}))

    here = desk("here")
    ingest(here, docs)
    assert keyword_ids(here, "ZORBLAX_WINDOW")  # builds <home>/keywords.sqlite3 for this store
    elsewhere_docs = tmp_path / "elsewhere-docs"
    elsewhere_docs.mkdir()
    (elsewhere_docs / "delta.md").write_text("# Delta\n\n## Ports\n\nSet PLONK_PORT to move the admin panel.\n")
    elsewhere = desk("elsewhere")
    ingest(elsewhere, elsewhere_docs)

    # A data dir not yet opened in this process (Chroma keeps a client per path): the other
    # store with this store's index file beside it.
    restored = tmp_path / "restored"
    shutil.copytree(elsewhere.settings.chroma_dir, restored / elsewhere.settings.chroma_dir.name)
    for suffix in ("", "-wal", "-shm"):  # the index as it stands, write-ahead log included
        if (tmp_path / "here" / f"keywords.sqlite3{suffix}").exists():
            shutil.copy(tmp_path / "here" / f"keywords.sqlite3{suffix}", restored / f"keywords.sqlite3{suffix}")
    with sqlite3.connect(restored / "keywords.sqlite3") as stale:
        assert stale.execute("SELECT count(*) FROM chunks WHERE chunks MATCH 'zorblax'").fetchone()[0] == 1
    after = desk("restored")
    assert keyword_ids(after, "ZORBLAX_WINDOW") == set()
    assert after.retriever.search("PLONK_PORT", k=1)[0].file == "delta.md"
    assert_index_mirrors_store(after)


def test_an_ingest_killed_between_write_and_cleanup_keeps_the_index_true_to_the_store(services, docs, monkeypatch):
    ingest(services, docs)
    keyword_ids(services, "ZORBLAX_WINDOW")
    (docs / "alpha.md").write_text("# Alpha\n\n## Tuning\n\nSet QUIMBLE_DEPTH to deepen the sync queue.\n")
    killed_before_cleanup(monkeypatch, services.store, lambda: ingest(services, docs))

    assert not services.store.fingerprint().settled  # the store says a write was cut short
    # Both versions of alpha.md are in the store now, and so in the index: it mirrors the store.
    assert keyword_ids(services, "ZORBLAX_WINDOW") and keyword_ids(services, "QUIMBLE_DEPTH")
    assert_index_mirrors_store(services)
    ingest(services, docs)  # repairs the store
    assert services.store.fingerprint().settled
    assert keyword_ids(services, "ZORBLAX_WINDOW") == set()
    assert_index_mirrors_store(services)


def test_a_damaged_index_file_is_rebuilt(services, docs):
    ingest(services, docs)
    path = services.settings.home / "keywords.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    fresh = KeywordIndex(services.store)
    assert {hit.id for hit in fresh.search_many(["ZORBLAX_WINDOW"], 5)[0]} <= services.store.ids()
    assert fresh.search_many(["ZORBLAX_WINDOW"], 5)[0]


STEPS = "\n".join(
    f"{n}. Open the {name} panel, check every field it shows against the values your team agreed on, "
    f"and only then press Continue so the wizard moves on to the next screen."
    for n, name in enumerate(["Project", "Region", "Billing", "Members", "Domains", "Variables", "Volumes", "Review"], 1)
)


def test_a_procedure_cut_by_the_chunker_comes_back_whole(services, tmp_path):
    docs = tmp_path / "steps"
    docs.mkdir()
    (docs / "migrate.md").write_text(f"# Migrating a workspace\n\n## Run the migration wizard\n\n{STEPS}\n\n## Afterwards\n\nCheck the audit log.\n")
    (docs / "other.md").write_text("# Other\n\n## Wizard\n\n9. A stray numbered line in another file about the migration wizard.\n")
    ingest(services, docs)
    chunks = sorted((p for p in services.store.get(sorted(services.store.ids())) if p.file == "migrate.md"
                     and p.heading.endswith("Run the migration wizard")), key=lambda p: p.start)
    assert len(chunks) >= 2, "the procedure should span more than one chunk"
    first, second = chunks[0], chunks[1]
    assert first.text.rstrip().splitlines()[-1][0].isdigit() and second.text.lstrip()[0].isdigit()

    services.retriever.keywords.sync()
    after = services.retriever.keywords.following([first.id])[first.id]
    assert (after.id, after.text, after.end) == (second.id, second.text, second.end)
    assert services.store.preceding(second).id == first.id  # and the other way, as the pipeline looks
    plain = Retriever(services.store, services.embedder, neighbours=False).search("how do I run the migration wizard", k=5)
    whole = services.retriever.search("how do I run the migration wizard", k=5)
    cut = next(p for p in plain if p.id == first.id)
    completed = next(p for p in whole if p.id == first.id)
    assert completed.text == first.text + "\n" + second.text
    assert (completed.file, completed.start, completed.end) == ("migrate.md", first.start, second.end)
    assert completed.score == cut.score  # the passage found is still the one scored


def test_passages_keep_the_stores_offsets_when_an_edit_moves_a_chunk(services, tmp_path):
    """An edit above a chunk moves it without changing its id: the index, which hands retrieval
    its passages, must move it too."""
    docs = tmp_path / "moved"
    docs.mkdir()
    page = "# Sync\n\n## About\n\nShort intro.\n\n## Offline edits\n\nEdits made offline are kept and merged when the device reconnects.\n"
    (docs / "sync.md").write_text(page)
    ingest(services, docs)
    before = {p.id: p for p in services.retriever.search("offline edits merged on reconnect", k=3)}
    (docs / "sync.md").write_text(page.replace("Short intro.", "A much longer introduction to how syncing works across devices."))
    ingest(services, docs)
    after = services.retriever.search("offline edits merged on reconnect", k=3)
    assert services.retriever.keywords.exact  # these passages came from the index
    kept = [p for p in after if p.id in before and p.start != before[p.id].start]
    assert kept  # a chunk kept its id and moved
    stored = {p.id: p for p in services.store.get([p.id for p in after])}
    for passage in after:  # every passage is where the store says it is
        assert (passage.start, passage.end, passage.text) == (stored[passage.id].start, stored[passage.id].end, stored[passage.id].text)
