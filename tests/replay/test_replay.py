"""The replay corpus: every stored TicketWorkflow history replays against today's workflow code.

Histories are captured from real runs by `uv run python scripts/capture_histories.py` and kept for
as long as workflows of their version may still run (docs/compatibility.md). A change that alters
the commands a workflow emits for an old history fails here with a NondeterminismError, not in
production. The patch mechanism itself is shown on the v1 -> v2 change (patch
``classification-memo``): the same change made without ``workflow.patched`` breaks every v1
history that classified, and v2 histories cannot be replayed by v1 code (no rollback past it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.history import history_payloads
from ticketflow.contracts.models import (
    Classification,
    ModelTier,
    TicketInput,
    TicketOutcome,
    TicketStatus,
)
from ticketflow.core_worker import _decision
from ticketflow.core_worker.patches import PATCH_PRIMARY_RECHECK
from ticketflow.core_worker.workflow import (
    PATCH_CLASSIFICATION_MEMO,
    PATCH_INTAKE_CHECK,
    PATCH_LEAN_TICKET,
    PATCH_ROBUST_ENDS,
    TicketWorkflow,
)

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "histories" / names.TICKET_WORKFLOW
FILES = sorted(HISTORIES.glob("*.json"))
NAME = re.compile(r"^(v\d+)-([a-z0-9-]+)$")
CAPTURE = "uv run python scripts/capture_histories.py"
# The version that introduced each patch: its histories, and later ones, carry the marker.
PATCHES = {
    "v2": PATCH_CLASSIFICATION_MEMO,
    "v3": PATCH_ROBUST_ENDS,
    "v4": PATCH_PRIMARY_RECHECK,
    "v5": PATCH_INTAKE_CHECK,
    "v6": PATCH_LEAN_TICKET,
}


def _capture_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ticketflow_capture_histories", ROOT / "scripts" / "capture_histories.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def version_of(path: Path) -> int:
    match = NAME.match(path.stem)
    assert match, f"{path.name}: histories are named <version>-<case>.json"
    return int(match.group(1)[1:])


def patch_markers(h: WorkflowHistory) -> set[str]:
    found = set()
    for e in h.events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = e.marker_recorded_event_attributes
            if attrs.marker_name == "core_patch":
                data = attrs.details["patch-data"].payloads[0].data
                found.add(json.loads(data)["id"])
    return found


def workflow_input(h: WorkflowHistory) -> TicketInput:
    started = h.events[0].workflow_execution_started_event_attributes
    inp = DATA_CONVERTER.payload_converter.from_payloads(started.input.payloads, [TicketInput])[0]
    assert isinstance(inp, TicketInput)
    return inp


def classified(h: WorkflowHistory) -> bool:
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in h.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return any(
        e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and scheduled[e.activity_task_completed_event_attributes.scheduled_event_id]
        == names.CLASSIFY
        for e in h.events
    )


# ---- the corpus replays -----------------------------------------------------------------------


def _summary(failure: BaseException) -> str:
    """The failure messages inside a core activation failure, without the stack traces."""
    found = re.findall(r'message: "((?:[^"\\]|\\.)*)"', str(failure))
    return " <- ".join(m.replace("\\n", " ") for m in found) or str(failure)[:500]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
async def test_history_replays_against_todays_code(path: Path) -> None:
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history(path), raise_on_replay_failure=False)
    if result.replay_failure is None:
        return
    summary = _summary(result.replay_failure)
    if "decoding" in summary:
        todo = (
            "A payload model changed incompatibly, so a stored payload no longer decodes: see "
            "`uv run pytest libs/contracts/tests -m compat` for the model and field."
        )
    else:
        todo = (
            "A change that alters the commands of a running workflow (a new or removed activity, "
            "timer, upsert, memo...) must go behind `workflow.patched(...)`."
        )
    pytest.fail(
        f"{path.name} no longer replays against today's TicketWorkflow: {summary}\n{todo} See "
        "docs/compatibility.md. Never delete or re-capture an old history to make this pass.",
        pytrace=False,
    )


def test_corpus_covers_every_path_of_the_current_version() -> None:
    script = _capture_script()
    versions = {path.stem.split("-", 1)[0] for path in FILES}
    assert versions <= set(script.VERSIONS), (
        f"histories of unknown versions {sorted(versions - set(script.VERSIONS))}: every version "
        "in the corpus is listed in VERSIONS of scripts/capture_histories.py"
    )
    missing_versions = sorted(set(script.VERSIONS) - versions)
    assert not missing_versions, (
        f"no histories of {missing_versions}: histories of a released version stay in the "
        "corpus until its last workflow is gone (docs/compatibility.md, 'Retiring a patch')"
    )
    missing = [
        f"{script.CURRENT_VERSION}-{case.name}.json"
        for case in script.CASES
        if not (HISTORIES / f"{script.CURRENT_VERSION}-{case.name}.json").exists()
    ]
    assert not missing, f"missing {missing}: run `{CAPTURE}`"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_history_carries_the_patch_markers_of_its_version(path: Path) -> None:
    """A history's name must tell the truth about the code that wrote it."""
    h, version = history(path), version_of(path)
    markers = patch_markers(h)
    for introduced, patch in PATCHES.items():
        if version < int(introduced[1:]):
            assert patch not in markers, f"{path.name} has {patch}, introduced in {introduced}"
        elif patch == PATCH_CLASSIFICATION_MEMO and classified(h):
            assert patch in markers, f"{path.name} classified but has no {patch} marker"
        elif patch == PATCH_INTAKE_CHECK:
            # Asked only for a ticket accepted without the read model: no flag, no marker.
            owed = workflow_input(h).intake_check
            assert (patch in markers) == owed, (
                f"{path.name}: intake_check={owed}, markers {markers}"
            )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_payload_in_the_history_decodes_into_todays_models(path: Path) -> None:
    """Old-shape payloads as Temporal stored them, through the real data converter."""
    h = history(path)
    items = list(history_payloads(h.events))
    assert items, f"{path.name}: no payloads found"
    converter = DATA_CONVERTER.payload_converter
    for item in items:
        try:
            value = converter.from_payloads([item.payload], [item.type])[0]
        except Exception as err:
            raise AssertionError(
                f"{path.name} event {item.event_id} ({item.where}): a stored payload no longer "
                f"decodes into {item.type.__name__}: {err}"
            ) from err
        assert isinstance(value, item.type), f"{item.where}: got {type(value).__name__}"


