"""The `publisher` command: a thin click layer over the Python API.

Exit status: 0 done, 1 a user-facing error (a `PublisherError`, printed one problem a line, no traceback),
2 bad usage (click's own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__, clock
from .errors import PublisherError, relpath

# Every command imports what it needs when it runs: `publisher --version`, `--help` and a typo answer at once,
# without loading Jinja, MJML, lxml, boto3 or Starlette.

log = logging.getLogger("publisher")


class UserError(click.ClickException):
    exit_code = 1

    def __init__(self, error: PublisherError) -> None:
        super().__init__(str(error))
        self.error = error

    def show(self, file: Any = None) -> None:
        for problem in self.error.problems:
            click.secho("error: ", fg="red", bold=True, err=True, nl=False)
            click.echo(str(problem), err=True)


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            raise UserError(exc) from None


class _WarningFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        return prefix + record.getMessage()


def _setup_logging(verbose: int, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_WarningFormatter())
    handler.setLevel(logging.ERROR if quiet else logging.NOTSET)  # so a command may lower the logger's level
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO)


class _Counter(logging.Handler):
    """Counts the warnings logged while it is attached (even under --quiet, which only hides them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def _counting_warnings() -> Iterator[_Counter]:
    counter, level = _Counter(), log.level
    log.addHandler(counter)
    log.setLevel(min(level or logging.WARNING, logging.WARNING))
    try:
        yield counter
    finally:
        log.removeHandler(counter)
        log.setLevel(level)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run as if started in DIR (the newsletter folder).")
@click.option("-v", "--verbose", count=True, help="Say more.")
@click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, verbose: int, quiet: bool) -> None:
    """Publish a newsletter from plain Markdown."""
    _setup_logging(verbose, quiet)
    ctx.meta[_QUIET] = quiet
    ctx.obj = (directory or Path(".")).resolve()
    if directory is not None and not ctx.obj.is_dir():
        raise click.BadParameter(f"{directory} is not a folder", param_hint="-C")


def _root(ctx: click.Context) -> Path:
    return ctx.obj  # type: ignore[no-any-return]


_QUIET = "publisher.quiet"


def _say(text: str) -> None:
    """A progress or summary line: printed unless -q/--quiet (which leaves only errors)."""
    if not click.get_current_context().meta.get(_QUIET):
        click.echo(text)


@cli.command()
@click.option("--drafts", is_flag=True, help="Include drafts.")
@click.option("--future", is_flag=True, help="Include issues dated in the future (scheduled).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: build.output, usually dist/).")
@click.option("--no-cache", is_flag=True, help="Ignore and do not update .publisher-cache/.")
@click.pass_context
def build(ctx: click.Context, drafts: bool, future: bool, output: Path | None, no_cache: bool) -> None:
    """Build the web archive and feeds into dist/."""
    from . import build as build_mod
    from .config import load_config
    root = _root(ctx)
    config = load_config(root, {"build.output": str(output.resolve()) if output else None})
    when = clock.now()
    with progress_bar("Rendering", after=1.0) as progress:
        result = build_mod.build(config, now=when, drafts=drafts, future=future, use_cache=not no_cache,
                                 progress=progress)
    out = relpath(result.output, Path.cwd())
    if result.skipped:
        _say(f"Nothing changed since the last build: {out}/ holds {plural(len(result.issues), 'issue')}, "
             f"{result.files} files ({result.seconds:.2f} s)")
    else:
        _say(f"Built {plural(len(result.issues), 'issue')} into {out}/: {result.written} files written, "
             f"{result.unchanged} unchanged, {result.removed} removed ({result.seconds:.2f} s)")
    left_out = []
    if result.drafts_left_out:
        left_out.append(f"{plural(result.drafts_left_out, 'draft')} (use --drafts)")
    if result.scheduled_left_out:
        left_out.append(f"{plural(result.scheduled_left_out, 'scheduled issue')} (use --future)")
    if left_out:
        _say(f"Left out {' and '.join(left_out)}.")
    _say(f"Look at it with `publisher preview --open` (or serve the folder: python3 -m http.server -d {out}).")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@cli.command()
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1): for CI.")
@click.pass_context
def check(ctx: click.Context, strict: bool) -> None:
    """Validate the config, every issue and the theme without writing anything."""
    from . import build as build_mod
    from .config import load_config
    config = load_config(_root(ctx))
    when = clock.now()
    with _counting_warnings() as counter:  # issue warnings (unknown keys, ...) are logged while loading
        issues, warnings = build_mod.check(config, now=when)
        for warning in warnings:
            log.warning("%s", warning)
    drafts = sum(1 for i in issues if i.draft)
    future = sum(1 for i in issues if not i.draft and i.is_future(when))
    counted = f"{plural(drafts, 'draft')}, {future} scheduled"
    if counter.count and strict:
        raise PublisherError(f"{plural(counter.count, 'warning')} (listed above) with --strict",
                             file=config.file.name, field="check --strict",
                             hint="fix each warning, or run `publisher check` without --strict")
    if counter.count:
        click.echo(f"OK: {plural(len(issues), 'issue')} ({counted}), no errors but "
                   f"{plural(counter.count, 'warning')} (see above; --strict makes them fail).")
    else:
        click.echo(f"OK: {plural(len(issues), 'issue')} ({counted}), no errors, no warnings.")


