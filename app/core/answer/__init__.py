"""Answering a question: the pipeline and what it decides with.

`pipeline` runs retrieve -> route -> draft -> check -> log and yields `events`; `router`
scores a question against the routing `policy` (the TOML file, parsed and validated);
`prompts` builds the local and frontier prompts; `extractive` builds the docs quote.
"""
