"""Exact-time publishing: EventBridge Scheduler one-time schedules per future issue, on a real moto server, and
the Lambda handler's publish action called with the event those schedules send."""

from __future__ import annotations

import importlib.util
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import pytest

from publisher.errors import PublisherError
from publisher.scheduler import publish, summary
from publisher.schedules import MARK, NAME_MAX, at_expression, schedule_name, sync
from publisher.subscribers import SqliteStore, Subscriber

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # never the wall clock
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:publisher-publish"
ROLE = "arn:aws:iam::123456789012:role/publisher-scheduler"
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def configure(newsletter, *, group: str | None = None, extra: str = ""):  # type: ignore[no-untyped-def]
    group = group or f"news-{uuid.uuid4().hex[:10]}"
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + f'[schedule]\neventbridge_target_arn = "{TARGET}"\neventbridge_role_arn = "{ROLE}"\n'
                             f'eventbridge_group = "{group}"\n' + extra)
    return newsletter.load_config()


def scheduler():  # type: ignore[no-untyped-def]
    return boto3.client("scheduler", region_name="us-east-1")


def schedules(group: str) -> dict[str, dict]:
    client = scheduler()
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]]
    return {name: client.get_schedule(Name=name, GroupName=group) for name in names}


def test_future_issues_get_one_schedule_each_at_their_local_time(newsletter, aws):
    config = configure(newsletter)
    group = config.schedule.eventbridge_group
    newsletter.issue("a.md", "title: A\ndate: 2027-01-05 08:00\n")  # naive: site time
    newsletter.issue("b.md", "title: B\ndate: 2027-01-05T00:30:00+00:00\n")  # UTC: 08:30 in Shanghai
    newsletter.issue("web-only.md", "title: W\ndate: 2027-01-06 09:15:30\nsend: false\n")  # deployed at its time
    newsletter.issue("old.md", "title: Old\ndate: 2026-11-20 08:00\n")  # past: none
    newsletter.issue("wip.md", "title: WIP\ndate: 2027-01-07 08:00\ndraft: true\n")  # draft: none

    report = sync(config, now=NOW)

    assert sorted(report.created) == ["publisher-a", "publisher-b", "publisher-web-only"]
    found = schedules(group)
    assert sorted(found) == ["publisher-a", "publisher-b", "publisher-web-only"]
    assert {n: (s["ScheduleExpression"], s["ScheduleExpressionTimezone"]) for n, s in found.items()} == {
        "publisher-a": ("at(2027-01-05T08:00:00)", "Asia/Shanghai"),
        "publisher-b": ("at(2027-01-05T08:30:00)", "Asia/Shanghai"),
        "publisher-web-only": ("at(2027-01-06T09:15:30)", "Asia/Shanghai"),
    }
    a = found["publisher-a"]
    assert a["Target"]["Arn"] == TARGET and a["Target"]["RoleArn"] == ROLE
    assert json.loads(a["Target"]["Input"]) == {"action": "publish", "due": True, "issue": "a"}
    assert a["FlexibleTimeWindow"] == {"Mode": "OFF"} and a["ActionAfterCompletion"] == "DELETE"
    assert a["State"] == "ENABLED" and a["Description"] == f"{MARK}a 2027-01-05T08:00:00+08:00"


def test_moved_deleted_drafted_and_past_issues_update_or_remove_their_schedules(newsletter, aws):
    config = configure(newsletter)
    group = config.schedule.eventbridge_group
    moving = newsletter.issue("moving.md", "title: M\ndate: 2027-01-05 08:00\n")
    gone = newsletter.issue("gone.md", "title: G\ndate: 2027-01-06 08:00\n")
    drafted = newsletter.issue("drafted.md", "title: D\ndate: 2027-01-07 08:00\n")
    newsletter.issue("soon.md", "title: S\ndate: 2026-12-04 08:00\n")
    sync(config, now=NOW)
    assert len(schedules(group)) == 4

    moving.write_text(moving.read_text().replace("2027-01-05 08:00", "2027-02-01 20:45"), encoding="utf-8")
    gone.unlink()
    drafted.write_text(drafted.read_text().replace("date:", "draft: true\ndate:"), encoding="utf-8")
    report = sync(config, now=NOW)
    assert report.updated == ["publisher-moving"] and report.created == []
    assert sorted(report.deleted) == ["publisher-drafted", "publisher-gone"]
    found = schedules(group)
    assert sorted(found) == ["publisher-moving", "publisher-soon"]
    assert found["publisher-moving"]["ScheduleExpression"] == "at(2027-02-01T20:45:00)"
    assert found["publisher-moving"]["Description"].endswith("2027-02-01T20:45:00+08:00")

    after_soon = datetime(2026, 12, 4, 8, 0, 1, tzinfo=SHANGHAI)  # soon is public now: its schedule goes
    report = sync(config, now=after_soon)
    assert report.deleted == ["publisher-soon"] and report.unchanged == ["publisher-moving"]
    assert sorted(schedules(group)) == ["publisher-moving"]