_INIT_CONFIG = """\
# publisher.toml: the settings of this newsletter. Reference: the README's "Configuration" section.

[site]
title = {title}
url = {url}                # where the site is published; feeds and emails link here
description = {description}
language = {language}      # BCP 47, e.g. zh-CN, en
timezone = {timezone}      # dates without a time zone are in this one
author = {author}
# author_email = "editor@example.com"

[build]
output = "dist"
theme = "default"          # a folder themes/<name>/ overrides the built-in theme file by file

[feeds]
limit = 20                 # newest issues in each feed
full_content = true        # whole issues in feeds, not just summaries

[email]
transport = "outbox"       # outbox (files in outbox/), smtp or ses
# from_address = "news@example.com"   # needed to send (default: site.author_email)
# postal_address = "..."              # CAN-SPAM: a postal address in every email

[deploy]
target = "public"          # a folder, or s3://bucket/prefix
"""

_INIT_GITIGNORE = "dist/\npublic/\noutbox/\nsubscribers.db\nsubscribers.db-*\n.publisher-cache/\n.publisher.lock\n"

# The placeholder issue `init` writes: a draft (never built for the public, never emailed), in the site's language.
_FIRST_ISSUE_FRONTMATTER = "---\ntitle: {title}\ndate: {date}\ntags: [welcome]\ndraft: true\n---\n\n"
_FIRST_ISSUE = {
    "en": ("Welcome to {site}", """\
Welcome to the first issue. Write in Markdown; everything above the second `---` line is the frontmatter.
This issue is a draft (`draft: true` above): it is never published or emailed until you remove that line.

## What to try

- Run `publisher preview --open` to look at it (drafts included).
- Run `publisher new "My second issue"` to start the next one.
"""),
    "zh": ("欢迎订阅{site}", """\
欢迎！这是第一期的草稿。正文用 Markdown 书写；第二个 `---` 之上是 frontmatter（标题、日期、标签）。
本期是草稿（上面的 `draft: true`）：删除这一行之前，它不会发布到网站，也不会发给订阅者。

## 试试这些

- 运行 `publisher preview --open` 预览（包括草稿）。
- 运行 `publisher new "第二期"` 开始写下一期。
"""),
}


def _first_issue(language: str, site: str, date: str) -> str:
    """The placeholder issue in the site's language (English unless a translation exists)."""
    title, text = _FIRST_ISSUE.get(language.lower().split("-")[0], _FIRST_ISSUE["en"])
    return _FIRST_ISSUE_FRONTMATTER.format(title=_toml_str(title.format(site=site)), date=date) + text


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _local_timezone() -> str:
    try:
        target = os.readlink("/etc/localtime")
        return target.split("zoneinfo/", 1)[1]
    except (OSError, IndexError):
        return "UTC"


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--title", default="My Newsletter", show_default=True)
@click.option("--url", default="https://example.com/", show_default=True, help="Where the site will live.")
@click.option("--language", default="en", show_default=True)
@click.option("--timezone", "tz", default=None, help="IANA name; default: this machine's.")
@click.option("--author", default="", help="Author name.")
@click.pass_context
def init(ctx: click.Context, directory: Path, title: str, url: str, language: str, tz: str | None,
         author: str) -> None:
    """Create a new newsletter folder in DIRECTORY (default: here)."""
    from .config import CONFIG_FILE, config_from_dict
    target = directory if directory.is_absolute() else _root(ctx) / directory
    if (target / CONFIG_FILE).exists():
        raise PublisherError(f"{relpath(target / CONFIG_FILE, Path.cwd())} already exists",
                             hint="init never overwrites; edit that file instead")
    tz = tz or _local_timezone()
    text = _INIT_CONFIG.format(title=_toml_str(title), url=_toml_str(url), description=_toml_str(""),
                               language=_toml_str(language), timezone=_toml_str(tz), author=_toml_str(author))
    # A bad --url or --timezone is reported now, naming the key, before anything is written.
    import tomllib

    config = config_from_dict(tomllib.loads(text), root=target.resolve(), file=target / CONFIG_FILE)
    (target / "content").mkdir(parents=True, exist_ok=True)
    (target / CONFIG_FILE).write_text(text, encoding="utf-8")
    today = clock.now().astimezone(config.site.timezone)
    first = target / "content" / f"{today:%Y-%m-%d}-welcome.md"
    if not first.exists():
        first.write_text(_first_issue(language, title, today.strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_INIT_GITIGNORE, encoding="utf-8")
    shown = relpath(target, Path.cwd())
    click.echo(f"Created a newsletter in {shown}/: {CONFIG_FILE}, content/{first.name} (a draft), .gitignore")
    click.echo(f"Next: cd {shown} && publisher preview --open")


def _ascii_slug(title: str) -> str:
    if not title.isascii():
        return ""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@cli.command()
@click.argument("title")
@click.option("--slug", default=None, help="URL name (a-z, 0-9, hyphens). Default: from an English title, "
              "else the date.")
@click.option("--date", "date_text", default=None, help="Publication time (ISO 8601); default: now.")
@click.pass_context
def new(ctx: click.Context, title: str, slug: str | None, date_text: str | None) -> None:
    """Start a new issue: content/YYYY-MM-DD-SLUG.md with its frontmatter filled in (as a draft)."""
    from . import content
    from .config import load_config
    config = load_config(_root(ctx))
    tz = config.site.timezone
    if date_text:
        try:
            when = content.parse_date(date_text, tz)
        except ValueError as exc:
            raise PublisherError(str(exc), field="--date", hint=getattr(exc, "hint", None)) from None
    else:
        when = clock.now().astimezone(tz).replace(second=0, microsecond=0)
    if slug is not None and not content.SLUG.match(slug):
        raise PublisherError(f"{slug!r} is not a valid slug", field="--slug",
                             hint="use lowercase a-z, 0-9 and single hyphens")
    day = f"{when:%Y-%m-%d}"
    slug = slug or _ascii_slug(title) or day
    files = content.content_files(config.content_dir)[0]
    taken = {content.slug_from_filename(p) for p in files} | {p.stem for p in files}
    base, n = slug, 2
    while slug in taken or (config.content_dir / _new_file_name(day, slug)).exists():
        slug, n = f"{base}-{n}", n + 1
    path = config.content_dir / _new_file_name(day, slug)
    if path.exists():
        raise PublisherError(f"{relpath(path, config.root)} already exists", hint="pass another --slug")
    title_yaml = '"' + title.replace("\\", "\\\\").replace('"', '\\"') + '"'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\ntitle: {title_yaml}\ndate: {when.isoformat()}\nslug: \"{slug}\"\ntags: []\ndraft: true\n---\n\n"
        "Write the first paragraph here: it becomes the summary in the archive, the feeds and the inbox.\n",
        encoding="utf-8",
    )
    click.echo(f"Created {relpath(path, Path.cwd())} (a draft: remove `draft: true` when it is ready).")


