"""What `publisher report` reads of a send whose ledger is in DynamoDB (`[subscribers] dynamodb_table`), and the
per-message events `publisher events` writes there. Reads: Query and GetItem/BatchGetItem only, never a Scan,
never a write (a report is safe while a send, or the SQS fan-out's workers, write the same items).

Items read (the layout of publisher/stores/dynamodb_ledger.py and dynamodb.py):

    send index PK = SENDS          SK = ISSUE#<slug>   the list of sends (`publisher report` without a slug)
    send       PK = ISSUE#<slug>   SK = SEND           subject, audience_key, created, finished
    delivery   PK = ISSUE#<slug>   SK = TO#<email>     state, last_error, changed, email, events
    subscriber PK = SUB#<email>    SK = SUB            status, soft_bounces, changed (what happened since)

Per-message events (written by `record_event`, for publisher/events.py): an SES bounce, complaint or delivery
notification about one of our messages is kept on that message's delivery item, as the SQLite ledger keeps it in
`message_events`:

    delivery   PK = ISSUE#<slug>   SK = TO#<email>     events: a string set of bounce-hard | bounce-soft |
                                                               complaint | delivery (ADD: SQS redelivering a
                                                               notification changes nothing)

The item is found without any index: the issue is in our Message-ID header (`<slug.digest@domain>`, see
emails.MessageFactory.message_id; SES returns it in the notification's `mail.commonHeaders.messageId`), the
recipient in the notification. The write is conditional on the item existing and carrying that Message-ID (or
SES's message id as `provider_id`), so a notification never creates an item nor marks another message's row.
No address or other personal data is added: the item already names its recipient (and `privacy.forget` replaces
it whole, events included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from .dynamodb import BATCH, MAX_ATTEMPTS, DynamoDBStore, _n, _s
from .dynamodb_ledger import SENDS, issue_key, row_key, send_key

EVENT_KINDS = ("bounce-hard", "bounce-soft", "complaint", "delivery")
_OUR_MESSAGE_ID = re.compile(r"^<(.+)\.[0-9a-f]{24}@[^<>@\s]+>$")
_DELIVERY_FIELDS = ("state", "email", "last_error", "changed", "events")


@dataclass
class Send:
    """One send, as its items say."""

    issue: str
    subject: str
    audience_key: str
    created: str
    finished: str | None


@dataclass
class Row:
    """One delivery item (what the report needs of it)."""

    email: str
    state: str
    last_error: str
    changed: str
    events: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Person:
    """A recipient's subscriber item now."""

    status: str
    soft_bounces: int
    changed: str


class LedgerReader:
    """Read-only access to the sends in the DynamoDB table of `config` (errors as DynamoDBStore words them)."""

    def __init__(self, config: Config, client: Any = None) -> None:
        self.store = DynamoDBStore(config, client)
        self.client = self.store.client
        self.table = self.store.table

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _pages(self, **args: Any) -> Iterator[list[dict[str, Any]]]:
        start = None
        while True:
            page = self.store._call("query", ConsistentRead=True, Limit=self.store.page_size,
                                    **args, **({"ExclusiveStartKey": start} if start else {}))
            yield page.get("Items", [])
            if not (start := page.get("LastEvaluatedKey")):
                return

    def _batch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items of `keys` (distinct), BATCH at a time, strongly consistent; missing ones are left out."""
        found: list[dict[str, Any]] = []
        for i in range(0, len(keys), BATCH):
            todo = keys[i:i + BATCH]
            for _ in range(MAX_ATTEMPTS):
                if not todo:
                    break
                try:
                    answer = self.client.batch_get_item(
                        RequestItems={self.table: {"Keys": todo, "ConsistentRead": True}})
                except Exception as exc:
                    raise self.store._error(exc, "batch get item") from None
                found += answer.get("Responses", {}).get(self.table, [])
                todo = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            if todo:
                from ..errors import PublisherError

                raise PublisherError(f"DynamoDB left {len(todo)} reads unprocessed ({self.store.description})",
                                     hint="the table is throttled; try again")
        return found

    # ---- sends ----

    def sends(self) -> list[Send]:
        """Every send of the table (the send index, then the send items), most recently started first."""
        slugs = [_s(item, "SK").removeprefix("ISSUE#")
                 for page in self._pages(KeyConditionExpression="PK = :pk",
                                         ExpressionAttributeValues={":pk": {"S": SENDS}}) for item in page]
        found = [_send(item) for item in self._batch([send_key(slug) for slug in dict.fromkeys(slugs)])]
        return sorted(found, key=lambda s: (s.created, s.issue), reverse=True)

    def send(self, slug: str) -> Send | None:
        item = self.store._call("get_item", Key=send_key(slug), ConsistentRead=True).get("Item")
        return _send(item) if item else None

    def rows(self, slug: str) -> list[Row]:
        """The issue's delivery items, in key order (one Query of the issue's partition, a page at a time)."""
        names = {f"#{name}": name for name in _DELIVERY_FIELDS}
        return [Row(_s(item, "email"), _s(item, "state"), _s(item, "last_error"), _s(item, "changed"),
                    frozenset(item.get("events", {}).get("SS", [])))
                for page in self._pages(KeyConditionExpression="PK = :pk AND begins_with(SK, :to)",
                                        ExpressionAttributeValues={":pk": {"S": issue_key(slug)},
                                                                   ":to": {"S": "TO#"}},
                                        ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
                for item in page]

    def people(self, emails: list[str]) -> dict[str, Person]:
        """The subscriber items of `emails` now, by address (addresses without one are left out)."""
        from .dynamodb import subscriber_key

        items = self._batch([subscriber_key(e) for e in dict.fromkeys(emails)])
        return {_s(item, "email"): Person(_s(item, "status"), _n(item, "soft_bounces"), _s(item, "changed"))
                for item in items}


def _send(item: dict[str, Any]) -> Send:
    return Send(issue=_s(item, "PK").removeprefix("ISSUE#"), subject=_s(item, "subject"),
                audience_key=_s(item, "audience_key"), created=_s(item, "created"),
                finished=_s(item, "finished") or None)


# ---- per-message events (publisher/events.py) ----


def issue_of(message_id: str) -> str | None:
    """The issue a Message-ID header of ours names (`<slug.digest@domain>`), else None."""
    match = _OUR_MESSAGE_ID.match(message_id.strip())
    return match.group(1) if match else None


def record_event(store: DynamoDBStore, message_id: str, provider_id: str, email: str, kind: str) -> bool:
    """`kind` added to the events of the delivery item of the message `message_id` (our header) to `email`; False
    when there is no such item (not our message, a SQLite-ledger send, a forgotten recipient)."""
    issue = issue_of(message_id)
    if issue is None or not email or kind not in EVENT_KINDS:
        return False
    same = "message_id = :mid" + (" OR provider_id = :pid" if provider_id else "")
    values: dict[str, Any] = {":kind": {"SS": [kind]}, ":mid": {"S": message_id}}
    if provider_id:
        values[":pid"] = {"S": provider_id}
    return store._written("update_item", Key=row_key(issue, email), UpdateExpression="ADD events :kind",
                          ConditionExpression=f"attribute_exists(PK) AND ({same})", ExpressionAttributeValues=values)
