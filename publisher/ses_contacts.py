"""Subscribers kept in an Amazon SES v2 contact list, so that SES hosts the unsubscribe and preferences page.

A contact carries our whole record as JSON in its `AttributesData` (name, tags, status, created, changed,
soft_bounces). The SES-side flags follow the status: a suppressed status (unsubscribed, bounced, complained)
sets `UnsubscribeAll` and opts out of the configured topic; any other status clears `UnsubscribeAll` and opts
in. Reading goes the other way too: a contact that SES itself marked as opted out (the reader used the hosted
page) reads as "unsubscribed" whatever `AttributesData` still says.

`ListContacts` returns no `AttributesData`, so listing costs one `GetContact` per contact; contacts whose SES
flags already rule them out are skipped without that call, and each page's calls run a few at a time.

SES allows one contact list per account (moto does not enforce this, nor `ListContacts` paging or filters).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from .config import Config
from .errors import PublisherError
from .subscribers import STATUSES, SUPPRESSED, Subscriber, _merge, clean_tags, now_text, validate_subscriber

log = logging.getLogger(__name__)

PAGE_SIZE = 100
WORKERS = 4  # GetContact calls in flight while reading a page
OPT_IN, OPT_OUT = "OPT_IN", "OPT_OUT"
PERMISSIONS = ("ses:GetContactList, ses:CreateContactList, ses:UpdateContactList, ses:ListContacts, ses:GetContact, "
               "ses:CreateContact, ses:UpdateContact, ses:DeleteContact")
_CREDENTIALS_REFUSED = ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                        "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidToken")
_DENIED = ("AccessDenied", "AccessDeniedException", "403")


def aws_error(exc: Exception, what: str, *, config: Config, field: str | None, permissions: str) -> PublisherError:
    """A boto3/botocore error while doing `what`, as a message the user can act on."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    where = {"file": config.file.name, "field": field}
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PublisherError(f"no AWS credentials for {what}",
                              hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an "
                                   "IAM role applies (credentials never go in publisher.toml)")
    if isinstance(exc, NoRegionError):
        return PublisherError(f"no AWS region for {what}", file=config.file.name, field="ses.region",
                              hint="set ses.region, or AWS_REGION / AWS_DEFAULT_REGION")
    if isinstance(exc, EndpointConnectionError):
        return PublisherError(f"cannot reach AWS for {what}: {exc}", file=config.file.name, field="ses.region",
                              hint="check ses.region, AWS_ENDPOINT_URL and the network")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in _DENIED:
            return PublisherError(f"access denied for {what}: {message}", **where,
                                  hint=f"the credentials in use need {permissions}")
        if code in _CREDENTIALS_REFUSED:
            return PublisherError(f"the AWS credentials were refused ({code}) for {what}",
                                  hint="check AWS_PROFILE / AWS_ACCESS_KEY_ID, or refresh an expired session")
        return PublisherError(f"AWS error for {what}: {code}: {message}", **where)
    return PublisherError(f"{what} failed: {exc}", **where)


def _client(config: Config) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    # Adaptive retries: throttling (TooManyRequestsException) slows a big import down instead of failing it.
    boto = BotoConfig(retries={"max_attempts": 6, "mode": "adaptive"}, connect_timeout=10, read_timeout=30,
                      max_pool_connections=WORKERS * 2)
    # A session of its own: the credential chain is read now, not whatever boto3's default session cached.
    return boto3.session.Session().client("sesv2", region_name=config.ses.region or None, config=boto)


def _text_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return str(value or "")