def _new_file_name(day: str, slug: str) -> str:
    """content/<day>-<slug>.md, or content/<slug>.md when the slug already starts with the day."""
    return f"{slug}.md" if slug == day or slug.startswith(day + "-") else f"{day}-{slug}.md"


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array (slug, title, date, status, sent, tags, file).")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List every issue, newest first: slug, date, status (draft, scheduled, published, sent to N), tags."""
    import json

    from .config import load_config
    from .scheduler import issue_statuses

    statuses = issue_statuses(load_config(_root(ctx)), now=clock.now())
    if as_json:
        click.echo(json.dumps([s.as_json() for s in statuses], ensure_ascii=False, indent=2))
        return
    for s in statuses:
        click.echo(f"{s.slug}\t{s.date:%Y-%m-%d %H:%M}\t{s.label}\t{', '.join(s.tags)}")


@cli.command("email")
@click.argument("slug")
@click.option("--text", "mode", flag_value="text", help="Print the plain-text part.")
@click.option("--eml", "mode", flag_value="eml", help="Print the whole MIME message.")
@click.option("--html", "mode", flag_value="html", default=True, help="Print the HTML (the default).")
@click.option("--to", "to", default="reader@example.com", show_default=True, help="The recipient to fill in.")
@click.option("--name", default="", help="The recipient's name, for the greeting.")
@click.pass_context
def email_command(ctx: click.Context, slug: str, mode: str, to: str, name: str) -> None:
    """Print the email of issue SLUG as one subscriber would get it (`_welcome`: the welcome email)."""
    from . import content, emails, markdown, welcome
    from .config import load_config
    from .tokens import SECRET_ENV, secret_from_env
    config = load_config(_root(ctx))
    if slug == welcome.SLUG:
        rendered = welcome.render(config)
    else:
        issues = content.load_issues(config)
        issue = content.find_issue(issues, slug)
        pages = {str(i.path): i.url_path for i in issues}
        rendered = emails.render_email(config, issue, markdown.to_html(issue.body), pages=pages)
    for warning in rendered.warnings:
        log.warning("%s", warning)
    try:
        secret = secret_from_env()
    except PublisherError:
        import secrets

        secret = secrets.token_bytes(32)
        log.warning("%s is not set: the unsubscribe link in this preview is signed with a throwaway key",
                    SECRET_ENV)
    sender = emails.sender_of(config, require_address=mode == "eml")
    factory = emails.MessageFactory(rendered, sender, secret, date=clock.now())
    recipient = emails.Recipient(to, name)
    if mode == "eml":
        click.echo(factory.message(recipient).decode("ascii"), nl=False)
    elif mode == "text":
        click.echo(factory.text_for(recipient), nl=False)
    else:
        click.echo(factory.html_for(recipient))


@cli.command("deploy")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--delete", is_flag=True, help="Remove files that are no longer in dist/ (after all uploads).")
@click.pass_context
def deploy_command(ctx: click.Context, dry_run: bool, delete: bool) -> None:
    """Upload dist/ to deploy.target (a folder or s3://bucket/prefix): only what changed, feeds last."""
    from . import deploy as deploy_mod
    from .config import load_config
    config = load_config(_root(ctx))
    with progress_bar("Uploading") as progress:
        result = deploy_mod.deploy(config, dry_run=dry_run, delete=delete, progress=progress)
    if dry_run:
        assert result.plan is not None
        for line in deploy_mod.describe(result.plan, delete, hubs=config.feeds.hubs):
            click.echo(line)
        click.echo(f"Dry run: {result.uploaded or len(result.plan.uploads)} files would be uploaded "
                   f"({result.bytes:,} bytes), {result.unchanged} unchanged, "
                   f"{len(result.plan.stale)} {'would be deleted' if delete else 'stale'}; nothing was changed.")
        return
    _say(f"Deployed to {result.target}: {result.uploaded} uploaded ({result.bytes:,} bytes), "
         f"{result.unchanged} unchanged, {result.deleted} deleted ({result.seconds:.2f} s)")
    if result.stale:
        _say(f"{plural(result.stale, 'file')} there no longer in dist/; "
             "`publisher deploy --delete` removes them.")
    if result.invalidation:
        _say(f"CloudFront invalidation {result.invalidation} created.")
    if result.hub_pings:  # a hub that was not told is also a warning (logged), never a failed deploy
        from .websub import summary as hub_summary

        told = hub_summary(result.hub_pings)
        _say(told[:1].upper() + told[1:] + ".")


