"""Property tests of the query APIs against their own OpenAPI document (schemathesis).

A live otlpd with the known data set loaded; for every operation in
/api/openapi.json schemathesis generates valid requests and invalid ones
(which must be rejected with a 4xx), and checks every response: never a
server error, a documented status code and content type, a body that matches
the documented schema. Path parameters of valid requests are half the time
names and ids that exist, so the 200 bodies are checked too, not only 404s.

Generation goes through schemathesis' Python API (``APIOperation.as_strategy``
under ``hypothesis.given``) with one pytest test per operation and mode: its
lazy pytest loader (``schemathesis.pytest.from_fixture``) does not run on
pytest 9.2 (it sets ``Node._nodeid``, which pytest no longer has).

``positive_data_acceptance`` is not run: the document describes times,
durations and ids as free strings (each has several accepted spellings), so a
schema-valid string can still be a bad parameter, and a 400 is right for it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otlpd.query.openapi import document
from tests.store import dataset
from tests.store.support import store_config
from tests.support.process import Otlpd

PATHS = sorted(document()["paths"])


def valid_as_sent(path: str, url: str) -> bool:
    """Whether the query string that went out satisfies the document (read as the server reads it).

    Schemathesis 4.32 sometimes "negates" a parameter into a value that is still valid once on
    the wire: ``limit=`` for an optional integer with ``allowEmptyValue`` (which it models as
    ``anyOf: [integer, enum [""]]``), a number for an array of strings. Accepting those is right.
    """
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    for p in document()["paths"][path]["get"].get("parameters", []):
        if p["in"] != "query":
            continue
        values = query.get(p["name"])
        if values is None:
            if p.get("required"):
                return False
            continue
        schema = p["schema"]
        if schema.get("type") != "array" and len(values) > 1:
            return False
        for value in values:
            if value == "" and p.get("allowEmptyValue"):
                continue
            if schema.get("type") == "integer":
                if not value.isascii() or not value.lstrip("+-").isdigit():
                    return False
                if not schema.get("minimum", -(2**63)) <= int(value) <= schema.get("maximum", 2**63):
                    return False
            elif value not in schema.get("enum", [value]):
                return False
    return True


@schemathesis.check
def rejects_invalid_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """``negative_data_rejection``, except for requests that are valid as they were sent."""
    try:
        return negative_data_rejection(ctx, response, case)  # type: ignore[no-any-return]
    except AcceptedNegativeData:
        if valid_as_sent(case.operation.path, response.request.url):
            return None
        raise


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    rejects_invalid_data,
]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Otlpd, dataset.Dataset]]:
    with Otlpd(store_config("db/otlpd.duckdb")) as otlpd:
        data = dataset.load(otlpd)
        yield otlpd, data
        assert otlpd.terminate() == 0


@pytest.fixture(scope="module")
def api(live: tuple[Otlpd, dataset.Dataset]) -> Any:
    otlpd, _ = live
    loaded = schemathesis.openapi.from_url(f"{otlpd.admin}/api/openapi.json", wait_for_schema=10)
    loaded.validate()  # the served document is valid OpenAPI 3.0
    loaded.config.update(base_url=otlpd.admin)
    return loaded


def test_served_document_is_the_one_tested_and_lists_every_route(
    api: Any, live: tuple[Otlpd, dataset.Dataset]
) -> None:
    assert api.raw_schema == document()
    assert api.raw_schema["openapi"].startswith("3.0.")
    assert sorted(api.raw_schema["paths"]) == PATHS
    assert len(PATHS) == 12
    operation_ids = [op["get"]["operationId"] for op in api.raw_schema["paths"].values()]
    assert len(set(operation_ids)) == len(operation_ids)


def _negatable(path: str) -> bool:
    """Whether an operation has a parameter a request can get wrong by the document alone."""
    constrained = ("enum", "minimum", "maximum", "pattern")
    for p in document()["paths"][path]["get"].get("parameters", []):
        if (p["in"] == "query" and p.get("required")) or any(k in p["schema"] for k in constrained):
            return True
    return False


CASES = [(path, GenerationMode.POSITIVE) for path in PATHS] + [
    (path, GenerationMode.NEGATIVE) for path in PATHS if _negatable(path)
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("path", "mode"), CASES, ids=[f"{p}-{m.value}" for p, m in CASES])
def test_operation_conforms_to_the_document(
    api: Any, live: tuple[Otlpd, dataset.Dataset], path: str, mode: GenerationMode
) -> None:
    _, data = live
    operation = api[path]["GET"]
    known = {
        "service": ["frontend", "backend", "no-such-service"],
        "traceId": [*data.traces.values(), data.traces["A"].upper(), data.traces["C"].lstrip("0")],
        "name": [*dataset.METRIC_NAMES, "no.such.metric"],
    }
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        path_names = [p.name for p in operation.path_parameters]
        takes_service = any(p.name == "service" for p in operation.query)

        def existing(draw: tuple[Any, dict[str, str], bool]) -> Any:
            """The generated case with names and ids that exist; ``only`` drops its other parameters."""
            case, values, only = draw
            if path_names:
                case.path_parameters = {n: values[n] for n in path_names}
            if takes_service:
                case.query = {"service": values["service"]} if only else {**(case.query or {}), **values}
            return case

        values = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in known.items() if k in path_names})
        if takes_service:
            values = st.fixed_dictionaries({"service": st.sampled_from(known["service"])})
        if path_names or takes_service:
            strategy = st.one_of(strategy, st.tuples(strategy, values, st.booleans()).map(existing))
    statuses: list[int] = []

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS)
        statuses.append(response.status_code)

    run()
    assert statuses, "no request was made"
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses), statuses
    elif path in ("/api/v1/services", "/api/v1/metrics", "/api/services"):
        assert set(statuses) == {200}
    else:
        assert 200 in statuses, f"no generated request for {path} succeeded: {sorted(set(statuses))}"
