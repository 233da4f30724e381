"""The OpenAPI document tells the truth: Schemathesis, with every check, finds nothing.

Schemathesis reads ``/openapi.json`` from a real server, generates requests
from it (valid and invalid ones, and sequences of them), and checks every
answer against the document: statuses, content types, headers and bodies;
that valid requests are accepted and invalid ones refused; that writes need
the token when the server has one. A fixed seed and a bounded number of
examples keep a run to well under a minute and the same from run to run.
What a schema cannot say (a body that is bytes yet not a video) is granted
in ``tests/schemathesis.toml``, and only there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.names import is_stored_name, stored_name_pattern
from tests.servers import REPO, ServerProcess

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKEN = "contract-test-token"


def run_schemathesis(server: ServerProcess, *extra: str) -> subprocess.CompletedProcess:
    command = [str(SCHEMATHESIS), "--config-file", str(REPO / "tests" / "schemathesis.toml"), "run",
               f"{server.url}/openapi.json", "--checks", "all", "--seed", "1", "--max-examples", "20",
               "--workers", "1", "--no-color", *extra]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def open_server(store_dir: Path):
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(store_dir)})
    yield server
    server.stop()


@pytest.fixture
def guarded_server(store_dir: Path):
    server = ServerProcess({"VIDEO_STORAGE_DIR": str(store_dir), "VIDEO_API_TOKEN": TOKEN})
    yield server
    server.stop()


def test_schemathesis_finds_nothing_against_a_server_with_open_writes(open_server):
    result = run_schemathesis(open_server)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schemathesis_finds_nothing_against_a_server_that_wants_a_token(guarded_server):
    result = run_schemathesis(guarded_server, "--header", f"Authorization: Bearer {TOKEN}")
    assert result.returncode == 0, result.stdout + result.stderr


def _operations(document: dict) -> dict[str, dict]:
    return {f"{method.upper()} {path}": operation for path, operations in document["paths"].items()
            for method, operation in operations.items()}


def test_an_open_server_asks_for_no_credentials(open_server):
    document = httpx.get(f"{open_server.url}/openapi.json").json()
    assert "securitySchemes" not in document.get("components", {})
    assert [label for label, operation in _operations(document).items() if "security" in operation] == []


def test_a_server_with_a_token_asks_for_it_on_writes_only(guarded_server):
    document = httpx.get(f"{guarded_server.url}/openapi.json").json()
    guarded = {label for label, operation in _operations(document).items() if "security" in operation}
    assert guarded == {"POST /video", "PUT /video/{name}", "PATCH /video/{name}", "DELETE /video/{name}",
                       "PUT /video/{name}/captions/{language}", "DELETE /video/{name}/captions/{language}",
                       "POST /uploads/", "HEAD /uploads/{upload_id}", "PATCH /uploads/{upload_id}", "DELETE /uploads/{upload_id}"}


def test_the_streaming_route_is_described_with_its_ranges_and_validators(open_server):
    operation = _operations(httpx.get(f"{open_server.url}/openapi.json").json())["GET /get_video_by_name/{name}"]
    assert {"Range", "If-Range", "If-None-Match", "If-Match"} <= {p["name"] for p in operation["parameters"]}
    assert {"200", "206", "304", "400", "404", "412", "416"} <= set(operation["responses"])


_NAME_PATTERN = re.compile(stored_name_pattern())


@given(st.text(max_size=12))
def test_the_name_pattern_accepts_exactly_the_names_the_store_takes(name):
    assert bool(_NAME_PATTERN.search(name)) == is_stored_name(name)