# ---- subscribers ----


@cli.group()
def subscribers() -> None:
    """Manage subscribers (SQLite, a DynamoDB table with subscribers.dynamodb_table, or an SES contact list with
    subscribers.ses_contact_list)."""


def _store(ctx: click.Context):  # type: ignore[no-untyped-def]
    from .config import load_config
    from .subscribers import open_store

    return open_store(load_config(_root(ctx.find_root())))


def _email_arg(value: str) -> str:
    from .subscribers import normalize_email

    try:
        return normalize_email(value)
    except ValueError as exc:
        raise PublisherError(str(exc), field="EMAIL") from None


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name (for the greeting).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--status", type=click.Choice(["active", "unconfirmed"]), default="active", show_default=True)
@click.option("--reactivate", is_flag=True, help="Also reactivate an address that unsubscribed, bounced or complained.")
@click.pass_context
def subscribers_add(ctx: click.Context, email: str, name: str, tags: tuple[str, ...], status: str,
                    reactivate: bool) -> None:
    """Add a subscriber (or update their name and tags)."""
    from .subscribers import Subscriber

    address = _email_arg(email)
    verdict = _store(ctx).upsert(Subscriber(address, name, status, tags), reactivate=reactivate)
    messages = {"added": f"Added {address}.", "updated": f"Updated {address}.",
                "unchanged": f"{address} is already subscribed.",
                "kept": f"{address} unsubscribed (or bounced) earlier and was not reactivated; use --reactivate "
                        "only with their consent."}
    click.echo(messages[verdict])


@subscribers.command("remove")
@click.argument("email")
@click.option("--forget", is_flag=True, help="Erase every trace instead of unsubscribing (as `subscribers forget`).")
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, forget: bool) -> None:
    """Unsubscribe an address (kept as unsubscribed so that no import brings it back)."""
    address = _email_arg(email)
    store = _store(ctx)
    if store.get(address) is None:
        raise PublisherError(f"{address} is not a subscriber")
    if forget:
        store.close()
        ctx.invoke(subscribers_forget, address=address)
    else:
        store.set_status(address, "unsubscribed")
        click.echo(f"Unsubscribed {address}.")


@subscribers.command("list")
@click.option("--status", type=click.Choice(["active", "unconfirmed", "unsubscribed", "bounced", "complained"]))
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None) -> None:
    """List subscribers: email, status, name."""
    from .subscribers import printable

    # A name from a web form or an old import may hold escape codes: shown escaped, never sent to the terminal.
    for subscriber in _store(ctx).iter(status):
        click.echo(f"{printable(subscriber.email)}\t{subscriber.status}\t{printable(subscriber.name)}")


@subscribers.command("count")
@click.pass_context
def subscribers_count(ctx: click.Context) -> None:
    """Count subscribers by status."""
    from .subscribers import STATUSES

    store = _store(ctx)
    for status in STATUSES:
        click.echo(f"{status}\t{store.count(status)}")
    click.echo(f"total\t{store.count()}")


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--status", type=click.Choice(["active", "unconfirmed"]), default="active", show_default=True,
              help="Status for rows without a status column.")
@click.option("--reactivate", is_flag=True, help="Reactivate addresses that unsubscribed, bounced or complained.")
@click.option("--welcome", "welcome_new", is_flag=True,
              help="Send content/_welcome.md to the addresses this import makes active.")
@click.pass_context
def subscribers_import(ctx: click.Context, file: Path, status: str, reactivate: bool, welcome_new: bool) -> None:
    """Import a CSV (header row; email, and optionally name, status, tags separated by ';')."""
    from .subscribers import read_csv

    good, problems = read_csv(file, status=status)
    store = _store(ctx)
    with _welcoming(ctx, store, welcome_new):
        counts = store.upsert_many(good, reactivate=reactivate)
    for problem in problems:
        click.secho("skipped: ", fg="yellow", err=True, nl=False)
        click.echo(str(problem), err=True)
    click.echo(f"Imported {file.name}: {counts.get('added', 0)} added, {counts.get('updated', 0)} updated, "
               f"{counts.get('unchanged', 0)} unchanged, {counts.get('kept', 0)} kept unsubscribed, "
               f"{len(problems)} bad rows skipped.")
    if problems:
        ctx.exit(1)


@subscribers.command("export")
@click.argument("target", metavar="FILE|ADDRESS")
@click.option("--status", type=click.Choice(["active", "unconfirmed", "unsubscribed", "bounced", "complained"]),
              help="Only subscribers with this status (CSV export only).")
@click.pass_context
def subscribers_export(ctx: click.Context, target: str, status: str | None) -> None:
    """Export subscribers to a CSV file FILE (the import format), or print as JSON all we hold about one
    person, ADDRESS (their record, tags, soft bounces, pending confirmation, deliveries, outbox files).

    The argument is an ADDRESS when it has one @ with a dot in the part after it, no path separator, and does
    not end in .csv; anything else is a FILE (write ./name@example.com as a path to export to such a file)."""
    from .privacy import looks_like_address

    if looks_like_address(target):
        import json

        from .config import load_config
        from .privacy import export_person

        if status:
            raise click.UsageError("--status applies to a CSV export, not to one person's")
        data = export_person(load_config(_root(ctx.find_root())), target)
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from .subscribers import write_csv

    file = Path(target)
    if file.is_dir():
        raise click.UsageError(f"{target} is a folder; give a file name, e.g. {file / 'subscribers.csv'}")
    count = write_csv(_store(ctx).iter(status), file)
    click.echo(f"Exported {plural(count, 'subscriber')} to {file}.")


