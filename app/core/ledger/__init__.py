"""The local ledger: every turn, written once by the pipeline (`turns`: the SQLite table, its
named append-only migrations, filters and summaries) and exported one way (`export`)."""