# ---- the patch mechanism, shown on v1 -> v2 ----------------------------------------------------


@workflow.defn(name=names.TICKET_WORKFLOW, sandboxed=False)
class UnpatchedTicketWorkflow(TicketWorkflow):
    """The v2 change made carelessly: the memo upsert without `workflow.patched`."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        return await super().run(inp)

    def _publish_classification(self, classification: Classification) -> None:
        workflow.upsert_memo({names.MEMO_CLASSIFICATION: classification})


@workflow.defn(name=names.TICKET_WORKFLOW, sandboxed=False)
class V1TicketWorkflow(TicketWorkflow):
    """The code before the v2 change (what a rollback would run)."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        return await super().run(inp)

    def _publish_classification(self, classification: Classification) -> None:
        return None


@workflow.defn(name=names.TICKET_WORKFLOW, sandboxed=False)
class DeprecatedPatchTicketWorkflow(TicketWorkflow):
    """Retiring the patch, step 1: `deprecate_patch` once no v1 workflow can be replayed."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        return await super().run(inp)

    def _publish_classification(self, classification: Classification) -> None:
        workflow.deprecate_patch(PATCH_CLASSIFICATION_MEMO)
        workflow.upsert_memo({names.MEMO_CLASSIFICATION: classification})


def _classified(version: str) -> list[Path]:
    return [p for p in FILES if p.stem.startswith(f"{version}-") and classified(history(p))]


@pytest.mark.parametrize("path", _classified("v1"), ids=lambda p: p.stem)
async def test_the_change_without_the_patch_breaks_v1_histories(path: Path) -> None:
    replayer = Replayer(workflows=[UnpatchedTicketWorkflow], data_converter=DATA_CONVERTER)
    with pytest.raises(workflow.NondeterminismError, match="ModifyWorkflowProperties"):
        await replayer.replay_workflow(history(path))


@pytest.mark.parametrize("path", _classified("v2"), ids=lambda p: p.stem)
async def test_v1_code_cannot_replay_v2_histories(path: Path) -> None:
    replayer = Replayer(workflows=[V1TicketWorkflow], data_converter=DATA_CONVERTER)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(history(path))


def test_the_patch_is_shown_on_enough_histories() -> None:
    assert len(_classified("v1")) >= 5 and len(_classified("v2")) >= 5


@pytest.mark.parametrize("path", _classified("v2"), ids=lambda p: p.stem)
def test_v2_publishes_the_classification_in_the_memo(path: Path) -> None:
    """What v2 is for: visibility shows the classification the agent returned."""
    items = list(history_payloads(history(path).events))
    convert = DATA_CONVERTER.payload_converter.from_payloads
    results = [i for i in items if i.where == f"activity {names.CLASSIFY} result"]
    memos = [i for i in items if i.where == f"memo {names.MEMO_CLASSIFICATION}"]
    assert len(memos) == 1, f"{path.name}: expected one classification memo upsert"
    assert convert([memos[0].payload], [Classification]) == convert(
        [results[-1].payload], [Classification]
    )


# ---- retiring the patch (docs/compatibility.md) -------------------------------------------------


@pytest.mark.parametrize("path", _classified("v2"), ids=lambda p: p.stem)
async def test_retiring_step_1_deprecate_patch_still_replays_v2(path: Path) -> None:
    replayer = Replayer(workflows=[DeprecatedPatchTicketWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history(path))


async def test_retiring_step_1_ends_v1_replay() -> None:
    """So v1 histories leave the corpus in the commit that deprecates the patch, not before."""
    replayer = Replayer(workflows=[DeprecatedPatchTicketWorkflow], data_converter=DATA_CONVERTER)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(history(_classified("v1")[0]))


async def test_dropping_the_patch_call_outright_breaks_v2_histories() -> None:
    """Why retiring takes two steps: a patch marker with no patched()/deprecate_patch() call."""
    replayer = Replayer(workflows=[UnpatchedTicketWorkflow], data_converter=DATA_CONVERTER)
    with pytest.raises(workflow.NondeterminismError, match="patch marker"):
        await replayer.replay_workflow(history(_classified("v2")[0]))


# ---- v4: the primary asked again after a fallback answer ---------------------------------------


@workflow.defn(name=names.TICKET_WORKFLOW, sandboxed=False)
class UnsandboxedTicketWorkflow(TicketWorkflow):
    """Today's code outside the sandbox, so a test can swap what its modules call."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        return await super().run(inp)


