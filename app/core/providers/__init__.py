"""The models that write answers, behind one small interface (`base.Provider`).

`local` is the on-device tier: a GGUF served by `local_worker` (a supervised
llama_cpp.server child) or by any OpenAI-compatible server at `local.url`, spoken to
through `openai_compat`. `anthropic` is the frontier. `pricing` turns token usage into
dollars. Adding a provider is one file.
"""