@subscribers.command("forget")
@click.argument("address")
@click.pass_context
def subscribers_forget(ctx: click.Context, address: str) -> None:
    """Erase ADDRESS from the newsletter folder (right to erasure): their subscriber record (or SES contact),
    their outbox messages and any note naming them; their delivery rows stay, made anonymous, so counts hold
    and they never get an issue twice. Exits 1 when the address is found nowhere."""
    from .config import load_config
    from .privacy import forget

    report = forget(load_config(_root(ctx.find_root())), address)
    click.echo(f"Forgot {report.address}:")
    for line in report.lines():
        click.echo(f"  {line}")
    if not report.keyed:
        click.echo("  (PUBLISHER_SECRET is not set: the anonymous rows hold a plain hash of the address)")
    for warning in report.warnings:
        log.warning("%s", warning)


@subscribers.command("init-table")
@click.option("--table", default=None, metavar="NAME", help="The table (default: subscribers.dynamodb_table).")
@click.pass_context
def subscribers_init_table(ctx: click.Context, table: str | None) -> None:
    """Create the DynamoDB table for subscribers (on-demand, with its status index and TTL; see deploy/README.md).
    For a test account or a local endpoint: in production the CloudFormation template creates it."""
    from .config import load_config
    from .stores.dynamodb import init_table

    name, created = init_table(load_config(_root(ctx.find_root())), table)
    click.echo(f"Created the DynamoDB table {name}." if created else f"The DynamoDB table {name} exists already; "
               "nothing was changed.")


@subscribers.command("migrate")
@click.option("--to", "target", type=click.Choice(["dynamodb"]), required=True, help="Where to copy the subscribers.")
@click.option("--table", default=None, metavar="NAME", help="The table (default: subscribers.dynamodb_table).")
@click.pass_context
def subscribers_migrate(ctx: click.Context, target: str, table: str | None) -> None:
    """Copy every subscriber of subscribers.db (and every change of address) into DynamoDB, never overwriting
    what is there, then compare the table with the file row for row. Exits 1 on any difference. Safe to run
    again; subscribers.db is not changed."""
    from .config import load_config
    from .stores.migrate import migrate_to_dynamodb

    config = load_config(_root(ctx.find_root()))
    with progress_bar("Copying", after=1.0) as progress:
        report = migrate_to_dynamodb(config, table=table,
                                     progress=(lambda stage, done, total: progress(done, total)) if progress else None)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise PublisherError(f"{report.table} does not match {report.source}: "
                             f"{plural(len(report.mismatches), 'difference')}, "
                             f"{plural(len(report.refused), 'refused row')}",
                             hint="fix the rows named above, then run the command again (it never overwrites)")
    click.echo(f"Verified: {report.table} holds every subscriber of {report.source}. publisher uses the table "
               "while [subscribers] dynamodb_table names it; keep the SQLite file as a backup.")


# ---- sending ----


@contextmanager
def _welcoming(ctx: click.Context, store, welcome_new: bool) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """With `welcome_new`: every address the block makes active gets the welcome, sent when the block is done."""
    if not welcome_new:
        yield
        return
    from . import welcome
    from .config import load_config

    config = load_config(_root(ctx))
    if not welcome.enabled(config):
        raise PublisherError(f"--welcome: there is no {relpath(welcome.path(config), config.root)}",
                             hint="write the welcome email there first (see the README), or leave out --welcome")
    with welcome.queue_activations(config, store):
        yield
    sent = welcome.send_pending(config)
    click.echo(f"welcome: {plural(sent.sent, 'message')} sent" + (f", {sent.failed} failed" if sent.failed else ""))


@cli.command("import")
@click.argument("source", type=click.Choice(["feed", "mailchimp", "listmonk", "substack", "buttondown", "ghost",
                                              "csv"]))
@click.argument("path")
@click.option("--dry-run", is_flag=True, help="Say what would be written or stored; change nothing.")
@click.option("--map", "mapping", default="", metavar="FIELD=COLUMN,...",
              help="csv: the columns holding email, name, tags and status (e.g. email=Email Address,name=Name).")
@click.option("--status", type=click.Choice(["active", "unconfirmed", "unsubscribed", "bounced", "complained"]),
              default="active", show_default=True, help="csv: the status of rows without a status column.")
@click.option("--subscription-status", type=click.Choice(["confirmed", "unconfirmed", "unsubscribed"]),
              default=None, help="listmonk: the subscription_status filter the export was made with.")
@click.option("--old-url", metavar="URL", help="substack, buttondown, ghost: the address the newsletter had "
              "(e.g. https://name.substack.com), so each issue keeps its old URL as `source`.")
@click.option("--download-images", is_flag=True, help="Copy each issue's remote images into a folder beside it "
              "(content/<date>-<slug>/); an image that cannot be copied stays remote.")
@click.option("--welcome", "welcome_new", is_flag=True,
              help="Send content/_welcome.md to the addresses this import makes active.")
@click.option("--redirects", is_flag=True, help="Keep each issue's old path as `aliases:`, so the site redirects "
              "it to the new page (a page per old path, _redirects, S3 redirect metadata).")
