"""The SDK as a package: light to import, free of server code, configured from arguments or the
environment, documented method by method."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import loopllama
from loopllama import AsyncLoopLlama, LoopLlama, LoopLlamaError
from loopllama.client import resources, types
from loopllama.client._client import DEFAULT_BASE_URL
from tests.client.support import BASE_URL, FlakyTransport

CLIENT_DIR = Path(loopllama.__file__).parent / "client"


def test_importing_loopllama_imports_no_server_code():
    code = (
        "import sys, loopllama; from loopllama import LoopLlama, AsyncLoopLlama;"
        "heavy = {'fastapi', 'starlette', 'sqlalchemy', 'pydantic', 'alembic', 'anthropic',"
        " 'openai', 'uvicorn', 'yaml'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or"
        " m.startswith(('loopllama.api', 'loopllama.engine', 'loopllama.store'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_client_package_imports_only_itself_httpx_and_the_stdlib():
    allowed = {"httpx", "loopllama"} | set(sys.stdlib_module_names)
    for path in CLIENT_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("loopllama"):
                    assert name.startswith("loopllama.client"), f"{path.name} imports {name}"


def test_every_public_method_has_a_docstring():
    classes = [
        LoopLlama,
        AsyncLoopLlama,
        resources.Workflows,
        resources.AsyncWorkflows,
        resources.Runs,
        resources.AsyncRuns,
        resources.Keys,
        resources.AsyncKeys,
        resources.Webhooks,
        resources.AsyncWebhooks,
        resources.Usage,
        resources.AsyncUsage,
        *(getattr(types, name) for name in types.__all__ if inspect.isclass(getattr(types, name))),
    ]
    for cls in classes:
        assert cls.__doc__, cls
        for name, member in vars(cls).items():
            if name.startswith("_") or not callable(getattr(member, "fget", member)):
                continue
            assert inspect.getdoc(getattr(cls, name)), f"{cls.__name__}.{name}"


def test_the_version_is_exported():
    assert loopllama.__version__ and loopllama.__version__[0].isdigit()


def test_key_and_address_come_from_the_environment(monkeypatch):
    with pytest.raises(LoopLlamaError, match="LOOPLLAMA_API_KEY"):
        LoopLlama()
    monkeypatch.setenv("LOOPLLAMA_API_KEY", "ll_live_from_env")
    with LoopLlama() as client:
        assert client.api_key == "ll_live_from_env" and client.base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("LOOPLLAMA_BASE_URL", "https://llama.example.com/")
    with LoopLlama() as client:
        assert client.base_url == "https://llama.example.com"
    with LoopLlama(api_key="ll_live_arg", base_url="http://10.0.0.1:9000") as client:
        assert (client.api_key, client.base_url) == ("ll_live_arg", "http://10.0.0.1:9000")


def test_bad_options_are_refused():
    with pytest.raises(LoopLlamaError, match="Invalid base_url"):
        LoopLlama(api_key="k", base_url="localhost:8080")
    with pytest.raises(ValueError, match="max_retries"):
        LoopLlama(api_key="k", max_retries=-1)
    with pytest.raises(ValueError, match="either transport or http_client"):
        LoopLlama(api_key="k", transport=httpx.HTTPTransport(), http_client=httpx.Client())


def test_timeouts_default_and_override():
    with LoopLlama(api_key="k") as client:
        assert client.timeout == httpx.Timeout(30.0, connect=5.0)
        assert client.with_options(timeout=2).timeout == httpx.Timeout(2)
    with LoopLlama(api_key="k", timeout=None) as client:
        assert client.timeout == httpx.Timeout(None)


async def test_requests_carry_the_key_and_a_user_agent(app, api_key):
    transport = FlakyTransport(app)
    async with AsyncLoopLlama(
        api_key=api_key, base_url=BASE_URL, transport=transport, default_headers={"X-Team": "a"}
    ) as client:
        await client.workflows.list()
    (request,) = transport.requests
    assert request.headers["authorization"] == f"Bearer {api_key}"
    assert request.headers["user-agent"] == f"loopllama-python/{loopllama.__version__}"
    assert request.headers["x-team"] == "a"


async def test_a_given_http_client_is_used_and_left_open(app, api_key):
    http = httpx.AsyncClient(transport=FlakyTransport(app))
    async with AsyncLoopLlama(api_key=api_key, base_url=BASE_URL, http_client=http) as client:
        assert await client.workflows.list() == []
    assert not http.is_closed
    await http.aclose()
