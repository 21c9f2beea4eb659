"""POST /runs/batch: many runs in one request and one transaction, each checked on its own and
answered as POST /runs would have answered it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import queries, recording, schemas
from ..models import User
from ..schemas import MAX_BATCH_RUNS, RunBatchItem
from ..urls import external_url
from .errors import ApiError
from .inputs import request_hash


class KeyTaken(Exception):
    """A concurrent request claimed one of the batch's Idempotency-Keys first: roll back and retry."""


@dataclass(frozen=True)
class Item:
    """One run of the batch as sent: its body checked (or the faults that refuse it), its key and hash."""

    body: Any  # RunStartItem | RunRecordCompletedItem | RunRecordFailedItem, or None when refused
    faults: list[dict[str, str]] | None
    key: str | None
    digest: str  # of the body without its key, when it has a key (else "")


def envelope_fault(message: str) -> ApiError:
    return ApiError(422, "validation_failed", "The batch is not valid.", [{"field": "runs", "message": message}])


def items(value: Any) -> list[Item]:
    """The batch's runs, each checked as POST /runs checks its body; a bad envelope is a 422 whole."""
    if not isinstance(value, dict) or set(value) != {"runs"}:
        raise envelope_fault('the body must be an object with one field, "runs"')
    runs = value["runs"]
    if not isinstance(runs, list) or not runs:
        raise envelope_fault(f"must be a list of 1 to {MAX_BATCH_RUNS} runs")
    if len(runs) > MAX_BATCH_RUNS:
        raise envelope_fault(f"must be at most {MAX_BATCH_RUNS} runs; send the rest in another request")
    checked = []
    limit_values = schemas.current_limits()  # once, not for each of up to 500 runs
    for run in runs:
        # The hash is the one POST /runs takes of the same body, so a key works across both.
        try:
            body = schemas.parse(RunBatchItem, run, limit_values).root
        except schemas.InvalidBody as invalid:
            checked.append(Item(None, invalid.faults, None, ""))
            continue
        key = body.idempotency_key
        digest = request_hash({name: part for name, part in run.items() if name != "idempotencyKey"}) if key else ""
        checked.append(Item(body, None, key, digest))
    return checked


def refused(index: int, status: int, error: str, message: str, fields: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "status": status, "error": error, "message": message}
    if fields is not None:
        result["fields"] = fields
    return result


def named(index: int, status: int, run_id: str) -> dict[str, Any]:
    return {"index": index, "status": status, "id": run_id, "url": external_url("artifacts.detail", run_id=run_id)}


def record(user: User, batch: list[Item]) -> list[dict[str, Any]]:
    """Write the batch's valid runs (the caller commits) and say what became of each; KeyTaken when
    a concurrent request claimed one of its keys first."""
    used = queries.idempotent_run_ids(user, [item.key for item in batch if item.key])
    results: list[dict[str, Any]] = []
    prepared: list[recording.PreparedRun] = []
    claims: list[tuple[str, str, str]] = []
    for index, item in enumerate(batch):
        if item.faults is not None:
            results.append(refused(index, 422, "validation_failed", "Some fields are not valid.", item.faults))
            continue
        if item.key and item.key in used:
            digest, run_id = used[item.key]
            if digest != item.digest:
                results.append(refused(index, 409, "conflict",
                                       "This Idempotency-Key was already used for a different request."))
            else:
                results.append(named(index, 200, run_id))
            continue
        try:
            new = recording.new_run(user, item.body)
        except schemas.InvalidBody as error:
            results.append(refused(index, 422, "validation_failed", str(error), error.faults))
            continue
        prepared.append(new)
        if item.key:
            used[item.key] = (item.digest, new.id)  # a later run of this batch with the key is a replay
            claims.append((item.key, item.digest, new.id))
        results.append(named(index, 201, new.id))
    recording.write_new(user, prepared)
    if claims and len(recording.claim_keys(user, claims)) != len(claims):
        raise KeyTaken
    return results


def answer(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The response: a result per run in the request's order, and how many were created, replayed, refused."""
    out = schemas.BatchOut(
        results=[schemas.BatchResult.model_validate(result) for result in results],
        created=sum(result["status"] == 201 for result in results),
        replayed=sum(result["status"] == 200 for result in results),
        failed=sum(result["status"] >= 400 for result in results),
    )
    return out.model_dump(mode="json", exclude_none=True)