@click.pass_context
def import_command(ctx: click.Context, source: str, path: str, dry_run: bool, mapping: str, status: str,
                   subscription_status: str | None, old_url: str | None, download_images: bool,
                   redirects: bool, welcome_new: bool) -> None:
    """Import past issues or subscribers from another tool's export (see docs/import-formats.md).

    Consent is never widened: only rows the export marks as opted in come in active; unsubscribed, cleaned,
    bounced and blocklisted ones come in suppressed; an address suppressed here stays so.
    """
    from .importers import source as importer
    from .importers import writer
    from .importers.archive import NoTable

    module = importer(source)
    issues = None
    if hasattr(module, "read_posts"):
        from .config import load_config

        issues = writer.IssueReport(source=path, dry_run=dry_run, unit="page" if source == "feed" else "file")
        if source == "feed":
            posts = module.read_posts(path, issues)
        else:
            posts = module.read_posts(Path(path), issues, old_url=old_url)
        copier = None
        if download_images:
            from .importers.images import ImageCopier

            copier = ImageCopier()
        with progress_bar("Importing", after=1.0) as progress:
            writer.write_issues(load_config(_root(ctx)), posts, issues, progress=progress, images=copier,
                                aliases=redirects)
        # An export of the list alone (Ghost's members CSV) has no issues: its notes say so, no total is owed.
        for line in issues.lines() if posts or issues.skipped else [f"note: {n}" for n in issues.notes]:
            click.echo(line)
    if not hasattr(module, "read_subscribers"):
        return
    options: dict[str, object] = {}
    if source == "csv":
        options = {"mapping": module.parse_map(mapping), "status": status}
    elif source == "listmonk":
        options = {"subscription_status": subscription_status}
    try:
        imported = module.read_subscribers(Path(path), **options)
    except NoTable as exc:
        if issues is None or not (issues.written or issues.skipped):
            raise
        click.echo(f"subscribers: none in this export ({exc.problems[0].message})")
        return
    store = _store(ctx)
    try:
        with _welcoming(ctx, store, welcome_new and not dry_run), progress_bar("Storing", after=1.0) as progress:
            report = writer.store(imported, store, dry_run=dry_run, progress=progress)
    finally:
        store.close()
    for line in report.lines():
        click.echo(line)
    if imported.problems:  # the good rows are in; the refused ones, listed above, make the exit status 1
        ctx.exit(1)


@cli.command("send")
@click.argument("slug")
@click.option("--test", "test_to", metavar="ADDR", help="Send one copy to ADDR; the ledger is not touched.")
@click.option("--dry-run", is_flag=True, help="Show the audience and the first messages' headers; send nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Send to at most N subscribers (a warm-up).")
@click.option("--resend-uncertain", is_flag=True, help="Send again the messages an interrupted run may have sent.")
@click.option("--mark-uncertain-sent", is_flag=True, help="Count those messages as sent instead.")
@click.option("--segment", metavar="EXPR",
              help="Send to this segment instead of the issue's audience: tags as YAML flow text, e.g. paid, "
                   "'[paid, vip]' or '{any: [zh, en], all: [x], not: [paused]}'.")
@click.option("--workers", "fanout", type=click.Choice(["local", "sqs"]),
              help="local: send from this process; sqs: queue batches of 100 recipients for `publisher worker` "
                   "processes or the worker Lambda function (default: email.fanout).")
@click.option("--queue", metavar="URL", help="With --workers sqs: the SQS queue (default: email.queue_url).")
@click.option("--requeue", is_flag=True, help="With --workers sqs: queue every row still pending again (after "
              "batches went to the dead-letter queue).")
@click.pass_context
def send_command(ctx: click.Context, slug: str, test_to: str | None, dry_run: bool, limit: int | None,
                 resend_uncertain: bool, mark_uncertain_sent: bool, segment: str | None, fanout: str | None,
                 queue: str | None, requeue: bool) -> None:
    """Send issue SLUG to every active subscriber in its audience who has not had it yet (resumes where it
    stopped)."""
    from .config import load_config
    from .sending import send_issue

    if resend_uncertain and mark_uncertain_sent:
        raise click.UsageError("--resend-uncertain and --mark-uncertain-sent exclude each other")
    from .scheduler import publish_lock

    config = load_config(_root(ctx))
    # The ledger already makes two senders of one issue safe; the lock also keeps a send from racing a publish.
    lock = publish_lock(config.root) if not (dry_run or test_to) else contextlib.nullcontext()
    with lock, progress_bar("Sending") as progress:
        report = send_issue(config, slug, limit=limit, dry_run=dry_run, test_to=test_to, now=clock.now(),
                            resend_uncertain=resend_uncertain, mark_uncertain_sent=mark_uncertain_sent,
                            progress=progress, segment=segment, fanout=fanout, queue=queue, requeue=requeue)
    if test_to:
        click.echo(f"Sent a test copy of {slug} to {test_to} through {config.email.transport}.")
        return
    if dry_run:
        click.echo(report.segment_line)
        click.echo(f"Dry run: {slug} would go to {report.remaining} of {report.audience} subscribers "
                   f"({report.already_sent} already have it) through {config.email.transport}.")
        for headers in report.preview:
            click.echo("\n" + headers)
        return
    if report.queue:
        batches = f"{report.batches} batch{'' if report.batches == 1 else 'es'}"
        click.echo(f"{slug}: queued {plural(report.queued, 'recipient')} in {batches} to "
                   f"{report.queue}; {report.remaining:,} of {report.audience:,} pending, {report.already_sent:,} "
                   "sent. Workers send them (publisher worker, or the worker function); `publisher report "
                   f"{slug}` shows how far they are.")
        return
    click.echo(f"{slug}: {report.sent} sent, {report.failed} failed, {report.skipped} skipped, "
               f"{report.remaining} still pending, {report.already_sent} sent earlier; "
               f"{report.seconds:.1f} s, {report.rate:.0f} messages/s.")
    if report.uncertain:
        click.echo(f"{plural(report.uncertain, 'message')} got no answer and may or may not have gone out; "
                   "run send again with --resend-uncertain or --mark-uncertain-sent.")
    if report.stopped:
        raise PublisherError(f"sending stopped: {report.stopped}",
                             hint="fix the cause and run `publisher send` again: it continues where it stopped")


