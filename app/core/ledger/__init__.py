"""The local ledger: every turn, written once by the pipeline (`turns`: the SQLite table,
filters and summaries; `migrations`: its named, append-only schema changes), exported one
way (`export`), and the handoff tickets written from it (`handoff`)."""
