"""`publisher.toml`: loaded once, validated against a typed schema, every problem reported at once.

The schema is the dataclasses below: each field's metadata holds its validator, which converts the raw TOML
value or raises `ValueError` with the expected form. Defaults are the dataclass defaults; a field without one
is required. Any key can be overridden from the environment as `PUBLISHER_<SECTION>_<KEY>` (e.g.
`PUBLISHER_SITE_URL`), which is how CI and containers change a setting without editing the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import Problem, PublisherError

log = logging.getLogger(__name__)

CONFIG_FILE = "publisher.toml"

Validator = Callable[[Any], Any]


def _option(validator: Validator, default: Any = dataclasses.MISSING, *, env: bool = True) -> Any:
    return field(default=default, metadata={"validate": validator, "env": env})


# ---- validators: each takes a raw value, returns the converted one or raises ValueError(expected form) ----


def text(*, required: bool = False) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        if required and not value:
            raise ValueError("must not be empty")
        return value

    return check


# Everything that ends or splits a line: str.splitlines() (and with it the email package's header check) breaks
# at all of these, and the other C0 and C1 controls have no place in one line of text either.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character(value: str) -> str | None:
    """The first line-breaking or control character in `value` as "U+000D", or None."""
    match = CONTROL.search(value)
    return None if match is None else f"U+{ord(match.group()):04X}"


def line(*, required: bool = False) -> Validator:
    """Text that ends up in an email header (a From name, a subject prefix, the List-Id's name): one line."""
    base = text(required=required)

    def check(value: Any) -> str:
        value = base(value)
        found = control_character(value)
        if found:
            raise ValueError(f"must be one line of text, without line breaks or control characters (found {found})")
        return value

    return check


def _idna(host: str) -> str:
    """A host name as IDNA ASCII (münchen.de -> xn--mnchen-3ya.de); raises ValueError."""
    if host.isascii():
        return host
    import idna  # email-validator's own dependency; only a non-ASCII name needs it

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise ValueError(f"has a host name that is not a valid internationalised domain name ({exc})") from None


# Characters a URL may hold as they are (RFC 3986 reserved and unreserved, and "%" so that existing escapes stay).
_URL_SAFE = "/:@!$&'()*+,;=?#[]~%"


def ascii_url(url: str) -> str:
    """`url` with a Unicode host as IDNA and other non-ASCII characters percent-encoded (UTF-8), the form an
    email header can carry; an ASCII URL is returned as it is. Raises ValueError."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.partition(":")  # a bracketed IPv6 literal is ASCII and never gets here
    netloc = quote(userinfo, safe=_URL_SAFE) + at + _idna(host) + colon + port
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_URL_SAFE), quote(parts.query, safe=_URL_SAFE),
                       quote(parts.fragment, safe=_URL_SAFE)))


def _absolute_http(value: Any, example: str) -> str:
    if isinstance(value, str):
        parts = urlsplit(value.strip())
        if parts.scheme in ("http", "https") and parts.netloc and " " not in value.strip():
            ascii_url(value.strip())  # a Unicode host that IDNA refuses is an error here, not later in a send
            return value.strip()
    raise ValueError(f"must be an absolute http(s) URL like {example}")


def http_url(value: Any) -> str:
    """A base URL: always a folder, since without the slash urljoin would drop its last segment."""
    url = _absolute_http(value, "https://example.com/news/")
    return url if url.endswith("/") else url + "/"


def page_url(value: Any) -> str:
    return _absolute_http(value, "https://example.com/unsubscribe")


def header_url(value: Any) -> str:
    """A page URL that goes into an email header (List-Unsubscribe), which holds ASCII only."""
    return ascii_url(page_url(value))


_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ValueError("must be a BCP 47 language tag like zh-CN, en or en-US")
    return value


def timezone(value: Any) -> ZoneInfo:
    if isinstance(value, str) and value and not value.startswith(("/", ".")):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError("must be an IANA time zone name like Asia/Shanghai, America/New_York or UTC")


_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def email_address(value: Any) -> str:
    """An address as headers and SMTP carry it: a Unicode domain becomes IDNA (news@xn--mnchen-3ya.de)."""
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise ValueError("must be an email address like editor@example.com")
    local, _, domain = value.strip().rpartition("@")
    if not local.isascii():
        raise ValueError("is not supported: publisher cannot send from or to addresses with non-ASCII characters "
                         "before the @ (an internationalised domain after it is fine)")
    return f"{local}@{_idna(domain)}"


def optional(validator: Validator) -> Validator:
    def check(value: Any) -> Any:
        return None if value is None or value == "" else validator(value)

    return check


INT_MAX = 2**31 - 1  # far above any sensible setting, and within what SQLite, C and the OS take


def positive_int(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT_MAX:
        raise ValueError(f"must be a whole number from 1 to {INT_MAX}")
    return value


def positive_int_max(limit: int) -> Validator:
    def check(value: Any) -> int:
        try:
            number = positive_int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= limit:
            raise ValueError(f"must be a whole number from 1 to {limit}")
        return number

    return check


def boolean(value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def relative_path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a folder path like dist")
    return Path(value.strip())


_THEME = re.compile(r"^[A-Za-z0-9_.-]+$")


def theme_name(value: Any) -> str:
    if not isinstance(value, str) or not _THEME.match(value) or value in (".", ".."):
        raise ValueError("must be a theme name (a folder under themes/) like default")
    return value


# ---- the schema ----


@dataclass(frozen=True)
class SiteConfig:
    title: str = _option(line(required=True))  # also the From name and the List-Id's name
    url: str = _option(http_url)
    description: str = _option(text(), "")
    language: str = _option(language, "en")
    timezone: ZoneInfo = _option(timezone, ZoneInfo("UTC"))
    author: str = _option(line(), "")
    author_email: str | None = _option(optional(email_address), None)
    subscribe_url: str | None = _option(optional(page_url), None)  # the endpoint's /subscribe: pages get a form
    per_page: int = _option(positive_int_max(1000), 25)  # issues on each page of the home and tag lists


@dataclass(frozen=True)
class BuildConfig:
    output: Path = _option(relative_path, Path("dist"))
    theme: str = _option(theme_name, "default")


def hub_urls(value: Any) -> tuple[str, ...]:
    """`feeds.hubs`: WebSub hubs, a list of absolute http(s) URLs, each once. From the environment it is a TOML
    array: PUBLISHER_FEEDS_HUBS='["https://pubsubhubbub.appspot.com/"]'."""
    if isinstance(value, str) and value.strip().startswith("["):
        with contextlib.suppress(tomllib.TOMLDecodeError):
            value = tomllib.loads(f"hubs = {value}")["hubs"]
    if not isinstance(value, list | tuple):
        raise ValueError('must be a list of WebSub hub URLs like ["https://pubsubhubbub.appspot.com/"]')
    hubs: dict[tuple[str, str, str, str], str] = {}
    for item in value:
        try:
            url = ascii_url(_absolute_http(item, ""))
            if control_character(url):
                raise ValueError
        except ValueError:
            raise ValueError(f"must hold absolute http(s) URLs like https://pubsubhubbub.appspot.com/; {item!r} is "
                             "not one") from None
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ValueError(f"must not put a user name or password in a hub URL (every feed shows it): {url!r}")
        same = (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query)
        if same in hubs:
            raise ValueError(f"must name each hub once; {url!r} is there twice")
        hubs[same] = url
    return tuple(hubs.values())


@dataclass(frozen=True)
class FeedsConfig:
    limit: int = _option(positive_int, 20)
    full_content: bool = _option(boolean, True)
    hubs: tuple[str, ...] = _option(hub_urls, ())  # WebSub: every feed names these, deploy pings them


@dataclass(frozen=True)
class SearchConfig:
    enabled: bool = _option(boolean, True)  # a static search index (Pagefind) of the issue pages, and a search page


_LIST_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def list_id(value: Any) -> str:
    if not isinstance(value, str) or not _LIST_ID.match(value.strip().strip("<>")):
        raise ValueError("must be a dotted name like news.example.com (RFC 2919)")
    return value.strip().strip("<>")


def transport_name(value: Any) -> str:
    if value not in ("outbox", "smtp", "ses"):
        raise ValueError('must be "outbox", "smtp" or "ses"')
    return str(value)


def fanout_name(value: Any) -> str:
    if value == "":  # an empty PUBLISHER_EMAIL_FANOUT (a CI variable left unset) is the default
        return "local"
    if value not in ("local", "sqs"):
        raise ValueError('must be "local" (this process sends) or "sqs" (batches to an SQS queue, sent by workers)')
    return str(value)


_SQS_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")


def queue_url(value: Any) -> str:
    """An SQS queue URL as GetQueueUrl and CloudFormation give it: https://sqs.<region>.amazonaws.com/<account>/<name>."""
    if not isinstance(value, str) or not _SQS_URL.match(value.strip()):
        raise ValueError("must be an SQS queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/newsletter-send")
    return value.strip()


def positive_number(value: Any) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    # TOML has inf and nan: a nan rate would pass "<= 0" and make the rate limiter sleep(nan) mid-send.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= INT_MAX \
            or not math.isfinite(value):
        raise ValueError(f"must be a number above 0 and at most {INT_MAX} (messages per second)")
    return float(value)


@dataclass(frozen=True)
class EmailConfig:
    from_address: str | None = _option(optional(email_address), None)  # default: site.author_email
    from_name: str = _option(line(), "")  # default: site.title
    reply_to: str | None = _option(optional(email_address), None)
    subject_prefix: str = _option(line(), "")
    test_subject_prefix: str = _option(line(), "[TEST]")  # marks the subject of `send --test` copies; "" for none
    postal_address: str = _option(text(), "")  # CAN-SPAM: a physical postal address in every email
    reason: str = _option(text(), "")  # why the reader gets this; default by language
    unsubscribe_url: str | None = _option(optional(header_url), None)  # default: see unsubscribe_url() below
    unsubscribe_mailto: str | None = _option(optional(email_address), None)  # default: from_address
    list_id: str | None = _option(optional(list_id), None)  # default: newsletter.<site host>
    default_name: str = _option(line(), "")  # the greeting's name when a subscriber has none
    transport: str = _option(transport_name, "outbox")  # outbox | smtp | ses
    outbox: Path = _option(relative_path, Path("outbox"))  # the outbox transport's folder
    rate: float | None = _option(optional(positive_number), None)  # messages/s; SES: the account's MaxSendRate
    workers: int = _option(positive_int_max(32), 4)  # messages in flight at once (one rate limit for all)
    max_consecutive_failures: int = _option(positive_int, 20)  # then the run stops instead of burning the list
    fanout: str = _option(fanout_name, "local")  # local | sqs (needs subscribers.dynamodb_table; see fanout.py)
    queue_url: str | None = _option(optional(queue_url), None)  # with fanout = "sqs"; or PUBLISHER_EMAIL_QUEUE_URL


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def deploy_target(value: Any) -> str:
    """A folder path, or s3://bucket[/prefix] (the prefix is normalised to end with "/")."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a folder path like public or an S3 URL like s3://my-bucket/news/")
    value = value.strip()
    if value.startswith("s3://"):
        bucket, _, prefix = value[5:].partition("/")
        if not _S3_BUCKET.match(bucket) or ".." in bucket:
            raise ValueError("must name a valid S3 bucket (lowercase letters, digits, dots and hyphens), "
                             "like s3://my-bucket/news/")
        prefix = prefix.strip("/")
        return f"s3://{bucket}/{prefix + '/' if prefix else ''}"
    if "://" in value:
        raise ValueError("must be a folder path or an s3:// URL")
    return value


def aws_region(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", value.strip()):
        raise ValueError("must be an AWS region like us-east-1 or ap-northeast-1")
    return value.strip()


@dataclass(frozen=True)
class DeployConfig:
    target: str = _option(deploy_target, "public")  # a folder, or s3://bucket/prefix/
    region: str | None = _option(optional(aws_region), None)  # default: the AWS chain (AWS_REGION, profile)
    endpoint_url: str | None = _option(optional(page_url), None)  # an S3-compatible store; or AWS_ENDPOINT_URL
    cloudfront_distribution: str | None = _option(optional(text()), None)
    concurrency: int = _option(positive_int_max(64), 8)  # parallel uploads


@dataclass(frozen=True)
class Topic:
    """A topic readers choose on the preferences page: a subscriber tag, with its labels."""

    tag: str
    label: str  # in the site's language
    label_en: str = ""  # in English (shown beside `label`, or instead of it on an English site)

    def labels(self, language: str) -> tuple[str, str]:
        """(the label shown, a second one in English or the site's language, or "") for a page in `language`."""
        if language.lower().startswith("en") and self.label_en:
            return self.label_en, self.label if self.label != self.label_en else ""
        return self.label, self.label_en if self.label_en != self.label else ""


TOPICS_MAX = 20  # as subscribers.TAGS_MAX: a subscriber holds at most that many tags
TOPIC_TAG_MAX = 40  # as subscribers.TAG_MAX
TOPIC_LABEL_MAX = 60
TOPICS_EXAMPLE = 'e.g. topics = [{ tag = "zh", label = "中文", label_en = "Chinese" }]'


def _topic_text(value: Any, where: str, limit: int, *, required: bool) -> str:
    import unicodedata

    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string ({TOPICS_EXAMPLE})")
    value = unicodedata.normalize("NFKC", value).strip()  # as the stores clean a tag (subscribers.clean_text)
    if required and not value:
        raise ValueError(f"{where} must not be empty")
    if control_character(value) or not value.isprintable():
        raise ValueError(f"{where} contains a control or invisible character")
    if len(value) > limit:
        raise ValueError(f"{where} is {len(value)} characters long; at most {limit} are allowed")
    return value


def topics(value: Any) -> tuple[Topic, ...]:
    """`subscribers.topics`: an array of tables { tag, label, label_en }; the tags are validated as subscriber
    tags are (NFKC, trimmed, one line, at most 40 characters, no ';'), each declared once."""
    if not isinstance(value, list):
        raise ValueError(f"must be an array of tables, {TOPICS_EXAMPLE}")
    if len(value) > TOPICS_MAX:
        raise ValueError(f"declares {len(value)} topics; at most {TOPICS_MAX} are allowed")
    found: list[Topic] = []
    for n, item in enumerate(value):
        where = f"[{n}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a table, {TOPICS_EXAMPLE}")
        unknown = sorted(set(item) - {"tag", "label", "label_en"})
        if unknown:
            raise ValueError(f"{where} has the unknown key {unknown[0]!r} (the keys are tag, label, label_en)")
        if "tag" not in item or "label" not in item:
            raise ValueError(f"{where} needs a tag and a label, {TOPICS_EXAMPLE}")
        tag = _topic_text(item["tag"], f"{where}.tag", TOPIC_TAG_MAX, required=True)
        if ";" in tag:
            raise ValueError(f"{where}.tag {tag!r} contains ';' (';' separates tags in CSV files)")
        if any(t.tag == tag for t in found):
            raise ValueError(f"{where}.tag {tag!r} is declared twice")
        found.append(Topic(tag, _topic_text(item["label"], f"{where}.label", TOPIC_LABEL_MAX, required=True),
                           _topic_text(item.get("label_en", ""), f"{where}.label_en", TOPIC_LABEL_MAX,
                                       required=False)))
    return tuple(found)


_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def dynamodb_table(value: Any) -> str:
    """`subscribers.dynamodb_table`: a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)."""
    if not isinstance(value, str) or not _DYNAMODB_TABLE.match(value.strip()):
        raise ValueError('must be a DynamoDB table name (3 to 255 letters, digits, "_", "-" or "."), like "newsletter"')
    return value.strip()


@dataclass(frozen=True)
class SubscribersConfig:
    database: Path = _option(relative_path, Path("subscribers.db"))  # SQLite: subscribers and the delivery ledger
    ses_contact_list: str | None = _option(optional(text()), None)  # keep subscribers in this SES contact list
    ses_topic: str | None = _option(optional(text()), None)  # a topic of that list (SES hosts the preferences page)
    dynamodb_table: str | None = _option(optional(lambda v: dynamodb_table(v)), None)  # keep subscribers in DynamoDB
    # The topics readers choose on the preferences page (`publisher serve`): subscriber tags, with labels.
    topics: tuple[Topic, ...] = _option(topics, (), env=False)

    @property
    def in_sqlite(self) -> bool:
        """Whether the subscribers live in `database` beside the ledger (not in SES or DynamoDB)."""
        return not (self.ses_contact_list or self.dynamodb_table)


def smtp_security(value: Any) -> str:
    if value not in ("starttls", "tls", "none"):
        raise ValueError('must be "starttls", "tls" (implicit TLS, port 465) or "none"')
    return str(value)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = _option(text(), "localhost")
    port: int = _option(positive_int_max(65535), 587)
    security: str = _option(smtp_security, "starttls")
    username: str | None = _option(optional(text()), None)  # the password comes from PUBLISHER_SMTP_PASSWORD
    timeout: int = _option(positive_int_max(600), 30)


@dataclass(frozen=True)
class SesConfig:
    region: str | None = _option(optional(aws_region), None)
    configuration_set: str | None = _option(optional(text()), None)  # bounce/complaint events go through it
    tags: dict[str, str] | None = _option(optional(lambda v: _string_table(v)), None)


def _string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError('must be a table of text, e.g. tags = { campaign = "weekly" }')
    return dict(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
# A year is more than any of these settings needs (a schedule, a confirmation link's life, a rate window), and
# keeps `now + duration` and the seconds handed to sleep() and to tokens far from any overflow.
DURATION_MAX = timedelta(days=365)


def duration(value: Any) -> timedelta:
    """ "30s", "5m", "2h", "1d"."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError('must be a duration like "30s", "5m", "2h" or "1d"')
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    try:
        result: timedelta | None = timedelta(**{unit: float(match.group(1))})
    except OverflowError:  # "99999999999d": past timedelta's own limit
        result = None
    if result is None or result > DURATION_MAX:
        raise ValueError('must be a duration of at most a year ("365d")')
    return result


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def quiet_hours(value: Any) -> tuple[time, time]:
    """ "22:00-07:00": no emails from 22:00 to 07:00 in the site's time zone (may span midnight)."""
    parts = value.split("-") if isinstance(value, str) else []
    matches = [_CLOCK.match(p.strip()) for p in parts]
    if len(parts) != 2 or not all(matches) or parts[0].strip() == parts[1].strip():
        raise ValueError('must be two different times like "22:00-07:00"')
    start, end = (time(int(m.group(1)), int(m.group(2))) for m in matches if m)
    return start, end


_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:function:[A-Za-z0-9_-]{1,64}"
                        r"(:[A-Za-z0-9_$-]{1,128})?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
_SCHEDULE_GROUP = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")


def lambda_arn(value: Any) -> str:
    if not isinstance(value, str) or not _LAMBDA_ARN.match(value.strip()):
        raise ValueError("must be a Lambda function ARN like arn:aws:lambda:us-east-1:111122223333:function:"
                         "publisher-publish")
    return value.strip()


def role_arn(value: Any) -> str:
    if not isinstance(value, str) or not _ROLE_ARN.match(value.strip()):
        raise ValueError("must be an IAM role ARN like arn:aws:iam::111122223333:role/publisher-scheduler")
    return value.strip()


def schedule_group(value: Any) -> str:
    if not isinstance(value, str) or not _SCHEDULE_GROUP.match(value.strip()) or value.strip() == "default":
        raise ValueError("must be an EventBridge Scheduler group name of its own (letters, digits, '-', '_', '.'; "
                         "at most 64; not \"default\") like publisher")
    return value.strip()


@dataclass(frozen=True)
class ScheduleConfig:
    every: timedelta = _option(duration, timedelta(minutes=5))  # how often `publisher run` publishes what is due
    quiet_hours: tuple[time, time] | None = _option(optional(quiet_hours), None)  # no emails then (site time)
    max_lateness: timedelta = _option(duration, timedelta(hours=24))  # older issues are not emailed unless forced
    # EventBridge Scheduler (schedules.py): one `at(...)` schedule per future issue invoking this publish Lambda,
    # assuming this role; both or neither (unset: no schedules, as before).
    eventbridge_target_arn: str | None = _option(optional(lambda_arn), None)
    eventbridge_role_arn: str | None = _option(optional(role_arn), None)
    eventbridge_group: str = _option(schedule_group, "publisher")  # only schedules in it are ever changed


@dataclass(frozen=True)
class ServeConfig:
    host: str = _option(text(required=True), "127.0.0.1")  # behind a reverse proxy; 0.0.0.0 only on purpose
    port: int = _option(positive_int_max(65535), 8080)
    public_url: str | None = _option(optional(http_url), None)  # where /confirm and /unsubscribe are reached
    rate_per_ip: int = _option(positive_int, 10)  # subscribe requests per address per window
    rate_per_address: int = _option(positive_int, 3)
    rate_window: timedelta = _option(duration, timedelta(hours=1))
    confirm_within: timedelta = _option(duration, timedelta(days=7))  # a confirmation link expires after
    max_body: int = _option(positive_int, 16 * 1024)  # bytes
    trust_proxy: bool = _option(boolean, False)  # take the client address from X-Forwarded-For


SECTIONS: dict[str, type] = {"site": SiteConfig, "build": BuildConfig, "feeds": FeedsConfig, "search": SearchConfig,
                             "email": EmailConfig, "deploy": DeployConfig, "subscribers": SubscribersConfig,
                             "smtp": SmtpConfig, "ses": SesConfig, "schedule": ScheduleConfig, "serve": ServeConfig}


@dataclass(frozen=True)
class Config:
    root: Path
    file: Path
    site: SiteConfig
    build: BuildConfig
    feeds: FeedsConfig
    search: SearchConfig
    email: EmailConfig
    deploy: DeployConfig
    subscribers: SubscribersConfig
    smtp: SmtpConfig
    ses: SesConfig
    schedule: ScheduleConfig
    serve: ServeConfig

    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def themes_dir(self) -> Path:
        return self.root / "themes"

    @property
    def output_dir(self) -> Path:
        return self.root / self.build.output

    def fingerprint(self) -> str:
        """A stable text of every setting that shapes the output (for the render cache)."""
        parts = []
        for name in SECTIONS:
            if name in NOT_RENDERED:
                continue
            section = getattr(self, name)
            for f in dataclasses.fields(section):
                if f"{name}.{f.name}" not in NOT_RENDERED:
                    parts.append(f"{name}.{f.name}={getattr(section, f.name)!s}")
        parts.append(f"unsubscribe_url={unsubscribe_url(self)}")  # may come from serve.public_url (left out above)
        parts.append(f"preferences_url={preferences_url(self)}")  # whether the emails link to the page
        return "\n".join(parts)


def unsubscribe_url(config: Config) -> str:
    """Where the unsubscribe links point: `email.unsubscribe_url`, or else the `/unsubscribe` of `publisher serve`
    at `serve.public_url`, or else under `site.url` (where only a proxy to `serve` answers: `check` warns)."""
    return config.email.unsubscribe_url or (config.serve.public_url or config.site.url) + "unsubscribe"


def preferences_url(config: Config) -> str:
    """Where the preferences links point: the `/preferences` of `publisher serve` at `serve.public_url`; "" (no
    link) when serve is not configured, or when subscribers live in an SES contact list (SES hosts that page)."""
    if not config.serve.public_url or config.subscribers.ses_contact_list:
        return ""
    return config.serve.public_url + "preferences"


# Sections and settings that only steer writing, sending, deploying, scheduling and serving: no page, email or
# feed shows them, so changing one must not throw the render cache away. It is a list of what is left out, not
# of what is in, so that a new setting invalidates the cache until someone shows it renders nothing.
NOT_RENDERED = frozenset({
    "deploy", "subscribers", "smtp", "ses", "schedule", "serve", "build.output",
    "email.transport", "email.outbox", "email.rate", "email.workers", "email.max_consecutive_failures",
    "email.queue_url",  # (email.fanout stays in the key: alone, "sqs" is refused without a table to try it with)
    "email.test_subject_prefix",  # only `send --test` copies carry it, made at send time, never cached
})


def load_config(root: Path | str = ".", overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate `publisher.toml` in `root`.

    `overrides` maps "section.key" to a value (CLI flags); a `None` value means "not given" and is dropped,
    so a flag overrides the file only when it is used.
    """
    root = Path(root).resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise PublisherError(
            f"no {CONFIG_FILE} in {root}",
            hint="run `publisher init` to create a newsletter folder, or use -C DIR to point at one",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise PublisherError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", file=CONFIG_FILE) from None
    except tomllib.TOMLDecodeError as exc:
        raise PublisherError(f"is not valid TOML: {exc}", file=CONFIG_FILE,
                             hint="see https://toml.io for the syntax") from None
    return config_from_dict(raw, root=root, file=path, overrides=overrides,
                            environ=os.environ if environ is None else environ)


def config_from_dict(raw: Mapping[str, Any], *, root: Path, file: Path,
                     overrides: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None) -> Config:
    problems: list[Problem] = []
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    environ = environ or {}
    shown = file.name

    for key in raw:
        if key not in SECTIONS:
            _warn_unknown(shown, key, list(SECTIONS))
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(Problem(f"[{name}] must be a table", file=shown, field=name))
            table = {}
        known = [f.name for f in dataclasses.fields(cls)]
        for key in table:
            if key not in known:
                _warn_unknown(shown, f"{name}.{key}", [f"{name}.{k}" for k in known])
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            dotted = f"{name}.{f.name}"
            env_name = f"PUBLISHER_{name}_{f.name}".upper()
            if dotted in overrides:
                value, origin = overrides[dotted], "command line"
            elif f.metadata.get("env") and env_name in environ:
                value, origin = environ[env_name], f"environment variable {env_name}"
            elif f.name in table:
                value, origin = table[f.name], None
            elif f.default is dataclasses.MISSING:
                problems.append(Problem(f"{dotted} is required", file=shown, field=dotted,
                                        hint=_example(dotted)))
                continue
            else:
                continue
            try:
                values[f.name] = f.metadata["validate"](value)
            except (ValueError, OverflowError) as exc:  # OverflowError: a number too big for what it feeds
                source = f" (from {origin})" if origin else ""
                problems.append(Problem(f"{dotted} {exc}, got {value!r}{source}", file=shown, field=dotted))
        if not any(p.field and p.field.startswith(name + ".") for p in problems):
            sections[name] = cls(**values)
    problems += _conflicts(sections, shown)
    if problems:
        raise PublisherError(problems=problems)
    return Config(root=root, file=file, **sections)


def _conflicts(sections: Mapping[str, Any], shown: str) -> list[Problem]:
    """Settings that are valid one by one but not together."""
    problems = []
    subscribers = sections.get("subscribers")
    if subscribers is not None and subscribers.ses_contact_list and subscribers.dynamodb_table:
        problems.append(Problem("subscribers.dynamodb_table and subscribers.ses_contact_list are both set; subscribers "
                                "live in one store", file=shown, field="subscribers.dynamodb_table",
                                hint="keep one of the two keys (see `publisher subscribers migrate` to move a list)"))
    email = sections.get("email")
    if email is not None and email.fanout == "sqs" and not (subscribers and subscribers.dynamodb_table):
        # Workers on other machines claim rows in one shared ledger: a SQLite file cannot be that ledger.
        problems.append(Problem('email.fanout = "sqs" needs the delivery ledger in DynamoDB, which every worker '
                                "shares", file=shown, field="email.fanout",
                                hint="set [subscribers] dynamodb_table (see `publisher subscribers migrate --to "
                                     "dynamodb`), or remove fanout to send from this process"))
    return problems


_EXAMPLES = {
    "site.title": 'e.g. title = "AI 日报"',
    "site.url": 'e.g. url = "https://news.example.com/"',
}


def _example(dotted: str) -> str | None:
    return _EXAMPLES.get(dotted)


def _warn_unknown(file: str, key: str, known: list[str]) -> None:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    log.warning("%s: unknown key %s%s; it is ignored", file, key, hint)


# Here rather than in `themes`: a build that changes nothing checks the theme's files without importing Jinja.
_PACKAGED = Path(__file__).parent / "themes" / "default"  # in an installed wheel
_SOURCE = Path(__file__).parent.parent / "themes" / "default"  # in a source checkout / editable install


def builtin_theme_dir() -> Path:
    for candidate in (_PACKAGED, _SOURCE):
        if (candidate / "web").is_dir():
            return candidate
    raise PublisherError("the built-in theme is missing from this installation",
                         hint="reinstall publisher: pip install --force-reinstall publisher")