@cli.command("worker")
@click.option("--queue", metavar="URL", help="The SQS queue `send --workers sqs` fills (default: email.queue_url).")
@click.option("--exit-when-idle", "idle", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Stop once no batch came for this long (default: run until SIGTERM or Ctrl-C).")
@click.option("--max-batches", type=click.IntRange(min=1), help="Stop after taking this many batches.")
@click.option("--wait-seconds", type=click.IntRange(0, 20), default=10, show_default=True,
              help="SQS long polling: how long one receive waits for a batch (0: short polling).")
@click.pass_context
def worker_command(ctx: click.Context, queue: str | None, idle: float | None, max_batches: int | None,
                   wait_seconds: int) -> None:
    """Send the batches queued by `send --workers sqs`: any number of these, on any machines, share the ledger
    and the rate limit in DynamoDB."""
    import signal
    import threading

    from .config import load_config
    from .fanout import Worker, queue_of

    config = load_config(_root(ctx))
    url = queue_of(config, queue)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):  # finish the message in flight, hand the batch back, stop
        signal.signal(number, lambda *_: stop.set())
    worker = Worker(config, stop=stop)
    try:
        report = worker.run(url, idle_exit=idle, max_messages=max_batches, wait_seconds=wait_seconds)
    finally:
        worker.close()
    batches = f"{report.messages} batch{'' if report.messages == 1 else 'es'}"
    click.echo(f"worker: {batches} taken ({report.done} done, {report.returned} handed "
               f"back, {report.poison} poison); {report.sent:,} sent, {report.failed} failed, {report.skipped} "
               f"skipped, {report.uncertain} uncertain; {report.seconds:.1f} s, {report.rate:.0f} messages/s.")
    if report.stopped:
        raise PublisherError(f"the worker stopped: {report.stopped}",
                             hint="fix the cause and start the worker again: its batches come back to the queue")


@cli.command("events")
@click.option("--queue", "queue_url", required=True, help="The SQS queue URL that receives SES notifications.")
@click.pass_context
def events_command(ctx: click.Context, queue_url: str) -> None:
    """Read SES bounce and complaint notifications (SNS -> SQS) and suppress those addresses."""
    from .config import load_config
    from .events import process_queue

    report = process_queue(load_config(_root(ctx)), queue_url)
    click.echo(f"{report.messages} notifications: {report.hard_bounces} hard bounces, {report.complaints} "
               f"complaints (never emailed again), {report.soft_bounces} soft bounces, {report.deliveries} "
               f"deliveries, {report.unknown_recipients} unknown addresses, {report.ignored} ignored.")


@cli.command("report")
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable keys: see the README).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one self-contained HTML page (with charts) to FILE.")
@click.pass_context
def report_command(ctx: click.Context, slug: str | None, as_json: bool, html_file: Path | None) -> None:
    """What happened to a sent issue (default: the most recently sent one): sent, failed and why, skipped,
    bounced, complained, unsubscribed since. Reads the ledger only; no open or click tracking."""
    import json

    from .config import load_config
    from .report import html_page, issue_report

    config = load_config(_root(ctx))
    report = issue_report(config, slug)
    if html_file is not None:
        try:
            html_file.write_text(html_page(config, report), encoding="utf-8")
        except OSError as exc:
            raise PublisherError(f"cannot write the report: {exc.strerror}", file=html_file) from None
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    for line in report.lines(config.site.timezone):
        click.echo(line)
    if html_file is not None:
        _say(f"Wrote the HTML report to {html_file}.")


@cli.command("review")
@click.argument("slugs", nargs=-1)
@click.option("--changed-since", "changed_since", metavar="REF", default=None,
              help="Review the issues whose .md files changed since the git revision REF (e.g. origin/main).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: review/ in the newsletter folder): report.html, .md, .json, screens/.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html", "json"]), default="markdown",
              show_default=True, help="What to print on stdout (all three are written to --out).")
@click.option("--offline", is_flag=True, help="Do not check links over the network (the site's own still are).")
@click.option("--no-screenshots", is_flag=True, help="Take no screenshots (no browser started).")
@click.option("--no-spam", is_flag=True, help="Do not run SpamAssassin.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1): for CI.")
@click.option("--max-image-kb", type=click.IntRange(1), default=200, show_default=True,
              help="Warn about a local image larger than this.")
@click.option("--timeout", "timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds for one link request.")
@click.pass_context
def review_command(ctx: click.Context, slugs: tuple[str, ...], changed_since: str | None, out: Path | None,
                   fmt: str, offline: bool, no_screenshots: bool, no_spam: bool, strict: bool, max_image_kb: int,
                   timeout: float) -> None:
    """Review issues before sending (default: the next issue due): screenshots, the email as inboxes see it,
    SpamAssassin, every link, the content checks. Exit status 0 OK or warnings, 1 errors (--strict: warnings)."""
    from .config import load_config
    from .review import Options, render_report, review

    if slugs and changed_since:
        raise click.UsageError("give SLUGs or --changed-since, not both")
    config = load_config(_root(ctx))
    options = Options(slugs=slugs, changed_since=changed_since, out=out.resolve() if out else None, offline=offline,
                      screenshots=not no_screenshots, spam=not no_spam, strict=strict, max_image_kb=max_image_kb,
                      link_timeout=timeout)
    result = review(config, options, now=clock.now())
    click.echo(render_report(result, fmt))
    where = relpath(options.out or config.root / "review", Path.cwd())
    click.echo(f"review: {result.verdict} ({plural(len(result.issues), 'issue')}); the report is in {where}/",
               err=True)
    ctx.exit(result.exit_code)


