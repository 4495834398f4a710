"""The delivery ledger in the subscribers' DynamoDB table: the `LedgerStore` of publisher.sending, as `Ledger`
(SQLite) behaves, for `[subscribers] dynamodb_table`.

Items (single table, documented in deploy/README.md, "DynamoDB: one table"):

    delivery   PK = ISSUE#<slug>   SK = TO#<email>   state, n, email, name, attempts, message_id, provider_id,
                                                     last_error, created, changed
    send       PK = ISSUE#<slug>   SK = SEND         subject, audience_key, created, audience, complete, finished
    send index PK = SENDS          SK = ISSUE#<slug> (so that forgetting a person needs no scan)

`state` is pending -> sending -> sent (or failed, skipped), as in SQLite. A row is claimed with one UpdateItem
conditional on `state = pending` (two senders never send one row twice), and recorded `sent` with the message id
by a second one: 2 writes per recipient on the happy path, plus the snapshot's put.

The snapshot puts one item per recipient with `attribute_not_exists(PK)`: two processes snapshotting at once
write each row once, and a snapshot cut short by a crash is resumed by the next run (the send item is marked
`complete` only at the end; until then `started` is False and the next run snapshots again, adding only what is
missing and never touching a row already claimed).

The send loop's rows are numbered (`pending(issue, after, ...)` takes the last number seen): each item keeps the
number `n` the snapshot gave it (its place in the audience), used as the row's handle in this process and as the
transport's message number. Rows are read in key order (by address): a Query of the issue's partition with a
filter on `state`, strongly consistent, a page at a time; the cursor `after` maps back to the key of that row.
No index is needed (the partition is the issue), and nothing scans the table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import islice
from typing import Any

from .. import clock as clock_mod
from ..audience import Audience, key_of
from ..config import Config
from ..subscribers import Store, now_text
from .dynamodb import WORKERS, DynamoDBStore, _n, _s

PAGE = 256  # rows the loop asks for at a time (sending.BATCH)
STATES = ("pending", "sending", "sent", "failed", "skipped")


def issue_key(slug: str) -> str:
    return f"ISSUE#{slug}"


def row_key(slug: str, email: str) -> dict[str, Any]:
    return {"PK": {"S": issue_key(slug)}, "SK": {"S": f"TO#{email}"}}


SENDS = "SENDS"  # the partition listing every send: SK = ISSUE#<slug>


def sends_key(slug: str) -> dict[str, Any]:
    return {"PK": {"S": SENDS}, "SK": {"S": issue_key(slug)}}


def send_key(slug: str) -> dict[str, Any]:
    return {"PK": {"S": issue_key(slug)}, "SK": {"S": "SEND"}}


def _value(value: object) -> dict[str, Any]:
    return {"N": str(value)} if isinstance(value, int) else {"S": str(value)}


class DynamoDBLedger:
    """The delivery rows of one issue in the DynamoDB table (see the module's docstring). Thread-safe: the send
    loop's workers share it (boto3 clients are thread-safe; the handle maps are kept under a lock)."""

    def __init__(self, config: Config, client: Any = None, *, table: str | None = None) -> None:
        # The store's checks and error messages (a missing table, no region, access denied) are the ledger's.
        self._store = DynamoDBStore(config, client, table=table)  # a client made there is closed there
        self.client = self._store.client
        self.table = self._store.table
        self.lock = threading.Lock()
        self._emails: dict[int, tuple[str, str]] = {}  # handle -> (issue, email)
        self._handles: dict[tuple[str, str], int] = {}
        self._next_spare = 1 << 40  # handles for the (rare) rows whose `n` another row of this run has

    # ---- calls ----

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self._store._call(method, **kwargs)

    def _conditional(self, method: str, **kwargs: Any) -> bool:
        """A conditional write; False when the condition did not hold."""
        return self._store._written(method, **kwargs)

    def _rows(self, issue: str, *, state: str | None = None, start: dict[str, Any] | None = None,
              projection: str | None = None) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """The issue's delivery items (optionally in one state), in key order, a page at a time."""
        args: dict[str, Any] = {"ExpressionAttributeValues": {":pk": {"S": issue_key(issue)}, ":to": {"S": "TO#"}}}
        if state is not None:
            args["FilterExpression"] = "#state = :state"
            args["ExpressionAttributeNames"] = {"#state": "state"}
            args["ExpressionAttributeValues"][":state"] = {"S": state}
        if projection:
            args["ProjectionExpression"] = projection
            args.setdefault("ExpressionAttributeNames", {})["#state"] = "state"
        while True:
            if start:
                args["ExclusiveStartKey"] = start
            page = self._call("query", KeyConditionExpression="PK = :pk AND begins_with(SK, :to)",
                              ConsistentRead=True, Limit=self._store.page_size, **args)
            start = page.get("LastEvaluatedKey")
            yield page.get("Items", []), start
            if not start:
                return

    def _handle(self, issue: str, item: dict[str, Any]) -> int:
        email = _s(item, "email")
        with self.lock:
            known = self._handles.get((issue, email))
            if known is not None:
                return known
            n = _n(item, "n")
            if n <= 0 or n in self._emails:
                n = self._next_spare
                self._next_spare += 1
            self._emails[n] = (issue, email)
            self._handles[(issue, email)] = n
            return n

    def drop(self, rows: list[int]) -> None:
        """Forgets the handles of rows this process is done with: a worker that runs for weeks handles every
        recipient of every issue, and must not keep them all."""
        with self.lock:
            for row in rows:
                found = self._emails.pop(row, None)
                if found is not None:
                    self._handles.pop(found, None)

    def _key(self, row: int) -> dict[str, Any]:
        issue, email = self._emails[row]
        return row_key(issue, email)

    # ---- the LedgerStore ----

    def _send_item(self, issue: str) -> dict[str, Any] | None:
        return self._call("get_item", Key=send_key(issue), ConsistentRead=True).get("Item")  # type: ignore[no-any-return]

    def started(self, issue: str) -> bool:
        item = self._send_item(issue)
        return bool(item and item.get("complete", {}).get("BOOL"))

    def audience_key(self, issue: str) -> str:
        item = self._send_item(issue)
        return _s(item, "audience_key") if item else ""

    def snapshot(self, issue: str, subject: str, store: Store, audience: Audience | None = None, *,
                 now: datetime | None = None) -> int:
        """A pending item for every active subscriber in `audience` not paused at `now`, each put only if it is
        not there yet; then the send item is marked complete. Returns the audience size."""
        from ..sending import _same_audience, iso_time

        stamp = now_text()
        at = iso_time(now or clock_mod.now())
        created = self._conditional(
            "put_item", Item={**send_key(issue), "type": {"S": "send"}, "subject": {"S": subject},
                              "audience_key": {"S": key_of(audience)}, "created": {"S": stamp},
                              "audience": {"N": "0"}, "complete": {"BOOL": False}},
            ConditionExpression="attribute_not_exists(PK)")
        if not created:  # a snapshot by another process, or one cut short: go on with it, under the same audience
            _same_audience(self, issue, audience)
        else:  # the list of sends, so that forgetting a person finds their rows without a scan
            self._call("put_item", Item={**sends_key(issue), "type": {"S": "send-index"}})
        people = ((n, s) for n, s in enumerate((s for s in store.iter("active")
                                                if (audience is None or audience.matches(s.tags))
                                                and not s.paused_at(at)), start=1))

        def put(entry: tuple[int, Any]) -> bool:
            n, s = entry
            return self._conditional(
                "put_item", Item={**row_key(issue, s.email), "type": {"S": "delivery"}, "email": {"S": s.email},
                                  "name": {"S": s.name}, "state": {"S": "pending"}, "n": {"N": str(n)},
                                  "attempts": {"N": "0"}, "created": {"S": stamp}, "changed": {"S": stamp}},
                ConditionExpression="attribute_not_exists(PK)")

        # A thousand at a time: Executor.map takes its whole input at once, a future per subscriber of the list.
        with ThreadPoolExecutor(WORKERS) as pool:
            while chunk := list(islice(people, 1000)):
                for _ in pool.map(put, chunk):
                    pass
        size = sum(self.counts(issue).values())
        self._call("update_item", Key=send_key(issue), UpdateExpression="SET audience = :n, complete = :yes",
                   ExpressionAttributeValues={":n": {"N": str(size)}, ":yes": {"BOOL": True}})
        return size

    def counts(self, issue: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for items, _ in self._rows(issue, projection="#state"):
            for item in items:
                state = _s(item, "state")
                found[state] = found.get(state, 0) + 1
        return found

    def uncertain(self, issue: str, limit: int = 5) -> list[str]:
        out: list[str] = []
        for items, _ in self._rows(issue, state="sending"):
            out.extend(_s(item, "email") for item in items)
            if len(out) >= limit:
                break
        return out[:limit]

    def resolve_uncertain(self, issue: str, state: str, note: str) -> int:
        done = 0
        for items, _ in self._rows(issue, state="sending"):
            for item in items:
                done += self._conditional(
                    "update_item", Key=row_key(issue, _s(item, "email")),
                    UpdateExpression="SET #state = :new, last_error = :note, changed = :at",
                    ConditionExpression="#state = :sending", ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":new": {"S": state}, ":note": {"S": note}, ":at": {"S": now_text()},
                                               ":sending": {"S": "sending"}})
        return done

    def pending(self, issue: str, after: int, join_status: bool) -> list[tuple[int, str, str, str | None, int]]:
        """The next pending rows after the row `after` (0: from the start), in key order: (handle, email, name,
        subscriber's current status, attempts). With `join_status`, the status is read from the subscriber
        items (one BatchGetItem per 100 rows)."""
        start = None
        if after:
            with self.lock:
                row_issue, email = self._emails[after]
            start = row_key(row_issue, email)
        found: list[dict[str, Any]] = []
        for items, _ in self._rows(issue, state="pending", start=start):
            found.extend(items)
            if len(found) >= PAGE:
                break
        found = found[:PAGE]
        statuses: dict[str, str] = {}
        if join_status and found:
            for i in range(0, len(found), 100):
                chunk = self._store._items([_s(item, "email") for item in found[i:i + 100]])
                statuses.update({email: _s(item, "status") for email, item in chunk.items()})
        return [(self._handle(issue, item), _s(item, "email"), _s(item, "name"),
                 statuses.get(_s(item, "email")) if join_status else "active", _n(item, "attempts"))
                for item in found]

    def rows_of(self, issue: str, emails: list[str]) -> list[tuple[int, str, str, str, int]]:
        """The delivery rows of up to 100 addresses of `issue` (those in the ledger), strongly consistent, ordered
        by their place in the audience: (handle, email, name, state, attempts)."""
        items = self._store._batch_get([row_key(issue, email) for email in dict.fromkeys(emails)])
        rows = [(self._handle(issue, item), _s(item, "email"), _s(item, "name"), _s(item, "state"),
                 _n(item, "attempts")) for item in items]
        return sorted(rows)

    def view(self, issue: str, rows: list[tuple[int, str, str, str, int]], *,
             forgotten: set[str] | None = None) -> RowsView:
        """A ledger of some rows of `issue` (from rows_of, the pending ones), with each subscriber's current
        status read in one BatchGetItem: what SendLoop sends a queued batch or one new welcome through.
        `forgotten`: the issue's forgotten rows if the caller has them (else read when the loop asks)."""
        statuses = {email: _s(item, "status") for email, item in
                    self._store._items([email for _, email, _, _, _ in rows]).items()}
        return RowsView(self, issue, [(h, e, name, statuses.get(e), a) for h, e, name, _, a in rows],
                        forgotten=forgotten)

    def queue_cursor(self, issue: str) -> tuple[dict[str, Any] | None, bool]:
        """Where the enqueueing of a fan-out send stands: (the key of the last row queued, or None; all queued)."""
        item = self._send_item(issue) or {}
        last = _s(item, "queued_after") if "queued_after" in item else ""
        return (row_key(issue, last) if last else None), bool(item.get("queued_all", {}).get("BOOL"))

    def set_queue_cursor(self, issue: str, last_email: str | None, *, done: bool) -> None:
        """Records how far a fan-out send has queued its rows (None with done=False: start again)."""
        values: dict[str, Any] = {":done": {"BOOL": done}, ":at": {"S": now_text()}}
        if last_email is None:
            expression = "SET queued_all = :done, queued_at = :at REMOVE queued_after"
        else:
            expression = "SET queued_all = :done, queued_at = :at, queued_after = :last"
            values[":last"] = {"S": last_email}
        self._call("update_item", Key=send_key(issue), UpdateExpression=expression,
                   ExpressionAttributeValues=values)

    def mark(self, row: int, state: str, **fields: object) -> None:
        sets = ["#state = :state", "changed = :at"]
        removes = []
        values: dict[str, Any] = {":state": {"S": state}, ":at": {"S": now_text()}}
        for name, value in fields.items():
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _value(value)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        # Only from the state the loop saw: a row is skipped while pending, and recorded (sent, failed, back to
        # pending for a retry, left uncertain) while this process holds its claim. A queued batch may reach two
        # workers (SQS delivers at least once); the second one's write must never undo the first one's `sent`.
        values[":from"] = {"S": "pending" if state == "skipped" else "sending"}
        self._conditional("update_item", Key=self._key(row), UpdateExpression=expression,
                          ConditionExpression="#state = :from", ExpressionAttributeNames={"#state": "state"},
                          ExpressionAttributeValues=values)

    def claim(self, row: int) -> bool:
        """`sending` (and one more attempt), only if the row is still `pending`: of two senders' claims of one
        row, one succeeds."""
        return self._conditional(
            "update_item", Key=self._key(row),
            UpdateExpression="SET #state = :sending, changed = :at ADD attempts :one",
            ConditionExpression="#state = :pending", ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":sending": {"S": "sending"}, ":pending": {"S": "pending"},
                                       ":at": {"S": now_text()}, ":one": {"N": "1"}})

    def release(self, row: int, error: str) -> None:
        self._conditional(
            "update_item", Key=self._key(row),
            UpdateExpression="SET #state = :pending, last_error = :error, changed = :at ADD attempts :minus",
            ConditionExpression="#state = :sending AND attempts > :zero", ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":sending": {"S": "sending"}, ":pending": {"S": "pending"},
                                       ":error": {"S": error}, ":at": {"S": now_text()}, ":minus": {"N": "-1"},
                                       ":zero": {"N": "0"}})

    def fail_unclaimed(self, row: int, error: str) -> bool:
        return self._conditional(
            "update_item", Key=self._key(row),
            UpdateExpression="SET #state = :failed, last_error = :error, changed = :at",
            ConditionExpression="#state = :pending", ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":failed": {"S": "failed"}, ":pending": {"S": "pending"},
                                       ":error": {"S": error}, ":at": {"S": now_text()}})

    def forgotten(self, issue: str) -> set[str]:
        """The forgotten rows of an issue (privacy.forget's markers): a range of the issue's sort keys."""
        from ..privacy import PREFIX

        page = self._call("query", KeyConditionExpression="PK = :pk AND begins_with(SK, :f)", ConsistentRead=True,
                          ExpressionAttributeValues={":pk": {"S": issue_key(issue)}, ":f": {"S": f"TO#{PREFIX}"}},
                          ProjectionExpression="email")
        found = {_s(item, "email") for item in page.get("Items", [])}
        while page.get("LastEvaluatedKey"):
            page = self._call("query", KeyConditionExpression="PK = :pk AND begins_with(SK, :f)",
                              ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"],
                              ExpressionAttributeValues={":pk": {"S": issue_key(issue)},
                                                         ":f": {"S": f"TO#{PREFIX}"}}, ProjectionExpression="email")
            found |= {_s(item, "email") for item in page.get("Items", [])}
        return found

    def forget(self, email: str, hashed: str) -> int:
        """Each delivery item of `email` replaced by an anonymous one (`hashed` for the address, no name, no
        error; a row not sent yet is `skipped`), in one transaction per item; returns how many."""
        done = 0
        for issue in self._sends():
            item = self._call("get_item", Key=row_key(issue, email), ConsistentRead=True).get("Item")
            if not item:
                continue
            anonymous = {k: v for k, v in item.items() if k not in ("SK", "email", "name", "last_error")}
            if _s(item, "state") in ("pending", "sending"):
                anonymous["state"] = {"S": "skipped"}
                anonymous["changed"] = {"S": now_text()}
            anonymous.update({**row_key(issue, hashed), "email": {"S": hashed}, "name": {"S": ""}})
            try:  # the row is replaced whole or not at all: the counts never lose it
                self.client.transact_write_items(TransactItems=[
                    {"Delete": {"TableName": self.table, "Key": row_key(issue, email)}},
                    {"Put": {"TableName": self.table, "Item": anonymous}}])
            except Exception as exc:
                raise self._store._error(exc, "transact write items") from None
            done += 1
        return done

    def _sends(self) -> list[str]:
        """The slugs of every send in the table (the send index written by `snapshot`)."""
        slugs: list[str] = []
        start = None
        while True:
            args = {"ExclusiveStartKey": start} if start else {}
            page = self._call("query", KeyConditionExpression="PK = :pk", ConsistentRead=True,
                              ExpressionAttributeValues={":pk": {"S": SENDS}}, **args)
            slugs += [_s(item, "SK").removeprefix("ISSUE#") for item in page.get("Items", [])]
            if not (start := page.get("LastEvaluatedKey")):
                return slugs

    def finish(self, issue: str, sent: int | None = None) -> None:
        """Marks the send finished, with its count of sent messages (so `publisher list` reads one item, not
        every row)."""
        values: dict[str, Any] = {":at": {"S": now_text()}}
        expression = "SET finished = :at"
        if sent is not None:
            expression += ", sent = :sent"
            values[":sent"] = {"N": str(sent)}
        self._conditional("update_item", Key=send_key(issue), UpdateExpression=expression,
                          ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished)",
                          ExpressionAttributeValues=values)

    def sent_counts(self) -> dict[str, int]:
        """issue -> messages sent, for every send in the table: a finished send's count from its send item, a
        send under way counted from its rows."""
        slugs = self._sends()
        found: dict[str, int] = {}
        for i in range(0, len(slugs), 100):
            for item in self._store._batch_get([send_key(slug) for slug in slugs[i:i + 100]]):
                slug = _s(item, "PK").removeprefix("ISSUE#")
                found[slug] = _n(item, "sent") if "sent" in item else self.counts(slug).get("sent", 0)
        return {slug: n for slug, n in found.items() if n}

    def close(self) -> None:
        self._store.close()