class _RecheckUnguarded:
    """`temporalio.workflow` as `_decision` sees it, with `patched(v4-primary-recheck)` always
    true: the v4 change made without its patch."""

    def __getattr__(self, name: str) -> object:
        return getattr(workflow, name)

    @staticmethod
    def patched(patch_id: str) -> bool:
        return patch_id == PATCH_PRIMARY_RECHECK or workflow.patched(patch_id)


FELL_BACK_BEFORE_V4 = [p for p in FILES if p.stem.endswith("-fallback") and version_of(p) < 4]


@pytest.mark.parametrize("path", FELL_BACK_BEFORE_V4, ids=lambda p: p.stem)
async def test_the_recheck_without_the_patch_breaks_older_fallback_histories(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old tickets that fell back keep handing the fallback's answer to a human: today's code
    replays them (the corpus test above) only because the re-ask is behind the patch."""
    replayer = Replayer(workflows=[UnsandboxedTicketWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history(path))  # guarded: the old path
    monkeypatch.setattr(_decision, "workflow", _RecheckUnguarded())
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(history(path))


def test_v4_primary_recheck_history_was_decided_on_the_primary() -> None:
    """What v4 is for, as captured: the fallback answered, the primary was asked again and
    answered, and the ticket was auto-approved without a human."""
    path = HISTORIES / "v4-primary-recheck.json"
    items = list(history_payloads(history(path).events))
    [result] = [i for i in items if i.where == f"workflow {names.TICKET_WORKFLOW} result"]
    out = DATA_CONVERTER.payload_converter.from_payloads([result.payload], [TicketOutcome])[0]
    assert out.status == TicketStatus.RESOLVED and out.decision and out.decision.auto
    assert out.classification and out.classification.tier == ModelTier.PRIMARY
    assert [(c.activity, c.tier.value, c.ok) for c in out.agent_calls] == [
        (names.CLASSIFY, "primary", False),
        (names.CLASSIFY, "fallback", True),
        (names.DRAFT_REPLY, "fallback", True),
        (names.CLASSIFY, "primary", True),
        (names.DRAFT_REPLY, "primary", True),
    ]


def _shape(path: Path) -> tuple[int, list[str], list[str], list[str]]:
    """(workflow tasks completed, activity tasks scheduled, TicketStatus upserts, local activity
    markers) of a history."""
    h = history(path)
    tasks, scheduled, statuses, local = 0, [], [], []
    for e in h.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(e.activity_task_scheduled_event_attributes.activity_type.name)
        elif e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
            if names.TICKET_STATUS_SA in fields.indexed_fields:
                payload = fields.indexed_fields[names.TICKET_STATUS_SA]
                statuses.append(json.loads(payload.data))
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            if e.marker_recorded_event_attributes.marker_name == "core_local_activity":
                local.append("local")
    return tasks, scheduled, statuses, local


def test_v6_asks_less_of_the_server_for_the_same_ticket() -> None:
    """What v6 is for, on the same small auto-approved refund: two workflow tasks and two
    activity tasks fewer (the refund and the reply are local activities), and TicketStatus
    upserted once per task with the status the ticket then waits in."""
    v5 = _shape(HISTORIES / "v5-small-refund.json")
    v6 = _shape(HISTORIES / "v6-small-refund.json")
    assert v5[0] == 6 and v6[0] == 4
    assert v5[1] == [names.CLASSIFY, names.DRAFT_REPLY, names.ISSUE_REFUND, names.SEND_REPLY,
                     names.RECORD_OUTCOME]  # fmt: skip
    assert v6[1] == [names.CLASSIFY, names.DRAFT_REPLY, names.RECORD_OUTCOME]
    assert v6[3] == ["local", "local"]
    assert v5[2] == ["RECEIVED", "CLASSIFYING", "DRAFTING", "EXECUTING", "RESOLVED"]
    assert v6[2] == ["CLASSIFYING", "DRAFTING", "RESOLVED"]
    # The approval queue still lists a ticket while it waits for a human.
    assert "WAITING_APPROVAL" in _shape(HISTORIES / "v6-approval.json")[2]