@cli.command("preview")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in the browser.")
@click.pass_context
def preview_command(ctx: click.Context, port: int, open_browser: bool) -> None:
    """Serve the site, every email and the feeds on 127.0.0.1, rebuilt and reloaded on every change."""
    import threading
    import webbrowser

    from .config import load_config
    from .preview import PREFIX, Preview

    load_config(_root(ctx))  # a broken config fails now, with its message
    try:
        preview = Preview(_root(ctx), port).start()
    except OSError as exc:
        raise PublisherError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                             hint="another program uses the port: pass --port N (or --port 0 for any)") from None
    click.echo(f"Previewing {_root(ctx)} at {preview.url} (drafts and scheduled issues included)")
    click.echo(f"Every issue's email, text and headers: {preview.url.rstrip('/')}{PREFIX}/")
    click.echo("Rebuilds on every change to content/, themes/ and publisher.toml. Ctrl-C stops.")
    if open_browser:
        webbrowser.open(preview.url.rstrip("/") + PREFIX + "/")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        preview.stop()


# ---- publishing on a schedule ----


@cli.command("publish")
@click.option("--due", is_flag=True, help="The scheduler's form: quiet when there is nothing to do, honours quiet "
              "hours, and exits 0 when another publish is running.")
@click.option("--force", is_flag=True, help="Also email issues older than schedule.max_lateness.")
@click.pass_context
def publish_command(ctx: click.Context, due: bool, force: bool) -> None:
    """Build, deploy if the site changed, and email every due issue that has not been emailed yet."""
    import signal
    import threading

    from .config import load_config
    from .scheduler import Busy, locations, publish, summary

    config = load_config(_root(ctx))
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):  # a stop request ends a send between two messages
        signal.signal(number, lambda *_: stop.set())
    try:
        report = publish(config, now=clock.now(), due=due, force=force, stop=stop)
    except Busy as exc:
        if due:
            _say(exc.problems[0].message + "; nothing to do here.")
            return
        raise
    if due and not report.did_something and not report.failures and not report.deferred:
        _say("Nothing due.")
        return
    said = summary(report)  # not .capitalize(): it lowercases the rest (hub URLs, error codes, "WebSub")
    _say(said[:1].upper() + said[1:] + ".")
    for line in locations(config, report):
        _say(line)
    if report.failures:
        raise PublisherError(f"{plural(len(report.failures), 'issue')} could not be emailed: "
                             + "; ".join(report.failures), hint="the next publish tries again")


@cli.command("run")
@click.pass_context
def run_command(ctx: click.Context) -> None:
    """Publish what is due every schedule.every until stopped (SIGTERM or Ctrl-C)."""
    from .config import load_config
    from .scheduler import run_forever

    load_config(_root(ctx))  # a broken config fails now, not in the loop
    if not log.handlers or log.level > logging.INFO:
        _setup_logging(0, False)
    for handler in log.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    run_forever(_root(ctx))


@cli.group("schedule")
def schedule_group() -> None:
    """EventBridge Scheduler: publish each future issue at its exact time ([schedule] eventbridge_*)."""


@schedule_group.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.pass_context
def schedule_sync(ctx: click.Context, dry_run: bool) -> None:
    """One schedule per future issue in schedule.eventbridge_group: create, move, delete (publish does it too)."""
    from . import schedules
    from .config import load_config

    config = load_config(_root(ctx))
    if not schedules.enabled(config):
        raise PublisherError("no EventBridge schedules are configured", file=config.file.name,
                             field="schedule.eventbridge_target_arn",
                             hint="set [schedule] eventbridge_target_arn and eventbridge_role_arn (deploy/README.md, "
                                  "Exact-time publishing with EventBridge Scheduler)")
    report = schedules.sync(config, now=clock.now(), dry_run=dry_run)
    said = report.summary()
    _say(said[:1].upper() + said[1:] + ("; nothing was changed." if dry_run else "."))
    if report.conflicts:
        raise PublisherError(f"{plural(len(report.conflicts), 'schedule name')} taken by schedules publisher did "
                             f"not make: {', '.join(report.conflicts)}",
                             hint="rename or delete them, or set another schedule.eventbridge_group")


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: serve.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: serve.port, 8080).")
@click.pass_context
def serve_command(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the subscribe / confirm / unsubscribe endpoint (put it behind a reverse proxy with TLS)."""
    from .config import load_config
    from .subscription import serve

    serve(load_config(_root(ctx)), host, port)


@contextmanager
def progress_bar(label: str, after: float = 0.0, *, stream=None) -> Iterator[Callable[[int, int], None] | None]:  # type: ignore[no-untyped-def]
    """A rich progress bar on a terminal (`stream`, default stderr), shown once the work has taken `after` seconds
    (a quick build stays one line); nothing (the summary line only) in logs and pipes."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
                   console=Console(file=stream))
    task = bar.add_task(label, total=None)
    started, shown = time.monotonic(), False

    def update(done: int, total: int) -> None:
        nonlocal shown
        bar.update(task, completed=done, total=total)
        if not shown and time.monotonic() - started >= after:
            bar.start()
            shown = True

    try:
        if after <= 0:
            update(0, 0)
        yield update
    finally:
        if shown:
            bar.stop()


def main() -> None:
    cli(prog_name="publisher")