def _pause_time(value: Any) -> str:
    """A stored `paused_until` attribute as `clock.iso()` writes it, or "" for anything else (another tool's)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return ""
    return when.astimezone(UTC).isoformat(timespec="seconds") if when.tzinfo else ""


def _attributes(contact: dict[str, Any]) -> dict[str, Any]:
    """Our record in a contact; {} when it has none or someone else's (a contact added outside publisher)."""
    try:
        data = json.loads(contact.get("AttributesData") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class SesContactStore:
    """The `Store` of publisher.subscribers, kept in an SES contact list."""

    def __init__(self, config: Config, client: Any = None, *, page_size: int = PAGE_SIZE,
                 workers: int = WORKERS) -> None:
        name = config.subscribers.ses_contact_list
        if not name:
            raise PublisherError("subscribers.ses_contact_list is not set", file=config.file.name,
                                 field="subscribers.ses_contact_list", hint='e.g. ses_contact_list = "newsletter"')
        self.config = config
        self.list_name = name
        self.topic = config.subscribers.ses_topic
        self.description = f"SES contact list {name}"
        self.page_size = page_size
        self.workers = workers
        self._own_client = client is None
        try:
            self.client = client or _client(config)
        except Exception as exc:
            raise self._error(exc, "connecting to SES") from None
        self._ready = False

    # ---- calls ----

    def _error(self, exc: Exception, what: str) -> Exception:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError):
            return aws_error(exc, f"{what} ({self.description})", config=self.config,
                             field="subscribers.ses_contact_list", permissions=PERMISSIONS)
        return exc

    def _call(self, method: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """One SES call; None when `missing_ok` and SES says the contact (or list) is not there."""
        try:
            return getattr(self.client, method)(ContactListName=self.list_name, **kwargs)
        except Exception as exc:
            if missing_ok and _code(exc) == "NotFoundException":
                return None
            raise self._error(exc, method.replace("_", " ")) from None

    def _ensure_list(self) -> None:
        """Create the list (with the topic) on first use, or add the topic to an existing list."""
        if self._ready:
            return
        existing = self._call("get_contact_list", missing_ok=True)
        if existing is None:
            self._create_list()
        elif self.topic and self.topic not in {t["TopicName"] for t in existing.get("Topics", [])}:
            args = {"Description": existing["Description"]} if existing.get("Description") else {}
            self._call("update_contact_list", Topics=[*existing.get("Topics", []), self._topic()], **args)
        self._ready = True

    def _create_list(self) -> None:
        args: dict[str, Any] = {"Description": f"Subscribers of {self.config.site.title}"[:500]}
        if self.topic:
            args["Topics"] = [self._topic()]
        try:
            self.client.create_contact_list(ContactListName=self.list_name, **args)
        except Exception as exc:
            code = _code(exc)
            if code == "AlreadyExistsException":
                return  # another process made it in the meantime
            if code == "LimitExceededException":
                raise PublisherError(f"SES allows one contact list per account, and this one already has another "
                                     f"(not {self.list_name!r})", file=self.config.file.name,
                                     field="subscribers.ses_contact_list",
                                     hint="set subscribers.ses_contact_list to the existing list's name "
                                          "(aws sesv2 list-contact-lists)") from None
            raise self._error(exc, "create contact list") from None

    def _topic(self) -> dict[str, str]:
        topic = {"TopicName": self.topic or "", "DisplayName": self.config.site.title[:128],
                 "DefaultSubscriptionStatus": OPT_IN}
        if self.config.site.description:
            topic["Description"] = self.config.site.description[:500]
        return topic

    def _contact(self, email: str) -> dict[str, Any] | None:
        return self._call("get_contact", missing_ok=True, EmailAddress=email)  # type: ignore[no-any-return]

    # ---- the mapping ----

    def _opted_out(self, contact: dict[str, Any]) -> bool:
        """SES will not deliver to this contact: unsubscribed from all, or from our topic."""
        if contact.get("UnsubscribeAll"):
            return True
        if not self.topic:
            return False
        for key in ("TopicPreferences", "TopicDefaultPreferences"):
            for preference in contact.get(key) or []:
                if preference.get("TopicName") == self.topic:
                    return preference.get("SubscriptionStatus") == OPT_OUT
        return False

    def _subscriber(self, contact: dict[str, Any]) -> Subscriber:
        data = _attributes(contact)
        status = data.get("status") if data.get("status") in STATUSES else "active"
        if status not in SUPPRESSED and self._opted_out(contact):
            status = "unsubscribed"  # the reader opted out on the page SES hosts
        tags = tuple(t for t in data.get("tags") or [] if isinstance(t, str))
        return Subscriber(contact["EmailAddress"], str(data.get("name") or ""), status, tags,
                          str(data.get("created") or _text_time(contact.get("CreatedTimestamp"))),
                          str(data.get("changed") or _text_time(contact.get("LastUpdatedTimestamp"))),
                          _pause_time(data.get("paused_until")))

    def _write(self, subscriber: Subscriber, old: dict[str, Any] | None, *, soft_bounces: int | None = None) -> None:
        """Create or update a contact from our record, keeping other tools' attributes and topic choices."""
        data = _attributes(old) if old else {}
        data.update(name=subscriber.name, tags=list(subscriber.tags), status=subscriber.status,
                    created=subscriber.created, changed=subscriber.changed,
                    soft_bounces=soft_bounces if soft_bounces is not None else int(data.get("soft_bounces") or 0))
        if subscriber.paused_until:  # only while paused: the attributes of a contact never paused stay as they were
            data["paused_until"] = subscriber.paused_until
        else:
            data.pop("paused_until", None)
        suppressed = subscriber.status in SUPPRESSED
        args: dict[str, Any] = {"EmailAddress": subscriber.email, "UnsubscribeAll": suppressed,
                                "AttributesData": json.dumps(data, ensure_ascii=False, sort_keys=True)}
        if self.topic:
            others = [p for p in (old or {}).get("TopicPreferences") or [] if p.get("TopicName") != self.topic]
            args["TopicPreferences"] = [*others, {"TopicName": self.topic,
                                                  "SubscriptionStatus": OPT_OUT if suppressed else OPT_IN}]
        if old:
            self._call("update_contact", **args)
            return
        try:
            self.client.create_contact(ContactListName=self.list_name, **args)
        except Exception as exc:
            if _code(exc) == "AlreadyExistsException":
                raise _Raced from None
            raise self._error(exc, "create contact") from None

    # ---- the Store ----

    def get(self, email: str) -> Subscriber | None:
        self._ensure_list()
        contact = self._contact(email)
        return self._subscriber(contact) if contact else None

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        # Validated before the lookup too: the contact is looked up by the normalised (punycode) address.
        subscriber = validate_subscriber(subscriber, test_domains=True)
        self._ensure_list()
        try:
            return self._upsert(subscriber, reactivate)
        except _Raced:  # added by someone else between our read and our write: merge with theirs
            return self._upsert(subscriber, reactivate)

    def _upsert(self, subscriber: Subscriber, reactivate: bool) -> str:
        contact = self._contact(subscriber.email)
        old = self._subscriber(contact) if contact else None
        merged, verdict = _merge(old, subscriber, reactivate, validated=True)
        stamp = now_text()
        if verdict == "added":
            self._write(Subscriber(merged.email, merged.name, merged.status, merged.tags, stamp, stamp,
                                   merged.paused_until), None,
                        soft_bounces=0)
        elif merged is not old:
            self._write(Subscriber(merged.email, merged.name, merged.status, merged.tags, merged.created, stamp,
                                   merged.paused_until),
                        contact)
        return verdict

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False,
                    validated: bool = False) -> dict[str, int]:  # each upsert validates (a network call anyway)
        """One upsert per contact (SES has no batch write; `CreateImportJob` needs an S3 file and no merge)."""
        counts: dict[str, int] = {}
        for subscriber in subscribers:
            verdict = self.upsert(subscriber, reactivate=reactivate)
            counts[verdict] = counts.get(verdict, 0) + 1
        return counts

    def set_status(self, email: str, status: str) -> bool:
        if status not in STATUSES:
            raise ValueError(status)
        self._ensure_list()
        contact = self._contact(email)
        if contact is None:
            return False
        old = self._subscriber(contact)
        if old.status == status:
            return False
        self._write(Subscriber(old.email, old.name, status, old.tags, old.created, now_text(), old.paused_until),
                    contact)
        return True

    def add_soft_bounce(self, email: str) -> int:
        self._ensure_list()
        contact = self._contact(email)
        if contact is None:
            return 0
        old = self._subscriber(contact)
        count = int(_attributes(contact).get("soft_bounces") or 0) + 1
        self._write(Subscriber(old.email, old.name, old.status, old.tags, old.created, now_text(), old.paused_until),
                    contact, soft_bounces=count)
        return count

    def forget(self, email: str) -> bool:
        self._ensure_list()
        return self._call("delete_contact", missing_ok=True, EmailAddress=email) is not None

    # The preferences page: topics and the pause are attributes like the rest of the record. There is no such page
    # for this store (SES hosts one: `config.preferences_url` is "" with a contact list), but the commands may use
    # these. An address cannot be renamed in SES: that one is refused.

    def set_tags(self, email: str, tags: Iterable[str]) -> bool:
        self._ensure_list()
        contact = self._contact(email)
        if contact is None:
            return False
        old = self._subscriber(contact)
        self._write(Subscriber(old.email, old.name, old.status, clean_tags(tags), old.created, now_text(),
                               old.paused_until), contact)
        return True

    def set_paused(self, email: str, until: str) -> bool:
        self._ensure_list()
        contact = self._contact(email)
        if contact is None:
            return False
        old = self._subscriber(contact)
        self._write(Subscriber(old.email, old.name, old.status, old.tags, old.created, now_text(), until), contact)
        return True

    def change_email(self, old: str, new: str) -> bool:
        raise PublisherError("an SES contact list cannot change a contact's address",
                             field="subscribers.ses_contact_list",
                             hint="the reader subscribes the new address (SES hosts the preferences page), or "
                                  "`publisher subscribers add NEW` and `subscribers forget OLD`")

    def soft_bounces(self, email: str) -> int:
        """The soft bounces counted for `email` (0 for an unknown address); for `subscribers export ADDRESS`."""
        self._ensure_list()
        contact = self._contact(email)
        try:
            return int(_attributes(contact).get("soft_bounces") or 0) if contact else 0
        except (TypeError, ValueError):  # someone else's attribute of that name
            return 0

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        """The list's contacts (without their attributes), one page at a time."""
        # No server-side Filter: it can only filter on topic preferences, which the pre-check in iter() does
        # as well from the same page, and a wrong filter would silently drop subscribers.
        token = None
        while True:
            page = self._call("list_contacts", PageSize=self.page_size, **({"NextToken": token} if token else {}))
            yield page.get("Contacts", [])
            token = page.get("NextToken")
            if not token:
                return

    def _may_be(self, summary: dict[str, Any], status: str | None) -> bool:
        """False when the list entry alone rules the contact out (it saves a GetContact)."""
        return status is None or status in SUPPRESSED or not self._opted_out(summary)

    def iter(self, status: str | None = None) -> Iterator[Subscriber]:
        """Streams a page at a time (memory stays flat); contacts in the order SES lists them."""
        self._ensure_list()
        with ThreadPoolExecutor(self.workers) as pool:
            for page in self._pages():
                emails = [c["EmailAddress"] for c in page if self._may_be(c, status)]
                for contact in pool.map(self._contact, emails):
                    if contact is None:
                        continue  # deleted since the page was listed
                    subscriber = self._subscriber(contact)
                    if status is None or subscriber.status == status:
                        yield subscriber

    def count(self, status: str | None = None) -> int:
        if status is None:
            self._ensure_list()
            return sum(len(page) for page in self._pages())
        return sum(1 for _ in self.iter(status))

    def close(self) -> None:
        if self._own_client:
            self.client.close()


class _Raced(Exception):
    """CreateContact found the contact already there."""


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
