"""A decision whose answer does not come back in time: 503 "may have been applied", and the retry.

The fake workflow applies a decision whose reason carries `SLOW_ANSWER` at once and answers it only
on a signal, so the api's deadline passes with the update accepted: the approver is told that the
decision may have been applied and to retry the same request (`decision_outcome_unknown`,
`Retry-After`); the retry gets the first answer, never a second decision.
"""

from __future__ import annotations

import uuid

import httpx
from ticketflow.contracts import names
from ticketflow.testkit import eventually_async


async def test_a_decision_answered_late_is_503_outcome_unknown_and_the_retry_gets_it(
    settings, helpers, fake_worker, dev_env
) -> None:
    quick = settings.model_copy(update={"decide_timeout_s": 1.0})
    async with helpers.serve_app(quick) as api:
        ticket = helpers.submission()
        assert (await api.post("/tickets", json=ticket)).status_code == 202
        ticket_id = ticket["ticket_id"]

        async def waiting() -> bool:
            got = await api.get(f"/tickets/{ticket_id}")
            assert got.json()["status"] == "WAITING_APPROVAL", got.text
            return True

        await eventually_async(waiting, what="the ticket waiting for approval")
        url = f"/tickets/{ticket_id}/decision"
        decision = {"approved": True, "reason": f"ok {helpers.SLOW_ANSWER} {uuid.uuid4().hex}"}

        failed = await api.post(url, json=decision, headers=helpers.bearer())
        assert failed.status_code == 503, failed.text
        error = failed.json()["error"]
        assert error["code"] == "decision_outcome_unknown"
        assert "the decision may have been applied; retry the same request" in error["message"]
        assert int(failed.headers["retry-after"]) >= 1

        # It was applied: the ticket says so, and another decision is refused.
        view = (await api.get(f"/tickets/{ticket_id}")).json()
        assert view["decision"]["approved"] is True and view["decision"]["approver"] == "alice"
        applied = view["decision"]
        other = await api.post(url, json={"approved": False}, headers=helpers.bearer())
        assert other.status_code == 409, other.text

        # The workflow answers now; the client retries the same request as told.
        handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))
        await handle.signal(helpers.ANSWER_SIGNAL)

        async def retried() -> httpx.Response:
            again = await api.post(url, json=decision, headers=helpers.bearer())
            if again.status_code == 503:
                assert again.json()["error"]["code"] == "decision_outcome_unknown"
            assert again.status_code == 200, again.text
            return again

        first_answer = (await eventually_async(retried, what="the retry answered")).json()
        assert first_answer["decision"] == applied  # the first decision, decided_at included
        assert first_answer["status"] == "EXECUTING"