class RowsView:
    """The LedgerStore SendLoop sees when it sends some rows of an issue, not all: the rows that were pending when
    read (a queued batch, the welcome of the address just confirmed). Reads cost one BatchGetItem, not a read of
    the issue's partition; every write goes to the DynamoDB ledger, conditional as ever."""

    def __init__(self, ledger: DynamoDBLedger, issue: str, rows: list[tuple[int, str, str, str | None, int]], *,
                 forgotten: set[str] | None = None) -> None:
        self.ledger = ledger
        self.issue = issue
        self.rows = rows  # (handle, email, name, subscriber's status, attempts), ordered by handle
        self._forgotten = forgotten

    def pending(self, issue: str, after: int, join_status: bool) -> list[tuple[int, str, str, str | None, int]]:
        return [row for row in self.rows if row[0] > after]

    def counts(self, issue: str) -> dict[str, int]:
        """The rows' states now (one BatchGetItem)."""
        found: dict[str, int] = {}
        for row in self.ledger.rows_of(issue, [email for _, email, _, _, _ in self.rows]):
            found[row[3]] = found.get(row[3], 0) + 1
        return found

    def resolve_uncertain(self, issue: str, state: str, note: str) -> int:
        return 0  # only a pass over the whole issue decides about rows another process left `sending`

    def forgotten(self, issue: str) -> set[str]:
        return self._forgotten if self._forgotten is not None else self.ledger.forgotten(issue)

    def mark(self, row: int, state: str, **fields: object) -> None:
        self.ledger.mark(row, state, **fields)

    def claim(self, row: int) -> bool:
        return self.ledger.claim(row)

    def release(self, row: int, error: str) -> None:
        self.ledger.release(row, error)

    def fail_unclaimed(self, row: int, error: str) -> bool:
        return self.ledger.fail_unclaimed(row, error)