def test_second_sync_changes_nothing_and_says_so(newsletter, aws):
    config = configure(newsletter)
    newsletter.issue("a.md", "title: A\ndate: 2027-01-05 08:00\n")
    newsletter.issue("b.md", "title: B\ndate: 2027-01-06 08:00\n")
    first = sync(config, now=NOW)
    before = schedules(config.schedule.eventbridge_group)
    second = sync(config, now=NOW)
    assert first.changed and not second.changed
    assert sorted(second.unchanged) == ["publisher-a", "publisher-b"]
    assert second.summary() == f"schedules in {config.schedule.eventbridge_group}: nothing to change (2 up to date)"
    after = schedules(config.schedule.eventbridge_group)
    assert {n: s["LastModificationDate"] for n, s in after.items()} == \
           {n: s["LastModificationDate"] for n, s in before.items()}


def test_dry_run_changes_nothing(newsletter, aws):
    config = configure(newsletter)
    group = config.schedule.eventbridge_group
    newsletter.issue("a.md", "title: A\ndate: 2027-01-05 08:00\n")
    report = sync(config, now=NOW, dry_run=True)
    assert report.created == ["publisher-a"] and report.dry_run
    assert "1 would be created" in report.summary()
    with pytest.raises(scheduler().exceptions.ResourceNotFoundException):  # not even the group was made
        scheduler().get_schedule_group(Name=group)

    sync(config, now=NOW)
    newsletter.content.joinpath("a.md").unlink()
    report = sync(config, now=NOW, dry_run=True)
    assert report.deleted == ["publisher-a"]
    assert sorted(schedules(group)) == ["publisher-a"]


def test_schedules_publisher_did_not_make_are_left_alone(newsletter, aws):
    config = configure(newsletter)
    group = config.schedule.eventbridge_group
    client = scheduler()
    client.create_schedule_group(Name=group)
    for name in ("someone-elses", "publisher-taken"):  # the second holds a name publisher wants
        client.create_schedule(Name=name, GroupName=group, ScheduleExpression="at(2027-03-01T00:00:00)",
                               FlexibleTimeWindow={"Mode": "OFF"}, Description="made by hand",
                               Target={"Arn": TARGET, "RoleArn": ROLE, "Input": "{}"})
    newsletter.issue("taken.md", "title: T\ndate: 2027-01-05 08:00\n")
    newsletter.issue("mine.md", "title: M\ndate: 2027-01-06 08:00\n")

    report = sync(config, now=NOW)
    assert report.created == ["publisher-mine"] and report.conflicts == ["publisher-taken"]
    assert sorted(report.foreign) == ["publisher-taken", "someone-elses"]
    assert "not made by publisher left alone" in report.summary() and "publisher-taken" in report.summary()
    newsletter.content.joinpath("taken.md").unlink()
    newsletter.content.joinpath("mine.md").unlink()
    report = sync(config, now=NOW)
    assert report.deleted == ["publisher-mine"] and not report.conflicts
    found = schedules(group)
    assert sorted(found) == ["publisher-taken", "someone-elses"]
    assert found["publisher-taken"]["Description"] == "made by hand"
    assert found["publisher-taken"]["ScheduleExpression"] == "at(2027-03-01T00:00:00)"


def test_schedule_names_are_valid_deterministic_and_distinct():
    import re

    long_a, long_b = "x" * 80 + "-a", "x" * 80 + "-b"
    for slug in ("a", "ai-daily-2027-01", long_a, long_b, "y" * 54):
        name = schedule_name(slug)
        assert re.fullmatch(r"[0-9a-zA-Z_.-]{1,64}", name) and name == schedule_name(slug)
    assert schedule_name("ai-daily") == "publisher-ai-daily"
    assert schedule_name("y" * 54) == "publisher-" + "y" * 54  # exactly 64: kept whole
    assert len(schedule_name(long_a)) == NAME_MAX and schedule_name(long_a) != schedule_name(long_b)


