"""The publish state in the subscribers' DynamoDB table, for `[subscribers] dynamodb_table`: what `publish` has
deployed and emailed (scheduler.State keeps the same in SQLite), and the lease that keeps two publishers on two
machines (the publish Lambda, a GitHub Actions run, an author's laptop) from deploying or sending at once.

Items (single table; deploy/README.md, "DynamoDB: one table"):

    setting        PK = PUBLISH   SK = KEY#<key>      value, changed          (the deployed site's fingerprint)
    public issue   PK = PUBLISH   SK = ISSUE#<slug>   published_at, sent_at, send_state, note, changed
    publish lease  PK = LOCK      SK = PUBLISH        owner, host, pid, since, expires (epoch seconds)

An issue is recorded public with `attribute_not_exists(PK)` (the first publisher to see it wins, as SQLite's
INSERT OR IGNORE). The lease is taken with a put conditional on there being none or an expired one, renewed by a
thread every third of its life while the publish runs, and deleted (conditional on its owner) at the end: a
crashed holder's lease runs out after LEASE_SECONDS. Lease times are the real wall clock (clock.shared_seconds):
machines must agree on them, and a fixed PUBLISHER_NOW would never let a lease expire.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .. import clock
from ..config import Config
from ..errors import PublisherError
from .dynamodb import DynamoDBStore, _s

log = logging.getLogger(__name__)

PARTITION = "PUBLISH"
LOCK_KEY = {"PK": {"S": "LOCK"}, "SK": {"S": "PUBLISH"}}
LEASE_SECONDS = 300.0  # renewed every 100 s while held; how long a crashed holder blocks the next publish


def _issue_key(slug: str) -> dict[str, Any]:
    return {"PK": {"S": PARTITION}, "SK": {"S": f"ISSUE#{slug}"}}


def _setting_key(key: str) -> dict[str, Any]:
    return {"PK": {"S": PARTITION}, "SK": {"S": f"KEY#{key}"}}


class DynamoDBState:
    """scheduler.State's methods, on the table."""

    def __init__(self, config: Config, client: Any = None) -> None:
        self.store = DynamoDBStore(config, client)

    def close(self) -> None:
        self.store.close()

    def _conditional(self, method: str, **kwargs: Any) -> bool:
        return self.store._written(method, **kwargs)

    def get(self, key: str) -> str | None:
        item = self.store._call("get_item", Key=_setting_key(key), ConsistentRead=True).get("Item")
        return _s(item, "value") if item else None

    def set(self, key: str, value: str, now: datetime) -> None:
        self.store._call("put_item", Item={**_setting_key(key), "type": {"S": "publish-setting"},
                                           "value": {"S": value}, "changed": {"S": now.isoformat()}})

    def issue(self, slug: str) -> tuple[str, str] | None:
        item = self.store._call("get_item", Key=_issue_key(slug), ConsistentRead=True).get("Item")
        return (_s(item, "send_state") or "waiting", _s(item, "published_at")) if item else None

    def published(self, slug: str, now: datetime) -> bool:
        """Record an issue as public on the deployed site; True the first time."""
        return self._conditional("put_item", Item={
            **_issue_key(slug), "type": {"S": "published-issue"}, "published_at": {"S": now.isoformat()},
            "send_state": {"S": "waiting"}, "changed": {"S": now.isoformat()}},
            ConditionExpression="attribute_not_exists(PK)")

    def send_state(self, slug: str, state: str, now: datetime, note: str | None = None) -> None:
        sets = ["send_state = :state", "changed = :at"]
        values: dict[str, Any] = {":state": {"S": state}, ":at": {"S": now.isoformat()}}
        if state == "sent":
            sets.append("sent_at = :at")
        if note is not None:
            sets.append("note = :note")
            values[":note"] = {"S": note}
        expression = "SET " + ", ".join(sets) + ("" if note is not None else " REMOVE note")
        self._conditional("update_item", Key=_issue_key(slug), UpdateExpression=expression,
                          ConditionExpression="attribute_exists(PK)", ExpressionAttributeValues=values)

    def states(self) -> dict[str, str]:
        """Every public issue's send state (for `publisher list`): one Query of the PUBLISH partition."""
        found: dict[str, str] = {}
        start = None
        while True:
            args = {"ExclusiveStartKey": start} if start else {}
            page = self.store._call("query", KeyConditionExpression="PK = :pk AND begins_with(SK, :issue)",
                                    ConsistentRead=True, ExpressionAttributeValues={
                                        ":pk": {"S": PARTITION}, ":issue": {"S": "ISSUE#"}}, **args)
            for item in page.get("Items", []):
                found[_s(item, "SK").removeprefix("ISSUE#")] = _s(item, "send_state") or "waiting"
            if not (start := page.get("LastEvaluatedKey")):
                return found


@contextlib.contextmanager
def publish_lease(config: Config, *, seconds: float = LEASE_SECONDS, client: Any = None) -> Iterator[None]:
    """Hold the table's publish lease for the block, or raise scheduler.Busy naming the holder."""
    from ..scheduler import Busy

    state = DynamoDBState(config, client)
    owner = uuid.uuid4().hex
    done = threading.Event()
    try:
        now = clock.shared_seconds()
        item = {**LOCK_KEY, "type": {"S": "publish-lease"}, "owner": {"S": owner},
                "host": {"S": socket.gethostname()}, "pid": {"N": str(os.getpid())}, "since": {"S": clock.iso()},
                "expires": {"N": repr(now + seconds)}}
        if not state._conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(PK) OR "
                                  "expires < :now", ExpressionAttributeValues={":now": {"N": repr(now)}}):
            holder = state.store._call("get_item", Key=LOCK_KEY, ConsistentRead=True).get("Item") or {}
            raise Busy(f"another publish holds the lease in the DynamoDB table {state.store.table} (pid "
                       f"{_s(holder, 'pid') or holder.get('pid', {}).get('N', '?')} on {_s(holder, 'host') or '?'}, "
                       f"since {_s(holder, 'since') or '?'})",
                       hint=f"it finishes on its own; a crashed holder's lease runs out within {seconds:.0f} s")
        renewer = threading.Thread(target=_renew, args=(state, owner, seconds, done), name="publish-lease",
                                   daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            try:
                state._conditional("delete_item", Key=LOCK_KEY, ConditionExpression="#owner = :me",
                                   ExpressionAttributeNames={"#owner": "owner"},
                                   ExpressionAttributeValues={":me": {"S": owner}})
            except PublisherError as exc:  # it runs out on its own
                log.warning("could not release the publish lease: %s", exc)
    finally:
        state.close()


def _renew(state: DynamoDBState, owner: str, seconds: float, done: threading.Event) -> None:
    while not clock.nap(done, seconds / 3, step=0.1):
        now = clock.shared_seconds()
        try:
            if not state._conditional(
                    "update_item", Key=LOCK_KEY, UpdateExpression="SET expires = :until",
                    ConditionExpression="#owner = :me", ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":until": {"N": repr(now + seconds)}, ":me": {"S": owner}}):
                log.error("the publish lease was taken over (it ran out before this publish could renew it)")
                return
        except PublisherError as exc:
            log.warning("could not renew the publish lease (it lasts %.0f s more at most): %s", seconds, exc)
