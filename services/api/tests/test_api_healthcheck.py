"""`python -m ticketflow.api healthcheck` (the image's HEALTHCHECK) with nothing to probe: exit 1
and one line saying what it saw, quickly (a container runtime gives it a few seconds)."""

from __future__ import annotations

from ticketflow.testkit import assert_healthcheck_fails


def test_healthcheck_fails_when_nothing_answers() -> None:
    assert_healthcheck_fails("ticketflow.api", "TICKETFLOW_HTTP_PORT")