def test_at_expression_rounds_up_and_avoids_an_ambiguous_wall_time():
    shanghai = at_expression(datetime(2027, 1, 5, 0, 30, 0, 250_000, tzinfo=UTC), SHANGHAI)
    assert shanghai == ("at(2027-01-05T08:30:01)", "Asia/Shanghai")  # never before the issue is due
    new_york = ZoneInfo("America/New_York")
    # 2026-11-01 01:30 happens twice in New York: the instant is written in UTC instead.
    second = datetime(2026, 11, 1, 1, 30, tzinfo=new_york).replace(fold=1)
    assert at_expression(second, new_york) == ("at(2026-11-01T06:30:00)", "UTC")
    assert at_expression(datetime(2026, 11, 2, 9, 0, tzinfo=new_york), new_york) == \
           ("at(2026-11-02T09:00:00)", "America/New_York")


@pytest.mark.parametrize(("setting", "field"), [
    ('eventbridge_target_arn = "arn:aws:sns:us-east-1:123456789012:topic"', "schedule.eventbridge_target_arn"),
    ('eventbridge_role_arn = "publisher-scheduler"', "schedule.eventbridge_role_arn"),
    ('eventbridge_group = "no spaces"', "schedule.eventbridge_group"),
    ('eventbridge_group = "default"', "schedule.eventbridge_group"),
])
def test_config_errors_name_the_key(newsletter, setting, field):
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + f"[schedule]\n{setting}\n")
    with pytest.raises(PublisherError) as caught:
        newsletter.load_config()
    assert [p.field for p in caught.value.problems] == [field]
    assert field in str(caught.value)


@pytest.mark.parametrize(("setting", "missing"), [
    (f'eventbridge_target_arn = "{TARGET}"', "schedule.eventbridge_role_arn"),
    (f'eventbridge_role_arn = "{ROLE}"', "schedule.eventbridge_target_arn"),
])
def test_half_a_setting_is_an_error_naming_the_missing_key(newsletter, setting, missing):
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + f"[schedule]\n{setting}\n")
    with pytest.raises(PublisherError) as caught:
        sync(newsletter.load_config(), [], now=NOW)
    assert caught.value.problems[0].field == missing and missing in str(caught.value)


def test_without_the_settings_publish_makes_no_schedules(newsletter, aws, monkeypatch):
    config = newsletter.load_config()
    assert config.schedule.eventbridge_target_arn is None and config.schedule.eventbridge_group == "publisher"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail loudly
    newsletter.issue("a.md", "title: A\ndate: 2027-01-05 08:00\n")
    report = publish(config, now=NOW, secret=b"s" * 32)
    assert report.schedules is None and report.failures == []


def _with_subscribers(newsletter, extra: str = ""):  # type: ignore[no-untyped-def]
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + '[email]\nfrom_address = "news@example.com"\n' + extra)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"r{n}@example.com") for n in range(3))
    store.close()


def test_publish_syncs_schedules_last_and_reports_a_failure_without_blocking_emails(newsletter, aws):
    _with_subscribers(newsletter)
    config = configure(newsletter)
    group = config.schedule.eventbridge_group
    newsletter.issue("today.md", "title: T\ndate: 2026-12-03 18:00\n")
    newsletter.issue("next.md", "title: N\ndate: 2026-12-10 08:00\n")
    report = publish(config, now=NOW, secret=b"s" * 32)
    assert report.sent == {"today": 3} and report.failures == []
    assert report.schedules == f"schedules in {group}: 1 created"
    assert "schedules in" in summary(report)
    assert sorted(schedules(group)) == ["publisher-next"]

    # A schedule publisher did not make holds the name of a new issue: a failure, but the emails went out.
    scheduler().create_schedule(Name="publisher-later", GroupName=group, ScheduleExpression="at(2027-03-01T00:00:00)",
                                FlexibleTimeWindow={"Mode": "OFF"},
                                Target={"Arn": TARGET, "RoleArn": ROLE, "Input": "{}"})
    newsletter.issue("later.md", "title: L\ndate: 2027-01-05 08:00\n")
    newsletter.issue("now.md", "title: Now\ndate: 2026-12-03 19:00\n")
    report = publish(config, now=NOW + timedelta(hours=1), secret=b"s" * 32)
    assert report.sent == {"now": 3}
    assert len(report.failures) == 1 and report.failures[0].startswith("schedules: ")
    assert "publisher-later" in report.failures[0]


