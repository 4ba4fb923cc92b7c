"""A bounded schemathesis run against a live server on loopback (offline: the schema comes from the
server itself): every operation, valid and invalid data, a few examples each; returns the server errors
(status >= 500) found, as (requests sent, [(operation, status, body excerpt)])."""

from __future__ import annotations

from typing import Any


def fuzz(base: str, api_key: str, *, max_examples: int = 8) -> tuple[int, list[tuple[str, int, str]]]:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    found: list[tuple[str, int, str]] = []
    sent = [0]
    headers = {"X-API-Key": api_key}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode)

            @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(base_url=base, headers=headers, timeout=30)
                sent[0] += 1
                if response.status_code >= 500:
                    found.append((case.operation.label, response.status_code, response.text[:300]))

            try:
                run()
            except Exception as exc:  # an operation schemathesis cannot generate data for
                if "Unsatisfiable" not in type(exc).__name__:
                    raise
    return sent[0], found
