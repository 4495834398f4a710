"""The welcome emails' queue in the subscribers' DynamoDB table (`[subscribers] dynamodb_table`): welcome.py's
ledger rows, kept as the delivery items of publisher.stores.dynamodb_ledger under the issue `_welcome`, so that
`DynamoDBLedger` and the issues' `SendLoop` send them (claim conditional on `pending`: never two copies).

    welcome row   PK = ISSUE#_welcome   SK = TO#<email>        as any delivery item (state pending -> sent)
    welcome send  PK = ISSUE#_welcome   SK = SEND              `queued` counts the rows ever queued (their `n`)
    send index    PK = SENDS            SK = ISSUE#_welcome    so that `privacy.forget` finds the rows

One welcome per address, ever, as the SQLite ledger's UNIQUE (issue, email) makes it: a row is created only
where there is none (`attribute_not_exists(PK)`, or `if_not_exists` on every attribute), so a second click, a
retried request, a resubscription or a second process adds nothing and never touches a row already sent.

Activation (the confirm link's POST) writes the subscriber's status and the row in ONE TransactWriteItems,
conditional on the subscriber item's version `v` as read: both or neither, as the SQLite triggers do. The row is
written with `if_not_exists` (not a condition) so that an address that had a welcome before is still activated.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..subscribers import now_text
from .dynamodb import (
    MAX_ATTEMPTS,
    WORKERS,
    DynamoDBStore,
    _cancelled_by_condition,
    _n,
    _s,
    status_key,
    subscriber_key,
)
from .dynamodb_ledger import row_key, send_key, sends_key

SLUG = "_welcome"  # welcome.SLUG (not imported: welcome.py imports this module)
FILE = "_welcome.md"

# Every attribute through a placeholder: `name`, `status`, `state` and `type` are DynamoDB reserved words.
_NAMES = {"#type": "type", "#email": "email", "#name": "name", "#state": "state", "#n": "n", "#attempts": "attempts",
          "#created": "created", "#changed": "changed"}
_ROW_IF_NEW = ("SET #type = if_not_exists(#type, :delivery), #email = if_not_exists(#email, :email), "
               "#name = if_not_exists(#name, :name), #state = if_not_exists(#state, :pending), "
               "#n = if_not_exists(#n, :n), #attempts = if_not_exists(#attempts, :zero), "
               "#created = if_not_exists(#created, :at), #changed = if_not_exists(#changed, :at)")


def _row_values(email: str, name: str, n: int, stamp: str) -> dict[str, Any]:
    return {":delivery": {"S": "delivery"}, ":email": {"S": email}, ":name": {"S": name},
            ":pending": {"S": "pending"}, ":n": {"N": str(n)}, ":zero": {"N": "0"}, ":at": {"S": stamp}}


def _row_item(email: str, name: str, n: int, stamp: str) -> dict[str, Any]:
    return {**row_key(SLUG, email), "type": {"S": "delivery"}, "email": {"S": email}, "name": {"S": name},
            "state": {"S": "pending"}, "n": {"N": str(n)}, "attempts": {"N": "0"}, "created": {"S": stamp},
            "changed": {"S": stamp}}


def _index_item() -> dict[str, Any]:
    return {**sends_key(SLUG), "type": {"S": "send-index"}}


def _numbers(store: DynamoDBStore, count: int = 1) -> int:
    """Reserve `count` row numbers on the welcome's send item (made on first use, `complete` at once: the rows
    are added one by one, never by a snapshot); returns the last. The numbers are the rows' `n`: the ledger's
    handles and the transport's message numbers (outbox/_welcome/<n>.eml), unique across processes."""
    answer = store._call(
        "update_item", Key=send_key(SLUG),
        UpdateExpression="SET #type = if_not_exists(#type, :send), subject = if_not_exists(subject, :file), "
                         "audience_key = if_not_exists(audience_key, :everyone), "
                         "#created = if_not_exists(#created, :at), audience = if_not_exists(audience, :zero), "
                         "complete = :yes ADD queued :count",
        ExpressionAttributeNames={"#type": "type", "#created": "created"},
        ExpressionAttributeValues={":send": {"S": "send"}, ":file": {"S": FILE}, ":everyone": {"S": ""},
                                   ":at": {"S": now_text()}, ":zero": {"N": "0"}, ":yes": {"BOOL": True},
                                   ":count": {"N": str(count)}},
        ReturnValues="UPDATED_NEW")
    return _n(answer.get("Attributes", {}), "queued")


def activate(store: DynamoDBStore, email: str) -> bool:
    """`email` made active and its welcome row written (unless it has one), in one transaction; True when the
    status changed. Nothing is written for an unknown address or one that is active already."""
    for _ in range(MAX_ATTEMPTS):
        item = store._item(email)
        if item is None or _s(item, "status") == "active":
            return False
        stamp = now_text()
        n = _numbers(store)
        writes: list[dict[str, Any]] = [
            {"Update": {"TableName": store.table, "Key": subscriber_key(email),
                        "UpdateExpression": "SET #status = :active, #changed = :at, GSI1PK = :gsi, v = v + :one",
                        "ConditionExpression": "v = :v",
                        "ExpressionAttributeNames": {"#status": "status", "#changed": "changed"},
                        "ExpressionAttributeValues": {":active": {"S": "active"}, ":at": {"S": stamp},
                                                      ":gsi": {"S": status_key("active")}, ":one": {"N": "1"},
                                                      ":v": item["v"]}}},
            {"Update": {"TableName": store.table, "Key": row_key(SLUG, email), "UpdateExpression": _ROW_IF_NEW,
                        "ExpressionAttributeNames": _NAMES,
                        "ExpressionAttributeValues": _row_values(email, _s(item, "name"), n, stamp)}},
            {"Put": {"TableName": store.table, "Item": _index_item()}},
        ]
        try:
            store.client.transact_write_items(TransactItems=writes)
        except Exception as exc:
            if _cancelled_by_condition(exc):  # the record changed since it was read: again, from a fresh read
                continue
            raise store._error(exc, "transact write items") from None
        return True
    raise store._busy(email)


def queue(store: DynamoDBStore, email: str, name: str = "", *, n: int | None = None, stamp: str | None = None,
          index: bool = True) -> bool:
    """A pending welcome row for `email`, unless it has (or had) one; True when a row was added."""
    n = n if n is not None else _numbers(store)
    if index:
        store._call("put_item", Item=_index_item())
    return store._written("put_item", Item=_row_item(email, name, n, stamp or now_text()),
                          ConditionExpression="attribute_not_exists(PK)")


def queue_many(store: DynamoDBStore, people: Iterable[tuple[str, str]]) -> int:
    """Pending welcome rows for (email, name) pairs (after the store's own writes: an import with --welcome);
    returns how many were new. The numbers are reserved in one write, the rows put a few at a time."""
    people = list(people)
    if not people:
        return 0
    last = _numbers(store, len(people))
    store._call("put_item", Item=_index_item())
    stamp = now_text()
    first = last - len(people) + 1
    with ThreadPoolExecutor(WORKERS) as pool:
        return sum(pool.map(lambda entry: queue(store, entry[1][0], entry[1][1], n=first + entry[0], stamp=stamp,
                                                index=False), enumerate(people)))


def record(store: DynamoDBStore, subject: str, audience: int) -> None:
    """The welcome's send item after a pass: its current subject and the rows it holds (as `issue_sends`)."""
    store._call("update_item", Key=send_key(SLUG), UpdateExpression="SET subject = :subject, audience = :n",
                ExpressionAttributeValues={":subject": {"S": subject}, ":n": {"N": str(audience)}})