def _handler(monkeypatch, root: Path, name: str, function: str = "publish"):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_ROOT", str(root))
    monkeypatch.setenv("PUBLISHER_FUNCTION", function)
    monkeypatch.setenv("PUBLISHER_SECRET", "lambda-test-secret-value")
    spec = importlib.util.spec_from_file_location(name, DEPLOY / "lambda" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lambda_publish_action_runs_publish_due_with_the_schedules_event(newsletter, aws, monkeypatch):
    _with_subscribers(newsletter)
    config = configure(newsletter)
    newsletter.issue("next.md", "title: N\ndate: 2027-01-05 08:00\n")
    sync(config, now=NOW)
    event = json.loads(schedules(config.schedule.eventbridge_group)["publisher-next"]["Target"]["Input"])
    assert event == {"action": "publish", "due": True, "issue": "next"}
    # EventBridge invokes at 08:00:00 Shanghai; moto cannot invoke a Lambda, so the handler is called here.
    monkeypatch.setenv("PUBLISHER_NOW", "2027-01-05T08:00:00+08:00")
    module = _handler(monkeypatch, newsletter.root, "lambda_handler_publish")
    assert module.app is None  # the publish function does not build the subscribe endpoint

    class Context:
        function_name, aws_request_id = "publisher-publish", "r1"

    result = module.handler(event, Context())
    assert result["published"] is True and result["issue"] == "next"
    assert len(list((newsletter.root / "outbox" / "next").glob("*.eml"))) == 3
    assert (newsletter.root / "public" / "issues" / "next" / "index.html").exists()
    assert schedules(config.schedule.eventbridge_group) == {}  # its own schedule is past now: removed
    again = module.handler(event, Context())  # a retried invocation: nothing twice
    assert again["published"] is False and len(list((newsletter.root / "outbox" / "next").glob("*.eml"))) == 3
    with pytest.raises(PublisherError, match="takes"):
        module.handler({"rawPath": "/subscribe"}, Context())


def test_schedule_sync_command(newsletter, aws, run_cli):
    from publisher.cli import cli

    if "schedule" not in cli.commands:
        pytest.skip("`publisher schedule sync` is not in cli.py yet (the patch /tmp/helper-h2-cli.patch adds it)")
    unset = run_cli("-C", str(newsletter.root), "schedule", "sync")
    assert unset.exit_code == 1 and "schedule.eventbridge_target_arn" in unset.stderr
    config = configure(newsletter)
    newsletter.issue("a.md", "title: A\ndate: 2027-01-05 08:00\n")
    dry = run_cli("-C", str(newsletter.root), "schedule", "sync", "--dry-run")
    assert dry.exit_code == 0 and "1 would be created; nothing was changed." in dry.stdout
    with pytest.raises(scheduler().exceptions.ResourceNotFoundException):
        scheduler().get_schedule_group(Name=config.schedule.eventbridge_group)
    done = run_cli("-C", str(newsletter.root), "schedule", "sync")
    assert done.exit_code == 0 and "1 created." in done.stdout
    again = run_cli("-C", str(newsletter.root), "schedule", "sync")
    assert again.exit_code == 0 and "nothing to change (1 up to date)" in again.stdout


def test_an_aws_refusal_is_one_error_naming_the_permissions(newsletter):
    from botocore.exceptions import ClientError

    from publisher.schedules import _Scheduler

    config = configure(newsletter, group="news")

    def refused() -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: "
                                     "iam:PassRole"}}, "CreateSchedule")

    with pytest.raises(PublisherError) as caught:
        _Scheduler(config, None, "news").call("creating schedule publisher-a", refused)
    [problem] = caught.value.problems
    assert problem.field == "schedule.eventbridge_group" and "access denied for creating schedule publisher-a" \
        in problem.message
    for permission in ("scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                       "scheduler:GetSchedule", "scheduler:ListSchedules", "iam:PassRole"):
        assert permission in str(caught.value)
