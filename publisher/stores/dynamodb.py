"""Subscribers in one Amazon DynamoDB table: the `Store` of publisher.subscribers, as SqliteStore behaves.

The table design (single table, documented in deploy/README.md, "DynamoDB: one table"):

    subscriber   PK = SUB#<email>     SK = SUB     GSI1PK = STATUS#<status>   GSI1SK = <created>#<email>
    change of    PK = MOVED#<old>     SK = MOVED   GSI1PK = MOVEDTO#<new>     GSI1SK = <old>
    address
    (planned)    PK = ISSUE#<slug>    SK = TO#<email>    the delivery ledger (next step)

A subscriber item holds email, name, status, tags (a list), created, changed, paused_until, soft_bounces and
`v`, a version number every write increments. Listing and counting by status query the index GSI1 (one
partition per status), never scan. Reads of one item are strongly consistent; the index is eventually
consistent (a subscriber written a moment ago may be missing from `iter`/`count` for a moment).

Two processes never lose each other's update: a change that depends on the old record (upsert, change of
address) is written only if the item's `v` is still the one read (`attribute_not_exists(PK)` for a new one), and
is redone from a fresh read when DynamoDB answers ConditionalCheckFailed (at most MAX_ATTEMPTS times). A change
that does not depend on it (status, soft bounce, tags, pause) is one UpdateItem that also increments `v`.

Nothing here creates the table on its own: `create_table` is for `publisher subscribers init-table`, tests and
local setups; in production CloudFormation makes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import Config
from ..errors import PublisherError
from ..subscribers import STATUSES, Subscriber, _merge, clean_tags, merge_change, now_text, validate_subscriber

log = logging.getLogger(__name__)

FIELD = "subscribers.dynamodb_table"
PAGE_SIZE = 1000  # items a Query returns at most per page (DynamoDB also stops at 1 MB)
BATCH = 100  # BatchGetItem's limit
WORKERS = 8  # writes in flight in upsert_many and the migration
MAX_ATTEMPTS = 25  # conditional write retries before giving up on a record that keeps changing
INDEX = "GSI1"
TTL_ATTRIBUTE = "expires_at"  # epoch seconds; DynamoDB deletes the item some time after (see deploy/README.md)
# A TransactWriteItems call needs the item actions it performs (there is no permission of that name).
PERMISSIONS = ("dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:Query and "
               "dynamodb:BatchGetItem on the table and its index GSI1")


def subscriber_key(email: str) -> dict[str, Any]:
    return {"PK": {"S": f"SUB#{email}"}, "SK": {"S": "SUB"}}


def moved_key(old: str) -> dict[str, Any]:
    return {"PK": {"S": f"MOVED#{old}"}, "SK": {"S": "MOVED"}}


def status_key(status: str) -> str:
    return f"STATUS#{status}"


def subscriber_item(subscriber: Subscriber, *, soft_bounces: int = 0, version: int = 1) -> dict[str, Any]:
    """The whole item of a subscriber record."""
    return {**subscriber_key(subscriber.email), "type": {"S": "subscriber"}, "email": {"S": subscriber.email},
            "name": {"S": subscriber.name}, "status": {"S": subscriber.status},
            "tags": {"L": [{"S": t} for t in subscriber.tags]}, "created": {"S": subscriber.created},
            "changed": {"S": subscriber.changed}, "paused_until": {"S": subscriber.paused_until},
            "soft_bounces": {"N": str(soft_bounces)}, "v": {"N": str(version)},
            "GSI1PK": {"S": status_key(subscriber.status)}, "GSI1SK": {"S": f"{subscriber.created}#{subscriber.email}"}}


def moved_item(old: str, new: str, at: str) -> dict[str, Any]:
    return {**moved_key(old), "type": {"S": "moved"}, "old": {"S": old}, "new": {"S": new}, "moved_at": {"S": at},
            "GSI1PK": {"S": f"MOVEDTO#{new}"}, "GSI1SK": {"S": old}}


def _s(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _n(item: dict[str, Any], name: str) -> int:
    try:
        return int(item.get(name, {}).get("N", "0"))
    except ValueError:
        return 0


def item_subscriber(item: dict[str, Any]) -> Subscriber:
    tags = tuple(t["S"] for t in item.get("tags", {}).get("L", []) if "S" in t)
    return Subscriber(_s(item, "email"), _s(item, "name"), _s(item, "status"), tags, _s(item, "created"),
                      _s(item, "changed"), _s(item, "paused_until"))


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _cancelled_by_condition(exc: BaseException) -> bool:
    """A TransactWriteItems cancelled because a condition failed (and not for another reason)."""
    if _code(exc) != "TransactionCanceledException":
        return False
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    if reasons:
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return "ConditionalCheckFailed" in str(exc)


def make_client(config: Config | None = None) -> Any:
    """A DynamoDB client from the standard AWS chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...)."""
    import boto3
    from botocore.config import Config as BotoConfig

    boto = BotoConfig(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=30,
                      max_pool_connections=WORKERS * 2)
    region = (config.ses.region if config is not None else None) or None
    return boto3.session.Session().client("dynamodb", region_name=region, config=boto)


def create_table(client: Any, name: str) -> bool:
    """Create the table as deploy/README.md describes it (on-demand, the index GSI1, TTL on `expires_at`) and
    wait until it is active; False when it exists already (then nothing is changed)."""
    try:
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "GSI1PK", "GSI1SK")],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": INDEX, "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
                                                   {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]}])
    except Exception as exc:
        if _code(exc) == "ResourceInUseException":
            return False
        raise
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True,
                                                                        "AttributeName": TTL_ATTRIBUTE})
    return True


_UNREAD = object()  # an item not read yet


class _Conflict(Exception):
    """A conditional write found the item changed since it was read."""


class DynamoDBStore:
    """The `Store` of publisher.subscribers, kept in one DynamoDB table (see the module's docstring)."""

    def __init__(self, config: Config, client: Any = None, *, table: str | None = None,
                 page_size: int = PAGE_SIZE, workers: int = WORKERS) -> None:
        name = table or config.subscribers.dynamodb_table
        if not name:
            raise PublisherError("subscribers.dynamodb_table is not set", file=config.file.name, field=FIELD,
                                 hint='e.g. dynamodb_table = "newsletter"')
        self.config = config
        self.table = name
        self.description = f"DynamoDB table {name}"
        self.page_size = page_size
        self.workers = workers
        self._own_client = client is None
        try:
            self.client = client or make_client(config)
        except Exception as exc:
            raise self._error(exc, "connecting to DynamoDB") from None

    # ---- calls ----

    def _error(self, exc: Exception, what: str) -> Exception:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError

        from ..ses_contacts import aws_error

        where = f"{what} ({self.description})"
        if isinstance(exc, NoRegionError):
            return PublisherError(f"no AWS region for {where}", file=self.config.file.name, field="ses.region",
                                  hint="set AWS_REGION / AWS_DEFAULT_REGION (or ses.region)")
        if isinstance(exc, EndpointConnectionError):
            return PublisherError(f"cannot reach AWS for {where}: {exc}", file=self.config.file.name, field=FIELD,
                                  hint="check AWS_REGION, AWS_ENDPOINT_URL and the network")
        if _code(exc) == "ResourceNotFoundException":
            return PublisherError(f"the DynamoDB table {self.table} does not exist (or has no index {INDEX})",
                                  file=self.config.file.name, field=FIELD,
                                  hint="create it with `publisher subscribers init-table` or the CloudFormation "
                                       "template, or check the table name and AWS_REGION")
        if isinstance(exc, BotoCoreError | ClientError):
            return aws_error(exc, where, config=self.config, field=FIELD, permissions=PERMISSIONS)
        return exc

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(TableName=self.table, **kwargs)
        except Exception as exc:
            raise self._error(exc, method.replace("_", " ")) from None

    def _conditional(self, method: str, **kwargs: Any) -> Any:
        """A write with a ConditionExpression; _Conflict when the condition does not hold."""
        try:
            return getattr(self.client, method)(TableName=self.table, **kwargs)
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise _Conflict from None
            raise self._error(exc, method.replace("_", " ")) from None

    def _written(self, method: str, **kwargs: Any) -> bool:
        """A conditional write; False when its condition did not hold (the ledger's, the welcome's and the
        publish state's writes, which answer "done or not" rather than retry)."""
        try:
            self._conditional(method, **kwargs)
        except _Conflict:
            return False
        return True

    def _item(self, email: str) -> dict[str, Any] | None:
        return self._call("get_item", Key=subscriber_key(email), ConsistentRead=True).get("Item")  # type: ignore[no-any-return]

    def _items(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        """The items of up to BATCH distinct addresses, strongly consistent, by address."""
        return {_s(item, "email"): item for item in self._batch_get([subscriber_key(e) for e in emails])}

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items of up to BATCH distinct keys (those that exist), strongly consistent, in no set order."""
        found: list[dict[str, Any]] = []
        for _ in range(MAX_ATTEMPTS):
            if not keys:
                break
            try:
                answer = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
            except Exception as exc:
                raise self._error(exc, "batch get item") from None
            found += answer.get("Responses", {}).get(self.table, [])
            keys = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
        else:
            if keys:
                raise PublisherError(f"DynamoDB left {len(keys)} reads unprocessed ({self.description})",
                                     hint="the table is throttled; try again")
        return found

    # ---- the Store ----

    def get(self, email: str) -> Subscriber | None:
        item = self._item(email)
        return item_subscriber(item) if item else None

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        # Before the lookup, which needs the normalized address.
        subscriber = validate_subscriber(subscriber, test_domains=True)
        return self._upsert(subscriber, reactivate, now_text())

    def _upsert(self, subscriber: Subscriber, reactivate: bool, stamp: str, item: Any = _UNREAD) -> str:
        """Read (unless `item` is given: the item read already, or None for none), merge, write on condition;
        again from a fresh read while another writer got there first."""
        for _ in range(MAX_ATTEMPTS):
            if item is _UNREAD:
                item = self._item(subscriber.email)
            try:
                return self._write_merged(subscriber, reactivate, stamp, item)
            except _Conflict:
                item = _UNREAD
        raise self._busy(subscriber.email)

    def _busy(self, email: str) -> PublisherError:
        return PublisherError(f"{email} kept changing while being written ({MAX_ATTEMPTS} attempts)",
                              field=FIELD, hint="another process is writing the same subscriber; try again")

    def _write_merged(self, subscriber: Subscriber, reactivate: bool, stamp: str, item: dict[str, Any] | None) -> str:
        old = item_subscriber(item) if item else None
        merged, verdict = _merge(old, subscriber, reactivate, validated=True)
        if verdict == "added":
            record = Subscriber(merged.email, merged.name, merged.status, merged.tags, stamp, stamp, "")
            self._conditional("put_item", Item=subscriber_item(record),
                              ConditionExpression="attribute_not_exists(PK)")
        elif merged is not old:
            assert item is not None
            self._conditional(
                "update_item", Key=subscriber_key(merged.email),
                UpdateExpression="SET #name = :name, #status = :status, tags = :tags, changed = :changed, "
                                 "GSI1PK = :gsi, v = v + :one",
                ConditionExpression="v = :v",
                ExpressionAttributeNames={"#name": "name", "#status": "status"},
                ExpressionAttributeValues={":name": {"S": merged.name}, ":status": {"S": merged.status},
                                           ":tags": {"L": [{"S": t} for t in merged.tags]}, ":changed": {"S": stamp},
                                           ":gsi": {"S": status_key(merged.status)}, ":one": {"N": "1"},
                                           ":v": item["v"]})
        return verdict

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False,
                    validated: bool = False) -> dict[str, int]:
        """Upserts a batch at a time (one BatchGetItem for the old records, then the conditional writes a few
        at a time), all stamped with one time. An address twice in the input is merged in input order, as
        one after the other in SQLite. `validated`: every row has been through `validate_subscriber` already."""
        counts: dict[str, int] = {}
        stamp = now_text()
        with ThreadPoolExecutor(self.workers) as pool:
            batch: dict[str, Subscriber] = {}

            def flush() -> None:
                if not batch:
                    return
                items = self._items(list(batch))
                verdicts = pool.map(lambda s: self._upsert(s, reactivate, stamp, items.get(s.email)), batch.values())
                for verdict in verdicts:
                    counts[verdict] = counts.get(verdict, 0) + 1
                batch.clear()

            for subscriber in subscribers:
                if not validated:
                    subscriber = validate_subscriber(subscriber, test_domains=True)
                if subscriber.email in batch or len(batch) >= BATCH:
                    flush()
                batch[subscriber.email] = subscriber
            flush()
        return counts

    def _update_existing(self, email: str, assignments: str, values: dict[str, Any], *, add: str = "",
                         condition: str = "attribute_exists(PK)", names: dict[str, str] | None = None,
                         returned: str = "NONE") -> dict[str, Any] | None:
        """One UpdateItem of an existing subscriber: SET `assignments` (and the version increment), then ADD
        `add`; None when the condition failed (no such subscriber, or the one of the caller)."""
        args: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        expression = f"SET {assignments}, v = v + :one" + (f" ADD {add}" if add else "")
        try:
            answer = self._conditional("update_item", Key=subscriber_key(email),
                                       UpdateExpression=expression, ConditionExpression=condition,
                                       ExpressionAttributeValues={**values, ":one": {"N": "1"}},
                                       ReturnValues=returned, **args)
        except _Conflict:
            return None
        return answer.get("Attributes", {})  # type: ignore[no-any-return]

    def set_status(self, email: str, status: str) -> bool:
        if status not in STATUSES:
            raise ValueError(status)
        return self._update_existing(
            email, "#status = :status, changed = :changed, GSI1PK = :gsi",
            {":status": {"S": status}, ":changed": {"S": now_text()}, ":gsi": {"S": status_key(status)}},
            condition="attribute_exists(PK) AND #status <> :status", names={"#status": "status"}) is not None

    def add_soft_bounce(self, email: str) -> int:
        done = self._update_existing(email, "changed = :changed", {":changed": {"S": now_text()}},
                                     add="soft_bounces :one", returned="UPDATED_NEW")
        return _n(done, "soft_bounces") if done is not None else 0

    def forget(self, email: str) -> bool:
        """The subscriber's item, and every change of address naming the address (as privacy.forget removes
        them from SQLite); True when there was a subscriber or such a change."""
        try:
            answer = self.client.delete_item(TableName=self.table, Key=subscriber_key(email), ReturnValues="ALL_OLD")
        except Exception as exc:
            raise self._error(exc, "delete item") from None
        removed = bool(answer.get("Attributes"))
        for old in [email, *self._moved_here(email)]:
            try:
                gone = self.client.delete_item(TableName=self.table, Key=moved_key(old), ReturnValues="ALL_OLD")
            except Exception as exc:
                raise self._error(exc, "delete item") from None
            removed = removed or bool(gone.get("Attributes"))
        return removed

    def set_tags(self, email: str, tags: Iterable[str]) -> bool:
        cleaned = clean_tags(tags)
        return self._update_existing(email, "tags = :tags, changed = :changed",
                                     {":tags": {"L": [{"S": t} for t in cleaned]},
                                      ":changed": {"S": now_text()}}) is not None

    def set_paused(self, email: str, until: str) -> bool:
        return self._update_existing(email, "paused_until = :until, changed = :changed",
                                     {":until": {"S": until}, ":changed": {"S": now_text()}}) is not None

    def _moved_here(self, new: str) -> list[str]:
        """The old addresses whose change of address leads to `new`."""
        found: list[str] = []
        for page in self._query(f"MOVEDTO#{new}"):
            found.extend(_s(item, "old") for item in page)
        return found

    def change_email(self, old: str, new: str) -> bool:
        """`old`'s record under `new` (merged with `new`'s record if there is one, never widening consent), and a
        change-of-address item old -> new; all in one transaction, conditional on both records as read."""
        new = validate_subscriber(Subscriber(new), test_domains=True).email
        for _ in range(MAX_ATTEMPTS):
            current_item = self._item(old)
            if current_item is None:
                return False
            if new == old:
                return True
            existing_item = self._item(new)
            current = item_subscriber(current_item)
            existing = item_subscriber(existing_item) if existing_item else None
            stamp = now_text()
            merged = merge_change(current, existing, new)
            record = Subscriber(new, merged.name, merged.status, merged.tags, merged.created, stamp,
                                merged.paused_until)
            version = max(_n(current_item, "v"), _n(existing_item or {}, "v")) + 1
            writes: list[dict[str, Any]] = [
                {"Delete": {"TableName": self.table, "Key": subscriber_key(old), "ConditionExpression": "v = :v",
                            "ExpressionAttributeValues": {":v": current_item["v"]}}},
                {"Put": {"TableName": self.table,
                         "Item": subscriber_item(record, soft_bounces=_n(current_item, "soft_bounces"),
                                                 version=version),
                         **({"ConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": existing_item["v"]}}
                            if existing_item else {"ConditionExpression": "attribute_not_exists(PK)"})}},
            ]
            # Earlier moves now lead here too (one hop, however often an address moved); a move back drops it.
            # (A transaction holds 100 writes: the first 90 such moves go in it, any further ones right after.)
            earlier = [o for o in self._moved_here(old) if o != new]
            writes += [{"Put": {"TableName": self.table, "Item": moved_item(o, new, stamp)}} for o in earlier[:90]]
            if self._moved(new) is not None:
                writes.append({"Delete": {"TableName": self.table, "Key": moved_key(new)}})
            writes.append({"Put": {"TableName": self.table, "Item": moved_item(old, new, stamp)}})
            try:
                self.client.transact_write_items(TransactItems=writes)
            except Exception as exc:
                if _cancelled_by_condition(exc):
                    continue
                raise self._error(exc, "transact write items") from None
            for o in earlier[90:]:
                self._call("put_item", Item=moved_item(o, new, stamp))
            return True
        raise self._busy(old)

    def _moved(self, email: str) -> str | None:
        item = self._call("get_item", Key=moved_key(email), ConsistentRead=True).get("Item")
        return _s(item, "new") if item else None

    def moved_to(self, email: str) -> str | None:
        """The address `email` moved to by a change of address, if it did (for unsubscribe links only)."""
        return self._moved(email)

    def soft_bounces(self, email: str) -> int:
        """The soft bounces counted for `email` (0 for an unknown address); for `subscribers export ADDRESS`."""
        item = self._item(email)
        return _n(item, "soft_bounces") if item else 0

    def _query(self, partition: str, *, count: bool = False) -> Iterator[list[dict[str, Any]]]:
        """The index GSI1's items in one partition, a page at a time (for `count`: pages of counts only)."""
        start: dict[str, Any] | None = None
        while True:
            args: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            if count:
                args["Select"] = "COUNT"
            page = self._call("query", IndexName=INDEX, KeyConditionExpression="GSI1PK = :pk",
                              ExpressionAttributeValues={":pk": {"S": partition}}, Limit=self.page_size, **args)
            yield [{"count": page.get("Count", 0)}] if count else page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def iter(self, status: str | None = None) -> Iterator[Subscriber]:
        """Streams a page at a time (memory stays flat for any list size): by status, oldest first; without a
        status, one status after the other. No scan: every page is a Query of the index."""
        for each in (status,) if status else STATUSES:
            for page in self._query(status_key(each)):
                for item in page:
                    subscriber = item_subscriber(item)
                    if subscriber.status == each:  # the index lags behind a status change for a moment
                        yield subscriber

    def count(self, status: str | None = None) -> int:
        return sum(page[0]["count"] for each in ((status,) if status else STATUSES)
                   for page in self._query(status_key(each), count=True))

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def init_table(config: Config, table: str | None = None, client: Any = None) -> tuple[str, bool]:
    """`publisher subscribers init-table`: create the table of `config` (or `table`) as `create_table` does;
    (its name, whether it was created). Errors are PublisherErrors naming subscribers.dynamodb_table."""
    store = DynamoDBStore(config, client, table=table)
    try:
        return store.table, create_table(store.client, store.table)
    except PublisherError:
        raise
    except Exception as exc:
        raise store._error(exc, "create table") from None
    finally:
        store.close()
