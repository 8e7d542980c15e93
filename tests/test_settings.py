"""Settings precedence: defaults < frontdesk.toml < FRONTDESK_* < CLI flags."""
from __future__ import annotations

import codecs
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


def test_the_config_file_in_the_home_given_by_flag_is_read(tmp_path, monkeypatch):
    """`--home DIR` means DIR/frontdesk.toml is that data dir's config, as $FRONTDESK_HOME does."""
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path / "env-home"))
    write_config((tmp_path / "env-home").mkdir() or tmp_path / "env-home", "top_k = 3\n")
    write_config((tmp_path / "flag-home").mkdir() or tmp_path / "flag-home", "top_k = 9\n")
    assert load_settings().general.top_k == 3
    settings = load_settings(flags={"home": str(tmp_path / "flag-home")})
    assert settings.general.top_k == 9 and settings.config_file == tmp_path / "flag-home" / "frontdesk.toml"


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


# --- the config file's encoding ---------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom", "utf-32"])
def test_config_saved_with_a_byte_order_mark_is_read(encoding):
    """Notepad's "UTF-8" has a BOM and its "Unicode" is UTF-16: the mark says which it is."""
    text = "top_k = 3\n[frontier]\nmodel = \"café\"\n"
    data = (codecs.BOM_UTF16_BE + text.encode("utf-16-be")) if encoding == "utf-16-be-bom" else text.encode(encoding)
    (Path.cwd() / "frontdesk.toml").write_bytes(data)
    settings = load_settings()
    assert settings.general.top_k == 3 and settings.frontier.model == "café"


@pytest.mark.parametrize("data", [
    "top_k = 3\n# café\n".encode("latin-1"),  # a stray non-UTF-8 byte
    "top_k = 3\n".encode("utf-16-le"),  # UTF-16 without its mark
], ids=["latin-1", "utf-16-without-bom"])
def test_config_that_is_not_utf8_is_refused_with_the_fix(cli, data):
    path = Path.cwd() / "frontdesk.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match="not UTF-8 text") as error:
        load_settings()
    assert str(path) in error.value.title and "save it as UTF-8" in error.value.fix
    result = cli("config")
    assert result.code == 2 and "save it as UTF-8" in result.err and "Traceback" not in result.err


# --- numbers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_naming_the_setting(value, monkeypatch):
    """nan compares false with everything, so it slipped past the minimum and disabled the budget."""
    write_config(Path.cwd(), f"[frontier]\nmonthly_budget_usd = {value}\n")
    with pytest.raises(ConfigError, match=r"'frontier.monthly_budget_usd' in .*frontdesk.toml.*finite"):
        load_settings()
    monkeypatch.setenv("FRONTDESK_FRONTIER_DAILY_BUDGET_USD", value)
    with pytest.raises(ConfigError, match=r"'frontier.daily_budget_usd' in \$FRONTDESK_FRONTIER_DAILY_BUDGET_USD"):
        load_settings(config=write_config(Path.cwd(), ""))
    with pytest.raises(ConfigError, match="'local.timeout' in the command line"):
        load_settings(flags={"local.timeout": value}, environ={})


def test_negative_budget_is_refused():
    with pytest.raises(ConfigError, match="'frontier.daily_budget_usd'.*below the minimum"):
        load_settings(flags={"frontier.daily_budget_usd": "-1"}, environ={})


def test_an_integer_setting_refuses_a_fraction_and_says_where_it_came_from(monkeypatch):
    """top_k = 2.5 used to become 2 without a word."""
    write_config(Path.cwd(), "top_k = 2.5\n")
    with pytest.raises(ConfigError, match=r"'top_k' in .*frontdesk.toml: expected a whole number, got 2.5"):
        load_settings()
    monkeypatch.setenv("FRONTDESK_TOP_K", "2.5")
    with pytest.raises(ConfigError, match=r"'top_k' in \$FRONTDESK_TOP_K: expected a whole number, got '2.5'"):
        load_settings(config=write_config(Path.cwd(), ""))
    with pytest.raises(ConfigError, match="'top_k' in the command line: expected a whole number"):
        load_settings(flags={"top_k": "2.5"}, environ={})


@pytest.mark.parametrize("raw", ["3", 3.0, "3.0", " 3 "])
def test_an_integer_setting_takes_a_whole_number_written_any_way(raw):
    value = load_settings(flags={"top_k": raw}, environ={}).general.top_k
    assert value == 3 and type(value) is int


def test_whole_float_in_the_config_file_is_an_integer():
    write_config(Path.cwd(), "top_k = 3.0\n")
    assert type(load_settings().general.top_k) is int


# --- the data dir --------------------------------------------------------------------------------

def test_data_dir_that_is_a_file_is_a_config_error(tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    monkeypatch.setenv("FRONTDESK_HOME", str(a_file))
    with pytest.raises(ConfigError, match=r"data dir .*not-a-dir is a file.*env FRONTDESK_HOME") as error:
        load_settings()
    assert "FRONTDESK_HOME" in error.value.fix
    monkeypatch.setenv("FRONTDESK_HOME", str(a_file / "below"))
    with pytest.raises(ConfigError, match="is inside .*not-a-dir, which is a file"):
        load_settings()


def test_daily_budget_setting_defaults_to_no_limit(monkeypatch):
    assert load_settings(environ={}).frontier.daily_budget_usd == 0.0
    monkeypatch.setenv("FRONTDESK_FRONTIER_DAILY_BUDGET_USD", "1.5")
    assert load_settings().frontier.daily_budget_usd == 1.5
