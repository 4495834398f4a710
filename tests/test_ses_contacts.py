"""The SES contact list store: the behaviours of the SQLite store, against a real moto server over HTTP.

moto ignores `PageSize`, `NextToken` and `Filter` of ListContacts (it answers with every contact at once), so
the paging tests put a thin client in between that pages moto's answer the way SES does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber

from publisher.errors import PublisherError
from publisher.ses_contacts import SesContactStore
from publisher.subscribers import SUPPRESSED, Subscriber, open_store


def ses_config(newsletter, topic: str | None = None):  # type: ignore[no-untyped-def]
    name = f"news-{uuid.uuid4().hex[:12]}"
    extra = f'[subscribers]\nses_contact_list = "{name}"\n' + (f'ses_topic = "{topic}"\n' if topic else "")
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + extra)
    return newsletter.load_config()


def raw_contact(config, email: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return boto3.client("sesv2").get_contact(ContactListName=config.subscribers.ses_contact_list,
                                             EmailAddress=email)


def topic_status(contact: dict[str, Any], topic: str) -> str | None:
    return next((p["SubscriptionStatus"] for p in contact.get("TopicPreferences", []) if p["TopicName"] == topic),
                None)


@pytest.fixture
def config(newsletter, aws):  # type: ignore[no-untyped-def]
    return ses_config(newsletter)


@pytest.fixture
def store(config):  # type: ignore[no-untyped-def]
    s = SesContactStore(config)
    yield s
    s.close()


class PagedClient:
    """Pages ListContacts as SES does (moto answers with every contact at once) and counts the calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.list_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def list_contacts(self, *, ContactListName: str, PageSize: int, NextToken: str | None = None,  # noqa: N803
                      **kwargs: Any) -> dict[str, Any]:
        self.list_calls += 1
        contacts = self.client.list_contacts(ContactListName=ContactListName, **kwargs)["Contacts"]
        start = int(NextToken or 0)
        page: dict[str, Any] = {"Contacts": contacts[start:start + PageSize]}
        if start + PageSize < len(contacts):
            page["NextToken"] = str(start + PageSize)
        return page


# ---- the list ----


def test_the_list_is_created_on_first_use_with_the_topic(newsletter, aws):
    config = ses_config(newsletter, topic="weekly")
    name = config.subscribers.ses_contact_list
    sesv2 = boto3.client("sesv2")
    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.get_contact_list(ContactListName=name)
    store = SesContactStore(config)
    assert store.count() == 0
    topics = sesv2.get_contact_list(ContactListName=name)["Topics"]
    assert [(t["TopicName"], t["DisplayName"], t["DefaultSubscriptionStatus"]) for t in topics] == [
        ("weekly", "AI 日报", "OPT_IN")]
    assert name in store.description


