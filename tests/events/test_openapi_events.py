"""The OpenAPI document describes the event routes: JSON pages, and the stream as SSE."""

from __future__ import annotations


async def test_event_routes_are_documented(anonymous):
    document = (await anonymous.get("/openapi.json")).json()
    events = document["paths"]["/v1/runs/{run_id}/events"]["get"]["responses"]
    assert {"200", "400", "401", "404"} <= set(events)
    page = events["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = document["components"]["schemas"][page]
    assert set(schema["properties"]) == {"data", "has_more"}
    stream = document["paths"]["/v1/runs/{run_id}/stream"]["get"]["responses"]
    assert {"200", "400", "401", "404"} <= set(stream)
    assert list(stream["200"]["content"]) == ["text/event-stream"]
    assert "step.delta" in stream["200"]["description"]
    assert "application/json" in stream["404"]["content"]
