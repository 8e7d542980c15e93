"""Settings precedence: defaults < frontdesk.toml < FRONTDESK_* < CLI flags."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.errors import ConfigError
from app.core.settings import load_settings


def write_config(folder: Path, text: str) -> Path:
    path = folder / "frontdesk.toml"
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_below(tmp_path, monkeypatch):
    write_config(Path.cwd(), 'top_k = 7\nchunk_tokens = 100\ndocs = "mydocs"\n[frontier]\nmodel = "from-file"\nmax_tokens = 111\n')
    monkeypatch.setenv("FRONTDESK_FRONTIER_MODEL", "from-env")
    monkeypatch.setenv("FRONTDESK_CHUNK_TOKENS", "90")
    settings = load_settings(flags={"chunk_tokens": "80"})
    assert settings.frontier.max_tokens == 111 and settings.sources["frontier.max_tokens"].endswith("frontdesk.toml")
    assert settings.frontier.model == "from-env" and settings.sources["frontier.model"] == "env FRONTDESK_FRONTIER_MODEL"
    assert settings.general.chunk_tokens == 80 and settings.sources["chunk_tokens"] == "command line"
    assert settings.general.top_k == 7 and settings.value("top_k") == 7
    assert settings.local.n_ctx == 2048 and settings.sources["local.n_ctx"] == "default"
    assert settings.docs == Path.cwd() / "mydocs"  # relative paths in the file resolve next to the file


def test_home_moves_with_frontdesk_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path / "elsewhere"))
    settings = load_settings()
    assert settings.home == tmp_path / "elsewhere"
    assert settings.chroma_dir == tmp_path / "elsewhere" / "chroma"
    assert settings.ledger_path.parent == tmp_path / "elsewhere"
    monkeypatch.delenv("FRONTDESK_HOME")
    assert "frontdesk" in str(load_settings().home)  # the platform's user data dir


@pytest.mark.parametrize("text,message", [
    ("top_k = [", "not valid TOML"),
    ("top_k = 'many'", "Bad value for setting 'top_k'"),
    ("colour = 'blue'", "Unknown setting 'colour'"),
    ("[egress]\nredact = 'sometimes'", "expected true or false"),
])
def test_malformed_config_names_the_problem(text, message):
    write_config(Path.cwd(), text)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("FRONTDESK_TOP_K", "five")
    with pytest.raises(ConfigError, match=r"\$FRONTDESK_TOP_K"):
        load_settings()


def test_config_command_shows_values_sources_and_never_the_key(cli, monkeypatch):
    write_config(Path.cwd(), "top_k = 9\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-123")
    result = cli("config", "--set", "local.n_ctx=4096")
    assert result.code == 0
    assert "sk-ant-secret-value-123" not in result.out
    assert "configured (env ANTHROPIC_API_KEY)" in result.out
    line = next(l for l in result.out.splitlines() if l.startswith("top_k "))
    assert "9" in line and "frontdesk.toml" in line
    as_json = json.loads(cli("config", "--json", "--set", "local.n_ctx=4096").out)
    assert as_json["settings"]["local.n_ctx"] == {"value": 4096, "source": "command line"}
    assert "sk-ant" not in json.dumps(as_json)


def test_key_in_the_users_config_file_is_used_but_not_shown(cli):
    write_config(Path.cwd(), '[frontier]\napi_key = "sk-ant-from-file-456"\n')
    settings = load_settings()
    assert settings.api_key == "sk-ant-from-file-456"
    assert "api_key" not in settings.values and "sk-ant" not in repr(settings)
    assert "sk-ant-from-file-456" not in cli("config").out


def test_malformed_config_is_a_one_line_cli_error(cli):
    write_config(Path.cwd(), "top_k = [")
    result = cli("config")
    assert result.code == 2 and "not valid TOML" in result.err and "Traceback" not in result.err


def test_every_option_is_a_field_of_exactly_one_typed_section():
    """Defaults live in OPTIONS only; the sections must name the same options, no more, no less."""
    from dataclasses import fields

    from app.core.settings import OPTIONS, SECTIONS

    section_options = {f"{prefix}.{f.name}" if prefix else f.name for prefix, cls in SECTIONS.items() for f in fields(cls)}
    assert section_options == {o.name for o in OPTIONS}
    settings = load_settings(environ={})
    for option in OPTIONS:
        section, _, name = option.name.rpartition(".")
        value = getattr(getattr(settings, section or "general"), name)
        assert value == settings.value(option.name)
