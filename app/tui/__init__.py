"""The Frontdesk terminal app (Textual). A thin front end over `app.core`.

Importing this package must stay cheap: nothing here imports torch, Chroma or llama.cpp;
the screens reach the core through `FrontdeskApp.desk` (the core's one handle, from
`app.core`, its public face) inside workers.
"""
