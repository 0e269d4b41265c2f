"""Schemathesis against the admin API's own OpenAPI description (``GET /api/openapi.json``), served by a
real gateway: every operation, with cases that fit the description (positive) and cases that break it
(negative). Checks: no 5xx; every status, content type and body as described; a request the description
calls invalid is refused with a 4xx.

Bounded for CI: ``MAX_EXAMPLES`` per operation and mode, no shrinking beyond hypothesis' defaults, a
fixed seed (``RELAYGATE_SCHEMA_SEED`` overrides it), printed with the failing case.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from relaygate.admin.openapi import openapi_document
from tests.helpers.gateway import ADMIN_KEY, Gateway

SEED = int(os.environ.get("RELAYGATE_SCHEMA_SEED", "20240609"))
MAX_EXAMPLES = 150
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG: dict[str, Any] = {
    "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt"]}],
    "prices": {"mock-gpt": {"input": "2.5", "output": 10}},
    "keys": [{"name": "config-key", "key": "sk-config-key-for-schema-tests"}],
}
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation in both modes; negative only where some input can break the description (a body,
    or a parameter that is more than any string)."""
    cases = []
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            params = [*item.get("parameters", ()), *operation.get("parameters", ())]
            breakable = "requestBody" in operation or any(p["schema"] != {"type": "string"} for p in params)
            cases += [(method.upper(), path, mode) for mode in (POSITIVE, NEGATIVE) if breakable or mode is POSITIVE]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = module_gateway_factory(Path(tmp_path_factory.mktemp("admin-schema")), CONFIG).start()
    with gateway.admin() as admin:  # something to read, change and test: a usage record, a second key
        admin.post("/api/keys", json={"name": "second"}).raise_for_status()
    yield gateway
    assert "Traceback" not in gateway.logs()


@pytest.fixture(scope="module")
def schema(gateway: Gateway) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(gateway.url + "/api/openapi.json")
    # The admin credential is sent with every case (the auth checks are test_admin_api's); a generated
    # Authorization header would only be a wrong key, and its negation would be undone by ours.
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_admin_api_keeps_its_description(gateway: Gateway, schema: schemathesis.BaseSchema, method: str, path: str,
                                         mode: GenerationMode) -> None:
    operation = schema[path][method]
    checks = [*CONFORMANCE, negative_data_rejection] if mode is NEGATIVE else CONFORMANCE
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    @seed(SEED)
    @settings(max_examples=MAX_EXAMPLES, database=None, deadline=None, print_blob=True,
              phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=gateway.url, headers=headers, checks=checks, timeout=15)

    try:
        run()
    except Exception as exc:
        exc.add_note(f"{method} {path} ({mode.value}): reproduce with RELAYGATE_SCHEMA_SEED={SEED}")
        raise
