"""Ingest and search benchmark: the project's code against raw sentence-transformers + Chroma.

    .venv/bin/python bench/ingest.py [--docs ../shared/datasets/railway-docs] [--queries 200]

Prints, all measured in this run (the machines are shared and noisy, so ratios matter):
 (a) ingest chunks/s / raw encode chunks/s of the same chunk texts      (goal >= 0.85)
 (b) re-ingest of the unchanged folder / first ingest                   (goal <= 0.05)
 (c) p50/p95 search latency through Retriever / raw embed + Chroma query (goal <= 1.3)
 (d) peak memory (max RSS) of the process
Model loading is excluded from both sides of (a) and (c): both use a loaded model. For (a)
the two sides alternate (ingest, raw, ingest into a fresh store, raw) and are averaged.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.desk import Desk  # noqa: E402
from app.core.docs.ingest import IngestFinished  # noqa: E402
from app.core.settings import load_settings  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=ROOT.parent / "shared" / "datasets" / "railway-docs")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    def fresh_services() -> Desk:
        home = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
        return Desk(load_settings(environ={"FRONTDESK_HOME": str(home)}))

    def ingest(services: Desk) -> tuple[float, object]:
        started = time.perf_counter()
        summary = next(e.summary for e in services.ingest(args.docs) if isinstance(e, IngestFinished))
        return time.perf_counter() - started, summary

    services = fresh_services()
    services.embedder.load()  # both sides start with a loaded model
    from sentence_transformers import SentenceTransformer

    from app.core.docs.embeddings import bundled_model_path

    raw_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    raw_model.max_seq_length = services.embedder.max_seq_length

    def raw_encode(texts: list[str]) -> float:
        started = time.perf_counter()
        raw_model.encode(texts, batch_size=services.embedder.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - started

    # Ingest, raw, ingest (into a fresh store), raw: alternating passes, averaged, so load
    # drift on a shared machine hits both sides alike. The raw side encodes the very texts
    # ingest embedded (heading line + chunk), read back from the store.
    first_seconds, summary = ingest(services)
    chunks = summary.chunks_embedded
    collection = services.store._collection
    records = collection.get(include=["documents", "metadatas"])
    texts = [f"{m['heading']}\n{d}" if m["heading"] else d for d, m in zip(records["documents"], records["metadatas"])]
    raw_times = [raw_encode(texts)]
    second_seconds, _ = ingest(fresh_services())
    raw_times.append(raw_encode(texts))
    ingest_seconds = (first_seconds + second_seconds) / 2
    raw_seconds = sum(raw_times) / 2

    started = time.perf_counter()
    again = next(e.summary for e in services.ingest(args.docs) if isinstance(e, IngestFinished))
    reingest_seconds = time.perf_counter() - started
    assert again.chunks_embedded == 0

    questions_file = ROOT / "bench" / "data" / "railway_questions.jsonl"
    questions = [json.loads(line)["question"] for line in questions_file.read_text().splitlines() if line.strip()]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]
    ours, raw = [], []
    for question in questions:  # interleaved so drift on a shared machine hits both sides alike
        t = time.perf_counter()
        services.retriever.search(question, k=5)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        vector = raw_model.encode([question], normalize_embeddings=True)
        collection.query(query_embeddings=vector, n_results=5)
        raw.append(time.perf_counter() - t)

    ingest_rate, raw_rate = chunks / ingest_seconds, len(texts) / raw_seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("(a) ingest chunks/s ÷ raw encode chunks/s", f"{ingest_rate:.1f} / {raw_rate:.1f} = **{ingest_rate / raw_rate:.2f}**", "≥ 0.85"),
        ("(b) re-ingest unchanged ÷ first ingest", f"{reingest_seconds:.2f} s / {ingest_seconds:.1f} s = **{reingest_seconds / ingest_seconds:.3f}**", "≤ 0.05"),
        ("(c) search p50 ours ÷ raw", f"{1000 * statistics.median(ours):.1f} ms / {1000 * statistics.median(raw):.1f} ms = **{statistics.median(ours) / statistics.median(raw):.2f}**", "≤ 1.3"),
        ("(c) search p95 ours ÷ raw", f"{1000 * percentile(ours, .95):.1f} ms / {1000 * percentile(raw, .95):.1f} ms = **{percentile(ours, .95) / percentile(raw, .95):.2f}**", "≤ 1.3"),
        ("(d) peak memory (max RSS)", f"{peak_mb:.0f} MB", ""),
    ]
    print(f"Docs: {args.docs} — {len(list(summary.root.rglob('*.md')))} Markdown files, {chunks} chunks; {len(questions)} queries\n")
    print("| measure | result | goal |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
