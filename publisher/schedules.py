"""Exact-time publishing without a running process: one EventBridge Scheduler one-time schedule per future issue.

With `[schedule] eventbridge_target_arn` (the publish Lambda) and `eventbridge_role_arn` (the role the scheduler
assumes to invoke it), `sync` makes the schedules of `schedule.eventbridge_group` match the issues under
content/: every issue that is not a draft and is dated in the future gets one schedule, `at(<local time>)` in the
site's time zone, whose target input is `{"action": "publish", "due": true, "issue": "<slug>"}` (what
deploy/lambda/handler.py runs as `publish --due`). A moved issue's schedule is updated; the schedule of an issue
that was deleted, made a draft or is now past is deleted. A second sync changes nothing.

Ownership: a schedule is publisher's when its Description starts with `publisher: ` (schedules carry no tags), and
only publisher's schedules in the configured group are ever updated or deleted; any other schedule there is left
alone, and one that holds a name publisher wants is reported as a conflict, never overwritten.

Every future issue gets a schedule, `send: false` and email-only ones too: at that time `publish` deploys the
site, or emails, or both. Issues dated at the same instant get one schedule each; the second invocation finds the
work done (the delivery ledger and the publish state make `publish` idempotent).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .config import Config
from .content import Issue
from .errors import PublisherError
from .ses_contacts import aws_error

log = logging.getLogger(__name__)

MARK = "publisher: "  # how a schedule's Description starts when publisher made it
NAME_PREFIX = "publisher-"
NAME_MAX = 64  # EventBridge Scheduler: [0-9a-zA-Z-_.]+, 1 to 64 characters
PERMISSIONS = ("scheduler:GetScheduleGroup, scheduler:CreateScheduleGroup, scheduler:ListSchedules, "
               "scheduler:GetSchedule, scheduler:CreateSchedule, scheduler:UpdateSchedule and "
               "scheduler:DeleteSchedule on the schedule group, and iam:PassRole on schedule.eventbridge_role_arn")
_NOT_FOUND = "ResourceNotFoundException"


def enabled(config: Config) -> bool:
    """Whether EventBridge schedules are configured (either key set: a half setting is an error in `sync`)."""
    return bool(config.schedule.eventbridge_target_arn or config.schedule.eventbridge_role_arn)


def _settings(config: Config) -> tuple[str, str, str]:
    """(target ARN, role ARN, group); raises naming the missing key when only one of the two ARNs is set."""
    target, role = config.schedule.eventbridge_target_arn, config.schedule.eventbridge_role_arn
    if not target:
        raise PublisherError("schedule.eventbridge_target_arn is required with schedule.eventbridge_role_arn",
                             file=config.file.name, field="schedule.eventbridge_target_arn",
                             hint="the publish Lambda's ARN, e.g. arn:aws:lambda:us-east-1:111122223333:function:"
                                  "publisher-publish (or remove eventbridge_role_arn)")
    if not role:
        raise PublisherError("schedule.eventbridge_role_arn is required with schedule.eventbridge_target_arn",
                             file=config.file.name, field="schedule.eventbridge_role_arn",
                             hint="the role EventBridge Scheduler assumes to invoke the Lambda, e.g. "
                                  "arn:aws:iam::111122223333:role/publisher-scheduler (output SchedulerRoleArn)")
    return target, role, config.schedule.eventbridge_group


def schedule_name(slug: str) -> str:
    """`publisher-<slug>`; a name past 64 characters is cut and ends with a hash of the whole slug."""
    name = NAME_PREFIX + slug
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(slug.encode()).hexdigest()[:10]
    return f"{name[:NAME_MAX - len(digest) - 1]}-{digest}"


def at_expression(when: datetime, tz: ZoneInfo) -> tuple[str, str]:
    """(`at(YYYY-MM-DDThh:mm:ss)`, time zone name): the wall time of `when` in `tz`, rounded up to the second (a
    schedule never fires before the issue is due). A wall time that happens twice in `tz` (the hour a clock goes
    back) is written in UTC instead, which has no such hour."""
    if when.microsecond:
        when = when + timedelta(microseconds=1_000_000 - when.microsecond)
    local = when.astimezone(tz)
    wall = local.replace(tzinfo=None)
    if wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset():
        return f"at({when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')})", "UTC"
    return f"at({wall.isoformat(timespec='seconds')})", tz.key


@dataclass(frozen=True)
class Wanted:
    """One schedule as publisher wants it."""

    name: str
    slug: str
    expression: str
    timezone: str
    description: str
    target: str
    role: str
    input: dict[str, Any]

    def request(self, group: str) -> dict[str, Any]:
        """The arguments of CreateSchedule (UpdateSchedule takes the same, less ActionAfterCompletion in moto)."""
        return {"Name": self.name, "GroupName": group, "ScheduleExpression": self.expression,
                "ScheduleExpressionTimezone": self.timezone, "Description": self.description, "State": "ENABLED",
                "FlexibleTimeWindow": {"Mode": "OFF"}, "ActionAfterCompletion": "DELETE",
                "Target": {"Arn": self.target, "RoleArn": self.role,
                           "Input": json.dumps(self.input, sort_keys=True, separators=(",", ":"))}}

    def matches(self, found: dict[str, Any]) -> bool:
        """Whether a GetSchedule answer already is this schedule."""
        target = found.get("Target") or {}
        try:
            given = json.loads(target.get("Input") or "null")
        except ValueError:
            given = None
        return (found.get("ScheduleExpression") == self.expression
                and found.get("ScheduleExpressionTimezone") == self.timezone
                and found.get("Description") == self.description and found.get("State", "ENABLED") == "ENABLED"
                and (found.get("FlexibleTimeWindow") or {}).get("Mode") == "OFF"
                and target.get("Arn") == self.target and target.get("RoleArn") == self.role and given == self.input)


def wanted(config: Config, issues: Sequence[Issue], *, now: datetime) -> dict[str, Wanted]:
    """name -> schedule, for every issue that is not a draft and is dated after `now`."""
    target, role, _ = _settings(config)
    found: dict[str, Wanted] = {}
    for issue in sorted(issues, key=lambda i: (i.date, i.slug)):
        if issue.draft or not issue.is_future(now):
            continue
        expression, tz = at_expression(issue.date, config.site.timezone)
        name = schedule_name(issue.slug)
        found[name] = Wanted(name=name, slug=issue.slug, expression=expression, timezone=tz,
                             description=f"{MARK}{issue.slug} {issue.date.isoformat()}"[:512], target=target,
                             role=role, input={"action": "publish", "due": True, "issue": issue.slug})
    return found


@dataclass
class SyncReport:
    group: str
    dry_run: bool = False
    created: list[str] = field(default_factory=list)  # schedule names
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # in the group, not made by publisher: left alone
    conflicts: list[str] = field(default_factory=list)  # names publisher wants, held by a schedule it did not make

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def summary(self) -> str:
        would = "would be " if self.dry_run else ""
        parts = [f"{len(v)} {would}{k}" for k, v in (("created", self.created), ("updated", self.updated),
                                                       ("deleted", self.deleted)) if v]
        head = (f"schedules in {self.group}: " + ", ".join(parts) if parts
                else f"schedules in {self.group}: nothing to change")
        head += f" ({len(self.unchanged)} up to date)" if self.unchanged else ""
        if self.foreign:
            head += f"; {len(self.foreign)} not made by publisher left alone"
        if self.conflicts:
            head += (f"; name taken by a schedule publisher did not make: {', '.join(self.conflicts)} (rename or "
                     "delete it, or use another schedule.eventbridge_group)")
        return head


class _Scheduler:
    """The few EventBridge Scheduler calls we make, with errors a user can act on."""

    def __init__(self, config: Config, client: Any, group: str) -> None:
        self.config = config
        self.client = client
        self.group = group

    def call(self, what: str, fn: Callable[[], Any], *, missing_ok: bool = False) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except ClientError as exc:
            if missing_ok and exc.response.get("Error", {}).get("Code") == _NOT_FOUND:
                return None
            raise aws_error(exc, f"{what} (EventBridge Scheduler group {self.group})", config=self.config,
                            field="schedule.eventbridge_group", permissions=PERMISSIONS) from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"{what} (EventBridge Scheduler group {self.group})", config=self.config,
                            field="schedule.eventbridge_group", permissions=PERMISSIONS) from None

    def group_exists(self) -> bool:
        return self.call("reading the schedule group", lambda: self.client.get_schedule_group(Name=self.group),
                         missing_ok=True) is not None

    def names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"GroupName": self.group, "MaxResults": 100}
            if token:
                args["NextToken"] = token
            page = self.call("listing schedules", lambda args=args: self.client.list_schedules(**args))
            names.extend(s["Name"] for s in page.get("Schedules", []) if s.get("GroupName", self.group) == self.group)
            token = page.get("NextToken")
            if not token:
                return names


def _client(target_arn: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    region = target_arn.split(":")[3]  # the scheduler runs in the publish Lambda's region
    boto = BotoConfig(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=10, read_timeout=30)
    # A session of its own: the credential chain is read now, not whatever boto3's default session cached.
    return boto3.session.Session().client("scheduler", region_name=region, config=boto)


def sync(config: Config, issues: Sequence[Issue] | None = None, *, now: datetime, client: Any = None,
         dry_run: bool = False) -> SyncReport:
    """Make the schedules of `schedule.eventbridge_group` match the future issues (all under content/ when
    `issues` is None). `dry_run` reads and reports, and changes nothing."""
    target, _, group = _settings(config)
    if issues is None:
        from .content import load_issues

        issues = load_issues(config)
    want = wanted(config, issues, now=now)
    report = SyncReport(group=group, dry_run=dry_run)
    scheduler = _Scheduler(config, client or _client(target), group)
    found: dict[str, dict[str, Any]] = {}  # name -> GetSchedule answer, for publisher's own schedules
    if scheduler.group_exists():
        for name in scheduler.names():
            schedule = scheduler.call(f"reading schedule {name}",
                                      lambda name=name: scheduler.client.get_schedule(Name=name, GroupName=group),
                                      missing_ok=True)
            if schedule is None:  # fired and deleted itself since the listing
                continue
            if str(schedule.get("Description") or "").startswith(MARK):
                found[name] = schedule
            else:
                report.foreign.append(name)
    elif not dry_run:
        scheduler.call("creating the schedule group", lambda: scheduler.client.create_schedule_group(Name=group))
    for name, schedule in want.items():
        if name in report.foreign:
            report.conflicts.append(name)
        elif name not in found:
            report.created.append(name)
            if not dry_run:
                scheduler.call(f"creating schedule {name}",
                               lambda s=schedule: scheduler.client.create_schedule(**s.request(group)))
        elif schedule.matches(found[name]):
            report.unchanged.append(name)
        else:
            report.updated.append(name)
            if not dry_run:
                request = schedule.request(group)
                scheduler.call(f"updating schedule {name}", lambda r=request: scheduler.client.update_schedule(**r))
    for name in sorted(set(found) - set(want)):  # ours, for an issue deleted, made a draft, or now past
        report.deleted.append(name)
        if not dry_run:
            scheduler.call(f"deleting schedule {name}",
                           lambda name=name: scheduler.client.delete_schedule(Name=name, GroupName=group),
                           missing_ok=True)
    for name in report.created + report.updated + report.deleted:
        log.info("schedule %s %s%s", name, "would be " if dry_run else "",
                 "created" if name in report.created else "updated" if name in report.updated else "deleted")
    return report