def test_a_missing_topic_is_added_to_an_existing_list(newsletter, aws):
    config = ses_config(newsletter, topic="weekly")
    name = config.subscribers.ses_contact_list
    sesv2 = boto3.client("sesv2")
    sesv2.create_contact_list(ContactListName=name, Description="made elsewhere", Topics=[
        {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"}])
    SesContactStore(config).upsert(Subscriber("a@example.com"))
    found = sesv2.get_contact_list(ContactListName=name)
    assert [t["TopicName"] for t in found["Topics"]] == ["offers", "weekly"]
    assert found["Description"] == "made elsewhere"
    assert raw_contact(config, "a@example.com")["EmailAddress"] == "a@example.com"


def test_open_store_returns_the_ses_store_when_a_contact_list_is_set(config):
    store = open_store(config)
    assert isinstance(store, SesContactStore)
    assert store.list_name == config.subscribers.ses_contact_list


def test_a_config_without_a_contact_list_is_refused(newsletter, aws):
    with pytest.raises(PublisherError, match="ses_contact_list"):
        SesContactStore(newsletter.load_config())


# ---- one subscriber ----


def test_add_get_and_update(config, store):
    assert store.get("a@example.com") is None
    assert store.upsert(Subscriber("a@example.com", "小明", tags=("ai",))) == "added"
    got = store.get("a@example.com")
    assert got is not None
    assert (got.email, got.name, got.status, got.tags) == ("a@example.com", "小明", "active", ("ai",))
    assert got.created and got.created == got.changed
    assert store.upsert(Subscriber("a@example.com", tags=("ml",))) == "updated"
    got = store.get("a@example.com")
    assert got is not None and (got.name, got.tags) == ("小明", ("ai", "ml"))
    assert store.upsert(Subscriber("a@example.com", "小明", tags=("ai",))) == "unchanged"
    contact = raw_contact(config, "a@example.com")
    assert json.loads(contact["AttributesData"]) == {
        "name": "小明", "tags": ["ai", "ml"], "status": "active", "created": got.created, "changed": got.changed,
        "soft_bounces": 0}
    assert contact["UnsubscribeAll"] is False


def test_an_address_with_a_plus_round_trips(store):
    assert store.upsert(Subscriber("a+news@example.com", "A")) == "added"
    got = store.get("a+news@example.com")
    assert got is not None and got.name == "A"
    assert [s.email for s in store.iter()] == ["a+news@example.com"]
    assert store.forget("a+news@example.com") is True


@pytest.mark.parametrize("status", SUPPRESSED)
def test_upsert_never_reactivates_a_suppressed_address_unless_asked(config, store, status):
    store.upsert(Subscriber("a@example.com", "A", status=status))
    assert raw_contact(config, "a@example.com")["UnsubscribeAll"] is True
    assert store.upsert(Subscriber("a@example.com", "A")) == "kept"
    assert store.upsert(Subscriber("a@example.com", "A 2")) == "kept"
    got = store.get("a@example.com")
    assert got is not None and (got.status, got.name) == (status, "A 2")
    assert store.count("active") == 0
    assert store.upsert(Subscriber("a@example.com"), reactivate=True) == "updated"
    got = store.get("a@example.com")
    assert got is not None and got.status == "active"
    assert raw_contact(config, "a@example.com")["UnsubscribeAll"] is False


def test_set_status(config, store):
    store.upsert(Subscriber("a@example.com"))
    assert store.set_status("a@example.com", "bounced") is True
    assert store.set_status("a@example.com", "bounced") is False
    got = store.get("a@example.com")
    assert got is not None and got.status == "bounced" and got.changed >= got.created
    assert raw_contact(config, "a@example.com")["UnsubscribeAll"] is True
    assert store.set_status("nobody@example.com", "bounced") is False
    with pytest.raises(ValueError):
        store.set_status("a@example.com", "gone")


def test_soft_bounces_are_counted_and_keep_the_subscriber_active(config, store):
    store.upsert(Subscriber("a@example.com", "A"))
    assert store.add_soft_bounce("a@example.com") == 1
    assert store.add_soft_bounce("a@example.com") == 2
    got = store.get("a@example.com")
    assert got is not None and (got.status, got.name) == ("active", "A")
    assert json.loads(raw_contact(config, "a@example.com")["AttributesData"])["soft_bounces"] == 2
    assert store.upsert(Subscriber("a@example.com", "B")) == "updated"  # an update keeps the count
    assert json.loads(raw_contact(config, "a@example.com")["AttributesData"])["soft_bounces"] == 2
    assert store.add_soft_bounce("nobody@example.com") == 0


def test_forget(store):
    store.upsert(Subscriber("a@example.com"))
    store.upsert(Subscriber("b@example.com"))
    assert store.forget("a@example.com") is True
    assert store.get("a@example.com") is None
    assert store.forget("a@example.com") is False
    assert [s.email for s in store.iter()] == ["b@example.com"]


# ---- changes made on the SES side ----


def test_a_contact_unsubscribed_through_ses_reads_as_unsubscribed(config, store):
    store.upsert(Subscriber("a@example.com", "A"))
    store.upsert(Subscriber("b@example.com", "B"))
    boto3.client("sesv2").update_contact(ContactListName=config.subscribers.ses_contact_list,
                                         EmailAddress="a@example.com", UnsubscribeAll=True)
    got = store.get("a@example.com")
    assert got is not None and (got.status, got.name) == ("unsubscribed", "A")
    assert [s.email for s in store.iter("active")] == ["b@example.com"]
    assert [s.email for s in store.iter("unsubscribed")] == ["a@example.com"]
    assert store.count("active") == 1
    assert store.upsert(Subscriber("a@example.com")) == "kept"  # an import never undoes the reader's choice
    assert store.set_status("a@example.com", "unsubscribed") is False


def test_a_topic_opt_out_through_ses_reads_as_unsubscribed_and_reactivation_opts_in(newsletter, aws):
    config = ses_config(newsletter, topic="weekly")
    store = SesContactStore(config)
    store.upsert(Subscriber("a@example.com", "A"))
    assert topic_status(raw_contact(config, "a@example.com"), "weekly") == "OPT_IN"
    boto3.client("sesv2").update_contact(
        ContactListName=config.subscribers.ses_contact_list, EmailAddress="a@example.com",
        TopicPreferences=[{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}])
    got = store.get("a@example.com")
    assert got is not None and got.status == "unsubscribed"
    assert store.count("active") == 0
    assert store.upsert(Subscriber("a@example.com"), reactivate=True) == "updated"
    contact = raw_contact(config, "a@example.com")
    assert (topic_status(contact, "weekly"), contact["UnsubscribeAll"]) == ("OPT_IN", False)
    assert store.set_status("a@example.com", "complained") is True
    assert topic_status(raw_contact(config, "a@example.com"), "weekly") == "OPT_OUT"


def test_a_contact_added_outside_publisher_reads_as_active_and_keeps_its_attributes(config, store):
    store.count()  # creates the list
    boto3.client("sesv2").create_contact(ContactListName=config.subscribers.ses_contact_list,
                                         EmailAddress="a@example.com", AttributesData='{"plan": "pro"}')
    got = store.get("a@example.com")
    assert got is not None and (got.status, got.name, got.tags) == ("active", "", ())
    assert got.created  # from the contact's own timestamp
    assert store.upsert(Subscriber("a@example.com", "A")) == "updated"
    data = json.loads(raw_contact(config, "a@example.com")["AttributesData"])
    assert (data["plan"], data["name"]) == ("pro", "A")


# ---- many subscribers ----


def test_iter_and_count_by_status_over_many_pages(config):
    cycle = ("active", "active", "unconfirmed", "unsubscribed", "bounced", "complained")
    people = [Subscriber(f"p{i:03d}@example.com", f"P{i}", cycle[i % len(cycle)]) for i in range(120)]
    client = PagedClient(boto3.client("sesv2"))
    store = SesContactStore(config, client=client, page_size=25)
    assert store.upsert_many(people) == {"added": 120}
    assert store.upsert_many(people) == {"unchanged": 120}
    assert store.count() == 120
    client.list_calls = 0
    everyone = list(store.iter())
    assert client.list_calls == 5  # 120 contacts, 25 a page
    assert sorted((s.email, s.name, s.status) for s in everyone) == [(p.email, p.name, p.status) for p in people]
    for status in ("active", "unsubscribed", "bounced"):
        assert {s.email for s in store.iter(status)} == {p.email for p in people if p.status == status}
    assert (store.count("active"), store.count("complained")) == (40, 20)
    counts = store.upsert_many(Subscriber(p.email, p.name) for p in people)
    assert counts == {"unchanged": 40, "updated": 20, "kept": 60}


def test_iter_streams_a_page_at_a_time(config):
    client = PagedClient(boto3.client("sesv2"))
    store = SesContactStore(config, client=client, page_size=10)
    store.upsert_many(Subscriber(f"p{i:02d}@example.com") for i in range(35))
    client.list_calls = 0
    it = store.iter("active")
    assert next(it).email.endswith("@example.com")
    assert client.list_calls == 1  # the first subscriber came before the rest of the list was read
    assert len(list(it)) == 34
    assert client.list_calls == 4


# ---- errors ----


def test_no_credentials_is_a_clear_error(config, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PublisherError, match="no AWS credentials") as caught:
        SesContactStore(config).get("a@example.com")
    assert "AWS_PROFILE" in str(caught.value)


def test_an_unreachable_endpoint_is_a_clear_error(config):
    client = boto3.client("sesv2", endpoint_url="http://127.0.0.1:9",
                          config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(PublisherError, match="cannot reach AWS") as caught:
        SesContactStore(config, client=client).count()
    assert "AWS_ENDPOINT_URL" in str(caught.value)


def test_access_denied_names_the_permissions(config):
    # A stubbed fault (allowed: the shared moto server does not enforce IAM, and SES's AccessDenied shape is
    # what matters here; tests/test_deploy_iam.py runs the IAM-enforcing server for S3).
    client = boto3.client("sesv2")
    stubber = Stubber(client)
    stubber.add_client_error("get_contact_list", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform: ses:GetContactList", http_status_code=403)
    with stubber, pytest.raises(PublisherError, match="access denied") as caught:
        SesContactStore(config, client=client).count()
    text = str(caught.value)
    assert "ses:GetContact" in text and "subscribers.ses_contact_list" in text


def test_a_second_contact_list_is_refused_with_a_hint(config):
    # A stubbed fault (allowed: moto lets an account have any number of contact lists; real SES allows one).
    client = boto3.client("sesv2")
    stubber = Stubber(client)
    stubber.add_client_error("get_contact_list", service_error_code="NotFoundException", http_status_code=404)
    stubber.add_client_error("create_contact_list", service_error_code="LimitExceededException",
                             http_status_code=400)
    with stubber, pytest.raises(PublisherError, match="one contact list per account") as caught:
        SesContactStore(config, client=client).count()
    assert "list-contact-lists" in str(caught.value)


# ---- the CLI ----


def test_the_cli_manages_subscribers_in_the_contact_list(config, run_cli):
    root = str(config.root)
    added = run_cli("-C", root, "subscribers", "add", "A@Example.com", "--name", "小明", "--tag", "ai")
    assert added.exit_code == 0, added.output
    run_cli("-C", root, "subscribers", "add", "b@example.com")
    run_cli("-C", root, "subscribers", "remove", "b@example.com")
    assert json.loads(raw_contact(config, "a@example.com")["AttributesData"])["name"] == "小明"
    listed = run_cli("-C", root, "subscribers", "list")
    assert listed.exit_code == 0
    assert sorted(listed.output.splitlines()) == ["a@example.com\tactive\t小明", "b@example.com\tunsubscribed\t"]
    counted = run_cli("-C", root, "subscribers", "count")
    assert counted.exit_code == 0
    lines = counted.output.splitlines()
    assert "active\t1" in lines and "unsubscribed\t1" in lines and "total\t2" in lines
