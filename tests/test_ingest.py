"""Incremental ingest against a real Chroma store and the real embedder."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from app.core.docs.ingest import FileIngested, IngestFinished, file_hash, ingest_folder
from app.core.errors import DocsFolderError
from conftest import KNOWLEDGE, ROOT, RAILWAY_DOCS, killed_before_cleanup


def run(services, root: Path):
    events = list(services.ingest(root))
    assert isinstance(events[-1], IngestFinished)
    return events[-1].summary, {e.file: e for e in events if isinstance(e, FileIngested)}


def assert_store_mirrors(services, root: Path):
    """No duplicates, no orphans: every record belongs to a file on disk with its current bytes."""
    stored = services.store.files(str(root.resolve()))
    for file, state in stored.items():
        path = root / file
        assert path.exists(), f"orphan chunks of deleted file {file}"
        assert state.shas == {file_hash(path.read_bytes())}, f"stale chunks for {file}"
    texts = Counter()
    for file, state in stored.items():
        for passage in services.store.get(sorted(state.ids)):
            texts[(passage.file, passage.start, passage.text)] += 1
    assert not [k for k, n in texts.items() if n > 1], "duplicate chunks"
    return stored


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "billing.md").write_text("# Billing\n\n## Plans\n\nTeam costs $12 per seat per month.\n\n## Refunds\n\nAnnual plans are refundable within 14 days.\n")
    (folder / "reset.txt").write_text("To reset your password, open Settings, then Security, then Reset password.\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "page.html").write_text("<html><body><nav>menu</nav><main><h1>Webhooks</h1><p>Webhooks are signed with HMAC-SHA256.</p></main></body></html>")
    return folder


def test_first_ingest_then_unchanged_embeds_nothing(services, docs):
    summary, files = run(services, docs)
    assert (summary.added, summary.failed, summary.unchanged) == (3, [], 0)
    assert summary.chunks_embedded == summary.chunks_total > 0
    assert files["sub/page.html"].status == "added"

    again, _ = run(services, docs)
    assert (again.added, again.changed, again.unchanged, again.chunks_embedded) == (0, 0, 3, 0)
    assert again.chunks_total == summary.chunks_total
    assert_store_mirrors(services, docs)


def test_changed_file_replaces_only_its_own_chunks(services, docs):
    run(services, docs)
    before = services.store.files(str(docs.resolve()))
    (docs / "billing.md").write_text((docs / "billing.md").read_text().replace("$12", "$15"))
    summary, files = run(services, docs)
    assert (summary.changed, summary.unchanged) == (1, 2)
    assert files["billing.md"].status == "changed"
    assert summary.chunks_embedded == 1  # only the edited section; the other sections reuse their vectors
    after = assert_store_mirrors(services, docs)
    assert after["reset.txt"].ids == before["reset.txt"].ids
    hit = services.retriever.search("how much is a Team seat?", k=1)[0]
    assert "$15" in hit.text and "$12" not in hit.text


def test_deleted_file_loses_its_chunks(services, docs):
    run(services, docs)
    (docs / "reset.txt").unlink()
    summary, files = run(services, docs)
    assert summary.removed == 1 and files["reset.txt"].status == "removed"
    assert "reset.txt" not in assert_store_mirrors(services, docs)


def test_renamed_file_is_not_embedded_twice(services, docs):
    run(services, docs)
    (docs / "reset.txt").rename(docs / "password-reset.txt")
    summary, files = run(services, docs)
    assert summary.renamed == 1 and summary.removed == 0 and summary.chunks_embedded == 0
    assert files["password-reset.txt"].reason == "from reset.txt"
    stored = assert_store_mirrors(services, docs)
    assert "password-reset.txt" in stored and "reset.txt" not in stored


def test_a_new_parser_version_rereads_every_file_once_without_re_embedding(services, docs, monkeypatch):
    import app.core.docs.ingest as ingest

    run(services, docs)
    monkeypatch.setattr(ingest, "PARSER_VERSION", b"a parser that changed\n")
    summary, _ = run(services, docs)
    assert (summary.changed, summary.unchanged, summary.chunks_embedded) == (3, 0, 0)
    assert summary.chunks_reused == summary.chunks_total > 0
    again, _ = run(services, docs)
    assert (again.changed, again.unchanged) == (0, 3)
    assert_store_mirrors(services, docs)


def test_crash_between_write_and_cleanup_is_repaired_by_the_next_run(services, docs, monkeypatch):
    run(services, docs)
    (docs / "billing.md").write_text("# Billing\n\nEverything is different now.\n")
    killed_before_cleanup(monkeypatch, services.store, lambda: run(services, docs))
    summary, files = run(services, docs)
    assert files["billing.md"].status == "changed"
    stored = assert_store_mirrors(services, docs)
    assert len(stored["billing.md"].ids) == 1


def test_killed_ingest_process_leaves_no_duplicates_or_orphans(tmp_path):
    """SIGKILL a real `frontdesk ingest` mid-run, run it again, and check the store."""
    home = tmp_path / "killed-home"
    docs = tmp_path / "many"
    shutil.copytree(KNOWLEDGE, docs / "a")
    shutil.copytree(KNOWLEDGE, docs / "b")  # enough files for several embedding batches
    env = {**os.environ, "FRONTDESK_HOME": str(home)}
    command = [sys.executable, "-m", "app", "ingest", "-v", str(docs)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    written = []
    for line in process.stdout:
        written.append(line)
        if line.startswith(("added", "renamed")):
            break  # at least one file is in the store; the rest are not
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert written and process.returncode == -signal.SIGKILL

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr
    assert " 0 failed" in finished.stdout

    from app.core.desk import Desk
    from app.core.settings import load_settings

    services = Desk(load_settings(environ={"FRONTDESK_HOME": str(home)}))
    stored = assert_store_mirrors(services, docs)
    assert len(stored) == 2 * len([p for p in KNOWLEDGE.rglob("*") if p.is_file()])


def test_bad_files_are_named_and_skipped_while_the_rest_ingests(services, docs):
    (docs / "empty.md").write_text("")
    (docs / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (docs / "latin1.txt").write_bytes("r\xe9sum\xe9".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a pdf body\n")
    (docs / "huge.txt").write_text("x " * (600 * 1024))
    (docs / "locked.md").write_text("# Secret\n\nText.\n")
    (docs / "locked.md").chmod(0)
    (docs / "notes.docx").write_bytes(b"PK\x03\x04 ignored: unsupported type")
    services.settings.values["max_file_mb"] = 1
    summary, files = run(services, docs)
    reasons = {f.file: f.reason for f in summary.failed}
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["logo.md"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "corrupt PDF" in reasons["broken.pdf"]
    assert "too large" in reasons["huge.txt"]
    if os.geteuid() != 0:  # root reads anything; the permission case only exists for users
        assert "cannot read" in reasons["locked.md"]
    assert "notes.docx" not in files
    assert summary.added >= 3 and not summary.ok
    assert services.retriever.search("reset my password", k=1)[0].file == "reset.txt"


def test_missing_and_empty_folders_raise_a_clear_error(services, tmp_path):
    with pytest.raises(DocsFolderError, match="not found"):
        run(services, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(DocsFolderError, match="No documents"):
        run(services, tmp_path / "empty")


def test_ingest_cli_exit_codes_and_messages(cli, docs, tmp_path):
    ok = cli("ingest", docs)
    assert ok.code == 0 and "3 added" in ok.out and "0 failed" in ok.out
    (docs / "bad.md").write_bytes(b"\x00\x01")
    partial = cli("ingest", docs)
    assert partial.code == 1
    assert "skipped bad.md: binary file" in partial.err
    missing = cli("ingest", tmp_path / "missing")
    assert missing.code == 2
    assert missing.err.startswith("error: Docs folder not found") and "Traceback" not in missing.err
    assert len(missing.err.strip().splitlines()) == 2  # the error and its fix
    (tmp_path / "void").mkdir()
    empty = cli("ingest", tmp_path / "void")
    assert empty.code == 2 and "No documents" in empty.err


def test_railway_docs_sample_ingests_front_matter_and_mdx(services, tmp_path):
    """A real third-party help centre: MDX tags stripped, front-matter titles as headings."""
    sample = tmp_path / "railway"
    sources = sorted((RAILWAY_DOCS / "content" / "docs" / "pricing").glob("*.md"))[:4]
    assert sources
    for source in sources:
        shutil.copy(source, sample / source.name) if sample.exists() else (sample.mkdir(), shutil.copy(source, sample / source.name))
    summary, _ = run(services, sample)
    assert summary.ok and summary.added == len(sources)
    hits = services.retriever.search("how is the Pro plan billed?", k=5)
    assert hits and all("<Banner" not in h.text for h in hits)
