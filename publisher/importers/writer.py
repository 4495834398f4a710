"""The one writer every importer hands its findings to: past issues become files in content/, subscribers rows
in the store. The rules live here, not in the readers:

Issues: `content/<YYYY-MM-DD>-<slug>.md`, frontmatter written by a YAML library, the body converted from HTML by
`convert.html_to_markdown`; `send: false` on every one (readers had it once: `publish` must never email it again);
a file that exists is never overwritten, so a second import of the same export writes nothing; every file is
checked by the same loader a build uses before it is written.

Subscribers (docs/import-formats.md, with the sources for every field name):
- only a row the export marks as opted in becomes `active`; pending ones `unconfirmed`;
- unsubscribed, cleaned, bounced, complained, blocklisted, disabled and deleted rows come in suppressed
  (`unsubscribed`, `bounced`, `complained`): never mailed, and a later sign-up must confirm again;
- contacts that never subscribed (Mailchimp's "non-subscribed") are not imported, and counted;
- an address in several rows or files takes the most restrictive status;
- a status that cannot be told from the export is an error, never a guess.
An address already suppressed here stays so whatever an import says (the store's `upsert`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import yaml

from .. import content, markdown, redirects
from ..config import Config
from ..errors import Problem, PublisherError, relpath
from ..subscribers import Subscriber, validate_subscriber
from .convert import Converted, convert, plain
from .images import ImageCopier, remote_images, rewrite

MAX_SLUG = 60
VALIDATE_PARALLEL_MIN = 20_000  # addresses before the checks are spread over the cores
PARALLEL_MIN = 64  # posts to convert before the work is spread over the cores (a fork costs ~50 ms)
TOO_DEEP = Converted("", "", too_deep=True)
SHOWN_PAGES = 5  # of the pages or files read, named in the report (an export has one per post)
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------------- issues


@dataclass
class Post:
    """One past issue as a source found it, before it is checked and written."""

    key: str  # what makes it the same post across pages or runs: id, else link, else title + date
    title: str
    date_text: str | None
    link: str | None  # its old URL: becomes `source`, and the old path to redirect
    html: str = ""  # the body as HTML (converted), unless `markdown` is given
    summary_html: str = ""  # a summary as HTML; written only when it is not just the body's start
    tags: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    image: str | None = None
    markdown: str | None = None  # the body as Markdown already (Buttondown's plain-text mode), kept as written
    summary: str = ""  # a summary as plain text (a subtitle), written as it is
    subject: str | None = None  # the email subject, when it differed from the title
    draft: bool = False
    slug: str | None = None  # the export's own URL name (Substack, Buttondown, Ghost): used when there is no link


@dataclass(frozen=True)
class Written:
    path: str  # relative to the newsletter folder
    title: str
    date: str
    source: str | None


@dataclass(frozen=True)
class Skipped:
    what: str  # the post's link, else its title
    reason: str
    path: str | None = None


@dataclass
class IssueReport:
    source: str
    dry_run: bool = False
    pages: list[str] = field(default_factory=list)  # feed pages or export files read
    unit: str = "page"  # what `pages` holds: "page" (a feed's) or "file" (an export's)
    written: list[Written] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: int = 0  # images copied beside the issues (--download-images)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """The report, one line each: pages read, notes, each file written and each post skipped, a total."""
        verb = "would write" if self.dry_run else "wrote"
        lines = []
        if self.pages:
            shown = ", ".join(self.pages[:SHOWN_PAGES])
            more = len(self.pages) - SHOWN_PAGES
            lines.append(f"read {len(self.pages)} {self.unit}{'s' if len(self.pages) != 1 else ''}: {shown}"
                         + (f" and {more} more" if more > 0 else ""))
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"{verb} {w.path}  ({w.date}, {w.title})" for w in self.written]
        lines += [f"skipped {s.what}: {s.reason}" + (f" ({s.path})" if s.path else "") for s in self.skipped]
        count = len(self.written)
        if count:
            total = f"{count} issue{'s' if count != 1 else ''} {'would be written' if self.dry_run else 'written'}"
        else:
            total = "nothing to write" if self.dry_run else "nothing written"
        total += f", {len(self.skipped)} skipped"
        if self.images:
            total += f", {self.images} image{'s' if self.images != 1 else ''} {'to copy' if self.dry_run else 'copied'}"
        lines.append(total + (" (dry run: no file was changed)" if self.dry_run else ""))
        return lines


def _hash_slug(post: Post) -> str:
    return "post-" + hashlib.sha256((post.link or post.key).encode("utf-8", "surrogatepass")).hexdigest()[:8]


def ascii_slug(text: str) -> str | None:
    """`text` as a slug, or None when it is not ASCII (a non-Latin title is not transliterated: a hash is used)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] if "-" in slug[:MAX_SLUG] else slug[:MAX_SLUG]
    return slug or None


def post_slug(post: Post) -> str:
    """The old URL's last path segment (extension dropped), else the export's slug, else an ASCII title, else
    `post-<8 hex>` of the link."""
    if post.link:
        segments = [unquote(s) for s in urlsplit(post.link).path.split("/") if s]
        while segments and re.fullmatch(r"index(\.\w+)?", segments[-1], re.I):
            segments.pop()
        if segments:
            last = re.sub(r"\.(html?|php|aspx?|jsp|md)$", "", segments[-1], flags=re.I)
            if not last.isascii():
                return _hash_slug(post)
            if (slug := ascii_slug(last)) and not slug.isdigit():
                return slug
    if post.slug and (slug := ascii_slug(post.slug)) and not slug.isdigit():
        return slug  # without --old-url a Chinese title would give post-<hash>; the export knows the name
    if post.title and (slug := ascii_slug(post.title)):
        return slug
    return _hash_slug(post)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # publisher refuses YAML aliases
        return True


def render_issue(meta: dict[str, Any], body: str) -> str:
    front = yaml.dump(meta, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False,
                      width=10_000)
    return f"---\n{front}---\n\n{body}"


def write_new(path: Path, data: str | bytes) -> bool:
    """Write `data` to `path` atomically (a temp file beside it, then a hard link); never replaces a file:
    False when `path` exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _existing(config: Config) -> tuple[dict[str, Path], set[str]]:
    """(source URL -> file, slugs taken) of the issues already in content/, read leniently."""
    sources: dict[str, Path] = {}
    slugs: set[str] = set()
    for file in content.content_files(config.content_dir)[0]:
        slug = content.slug_from_filename(file)
        try:
            text = content.decode(file.read_bytes(), file)
            meta = yaml.safe_load(text.split("\n---", 1)[0].removeprefix("---")) if text.startswith("---") else {}
        except (OSError, PublisherError, yaml.YAMLError):
            meta = {}
        if isinstance(meta, dict):
            if isinstance(meta.get("slug"), str):
                slug = meta["slug"]
            if isinstance(meta.get("source"), str):
                sources.setdefault(meta["source"], file)
        slugs.add(slug)
    return sources, slugs


def _date_of(post: Post, config: Config) -> tuple[datetime | None, str | None, str]:
    """(parsed date, the frontmatter text of it, why not)"""
    if not post.date_text:
        return None, None, "no date (published / pubDate / date_published in a feed)"
    text = post.date_text.strip()
    try:
        parsed = content.parse_date(text, config.site.timezone)
    except ValueError as exc:
        return None, None, f"the date {text!r} cannot be read ({exc})"
    return parsed, text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", text) else text, ""


def _checked(value: str | None, check: Callable[[Any, Any], Any], config: Config) -> str | None:
    if not value:
        return None
    try:
        check(value.strip(), content._Context(config.site.timezone))  # the rules a load applies
    except ValueError:
        return None
    return value.strip()


def _meta(post: Post, title: str, date_text: str, day: str, slug: str, link: str | None, full: str,
          config: Config) -> dict[str, Any]:
    """The frontmatter; `full`: the body as plain text, to leave out a summary that only repeats its start."""
    meta: dict[str, Any] = {"title": title, "date": date_text}
    if slug != content.slug_from_filename(Path(f"{day}-{slug}.md")):
        meta["slug"] = slug
    tags = list(dict.fromkeys(t.strip() for t in post.tags if t and t.strip()))
    if tags:
        meta["tags"] = tags
    summary = " ".join(post.summary.split()) or (plain(post.summary_html) if post.html else "")
    full = full or " ".join((post.markdown or "").split())
    if summary and summary.rstrip(".…[] ") and not full.startswith(summary.rstrip(".…[] ")):
        meta["summary"] = summary
    if post.subject and post.subject.strip() and post.subject.strip() != title:
        meta["subject"] = " ".join(post.subject.split())
    if link:
        meta["source"] = link
    image = _checked(urljoin(link or "", post.image) if post.image else None, content._image, config)
    if image and urlsplit(image).scheme in ("http", "https"):
        meta["image"] = image
    authors = list(dict.fromkeys(a.strip() for a in post.authors if a and a.strip()))
    if authors:
        meta["authors"] = authors
    if post.draft:
        meta["draft"] = True
    meta["send"] = False  # a past issue: readers had it once; `publish` must never email it again
    return meta


def write_issues(config: Config, posts: Iterable[Post], report: IssueReport, *, progress: Progress | None = None,
                 images: ImageCopier | None = None, aliases: bool = False) -> IssueReport:
    """Write each post as `content/<date>-<slug>.md` (nothing when `report.dry_run`). Posts that cannot become
    issues, or whose file exists, are listed in the report's `skipped` with the reason. With `images`, each
    issue's remote images are copied into a folder beside it, `content/<date>-<slug>/`. With `aliases`, each
    issue lists its old URL's path under `aliases:`, so the build leaves a redirect there (redirects.py)."""
    sources, taken = _existing(config)
    seen_keys: set[str] = set()
    planned: list[tuple[Post, datetime, str]] = []
    for post in posts:
        what = post.link or post.title or post.key
        if post.key in seen_keys:
            report.skipped.append(Skipped(what, "the same post appears earlier (an earlier page or row); "
                                                "that copy is kept"))
            continue
        seen_keys.add(post.key)
        parsed, date_text, why = _date_of(post, config)
        if parsed is None or date_text is None:
            report.skipped.append(Skipped(what, why))
            continue
        planned.append((post, parsed, date_text))
    planned.sort(key=lambda p: (p[1], p[0].key))  # oldest first: the same export gives the same -2, -3
    links = [_checked(post.link, content._http_url, config) for post, _, _ in planned]
    for post, link in zip([p for p, _, _ in planned], links, strict=True):
        if link and link in sources:
            report.skipped.append(Skipped(post.link or post.title or post.key, "already imported",
                                          str(relpath(sources[link], config.root))))
    todo = [(plan, link) for plan, link in zip(planned, links, strict=True) if not (link and link in sources)]
    bodies = converted([(post.html or post.summary_html, link) if post.markdown is None else None
                        for (post, _, _), link in todo], progress)
    used: set[str] = set()
    for ((post, parsed, date_text), link), body in zip(todo, bodies, strict=True):
        _write_one(config, post, link, body, parsed, date_text, report, taken, used, images, aliases)
    return report


def _convert(job: tuple[str, str | None] | None) -> Converted | None:
    """A post's HTML converted; None for a Markdown post (nothing to convert)."""
    if job is None:
        return None
    try:
        return convert(*job)
    except RecursionError:
        return TOO_DEEP


_JOBS: list[tuple[str, str | None] | None] = []  # what the forked workers convert (inherited, not pickled)


def _convert_queued(index: int) -> Converted | None:
    return _convert(_JOBS[index])


def convert_all(jobs: list[tuple[str, str | None] | None], progress: Progress | None = None,
                workers: int | None = None) -> list[Converted | None]:
    """`convert` of each (html, base) job, in order (see `converted`)."""
    return list(converted(jobs, progress, workers))


def converted(jobs: list[tuple[str, str | None] | None], progress: Progress | None = None,
              workers: int | None = None) -> Iterator[Converted | None]:
    """`convert` of each (html, base) job, in order, as they are done: on every core when there are many (the
    HTML parse and the conversion are pure Python, about 15 ms an issue of 13 KB), so that the caller writes
    the first issues while the workers convert the next."""
    workers = workers or os.cpu_count() or 1
    total = len(jobs)
    pool = None
    if total < PARALLEL_MIN or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        results: Iterable[Converted | None] = map(_convert, jobs)
    else:
        _JOBS[:] = jobs
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(_convert_queued, range(total), chunksize=max(1, min(16, total // (workers * 8))))
    try:
        for done, result in enumerate(results, 1):
            if progress and (done % 16 == 0 or done == total):
                progress(done, total)
            yield result
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            _JOBS.clear()


def _write_one(config: Config, post: Post, link: str | None, converted: Converted | None, parsed: datetime,
               date_text: str, report: IssueReport, taken: set[str], used: set[str], images: ImageCopier | None,
               aliases: bool) -> None:
    what = post.link or post.title or post.key
    if converted is not None and converted.too_deep:
        report.skipped.append(Skipped(what, "its HTML is nested too deeply to convert"))
        return
    if converted is None:  # a Markdown body, kept as written
        markdown_text = post.markdown or ""
        body = markdown_text.strip("\n") + "\n" if markdown_text.strip() else ""
        text = " ".join(markdown_text.split())
    else:
        body, text = converted.markdown, converted.text
    title = " ".join(post.title.split()) or markdown.truncate(text, 60)
    if not title:
        report.skipped.append(Skipped(what, "no title and no text"))
        return
    base = post_slug(post)
    slug, n = base, 2
    day = f"{parsed:%Y-%m-%d}"
    while slug in used or (slug in taken and not (config.content_dir / f"{day}-{slug}.md").exists()):
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    meta = _meta(post, title, date_text, day, slug, link, text if post.html else "", config)
    if aliases:
        _alias(meta, link, slug, what, report)
    text = render_issue(meta, body)
    path = config.content_dir / f"{day}-{slug}.md"
    shown = str(relpath(path, config.root))
    try:
        content.parse_issue(text.encode("utf-8"), file=path, content_dir=config.content_dir,
                            shown=Path(shown), timezone=config.site.timezone)
    except PublisherError as exc:
        report.skipped.append(Skipped(what, f"would not load: {exc}", shown))
        return
    if path.exists():
        same = path.read_bytes() == text.encode("utf-8")
        report.skipped.append(Skipped(what, "unchanged" if same else "the file exists (not overwritten)", shown))
        return
    if images is not None:
        text = _copy_images(images, meta, body, path, shown, report)
    if not report.dry_run and not write_new(path, text):
        report.skipped.append(Skipped(what, "the file exists (not overwritten)", shown))
        return
    report.written.append(Written(shown, title, date_text, link))


def _alias(meta: dict[str, Any], link: str | None, slug: str, what: str, report: IssueReport) -> None:
    """`aliases: [<old path>]`, unless there is no old URL or its path is the new page's."""
    if not link:
        report.notes.append(f"{what}: no old URL, so no redirect (give --old-url)")
        return
    old = urlsplit(link).path or "/"
    try:
        target = redirects.site_path(old)
    except ValueError as exc:
        report.notes.append(f"{what}: no redirect from {old} ({exc})")
        return
    if target != f"issues/{slug}/index.html":
        meta["aliases"] = [old]


def _copy_images(images: ImageCopier, meta: dict[str, Any], body: str, path: Path, shown: str,
                 report: IssueReport) -> str:
    """The issue's text once its remote images (body and cover) are copied into `content/<date>-<slug>/`."""
    urls = remote_images(body) + [u for u in [meta.get("image")] if u and urlsplit(u).scheme in ("http", "https")]
    urls = list(dict.fromkeys(urls))
    if report.dry_run or not urls:
        report.images += len(urls)
        return render_issue(meta, body)
    copied = images.copy(urls, path.with_suffix(""))
    report.images += len(copied.names)
    report.notes += [f"{shown}: image {url} stays remote ({why})" for url, why in copied.kept]
    if meta.get("image") in copied.names:
        meta["image"] = f"{path.stem}/{copied.names[meta['image']]}"
    return render_issue(meta, rewrite(body, path.stem, copied.names))


# ---------------------------------------------------------------------------------------------------- subscribers

# Most restrictive first: an address in two rows keeps the first of these it has.
RESTRICTIVE = ("complained", "bounced", "unsubscribed", "unconfirmed", "active")


@dataclass(frozen=True)
class Row:
    subscriber: Subscriber
    where: str  # file:line
    was: str  # the status as the export said it


@dataclass
class Imported:
    """What an export holds, read and mapped; nothing stored yet. Rows are checked (`validate_subscriber`) in
    batches, on every core for a large list, and merged in the order they were read."""

    source: str
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many
    notes: list[str] = field(default_factory=list)
    _rows: dict[str, Row] = field(default_factory=dict)  # by normalized address
    _problems: list[Problem] = field(default_factory=list)
    _pending: list[tuple[Subscriber, str, str]] = field(default_factory=list, repr=False)

    @property
    def rows(self) -> dict[str, Row]:
        self._settle()
        return self._rows

    @property
    def problems(self) -> list[Problem]:
        """Rows refused, with file and line (a reader appends its own refusals here too, in reading order)."""
        self._settle()
        return self._problems

    def add(self, subscriber: Subscriber, where: str, was: str) -> None:
        """A row as the export has it (`where`: file:line; `was`: its status as the export said it)."""
        self._pending.append((subscriber, where, was))

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for (_, where, was), checked in zip(pending, validate_all([s for s, _, _ in pending]), strict=True):
            if isinstance(checked, Subscriber):
                self._merge(checked, where, was)
                continue
            file, _, line = where.rpartition(":")
            self._problems.extend(Problem(p.message, file=file, line=int(line) if line.isdigit() else None,
                                          field=p.field, hint=p.hint) for p in checked)

    def _merge(self, subscriber: Subscriber, where: str, was: str) -> None:
        old = self._rows.get(subscriber.email)
        if old is not None:
            keep = old if RESTRICTIVE.index(old.subscriber.status) <= RESTRICTIVE.index(subscriber.status) else None
            tags = tuple(dict.fromkeys(old.subscriber.tags + subscriber.tags))
            chosen = keep or Row(subscriber, where, was)
            subscriber = Subscriber(chosen.subscriber.email, chosen.subscriber.name or old.subscriber.name,
                                    chosen.subscriber.status, tags)
            self._rows[subscriber.email] = Row(subscriber, chosen.where, chosen.was)
            return
        self._rows[subscriber.email] = Row(subscriber, where, was)

    def by_status(self) -> Counter[str]:
        return Counter(row.subscriber.status for row in self.rows.values())


def _validate(subscriber: Subscriber) -> Subscriber | list[Problem]:
    try:
        return validate_subscriber(subscriber)
    except PublisherError as exc:
        return exc.problems


def _validate_chunk(chunk: list[Subscriber]) -> list[Subscriber | list[Problem]]:
    return [_validate(s) for s in chunk]


def validate_all(subscribers: list[Subscriber], workers: int | None = None) -> list[Subscriber | list[Problem]]:
    """Each subscriber checked (`validate_subscriber`: about 35 µs an address, most of it email_validator's), in
    order; on every core for a large list."""
    workers = workers or os.cpu_count() or 1
    if len(subscribers) < VALIDATE_PARALLEL_MIN or workers < 2 or \
            "fork" not in multiprocessing.get_all_start_methods():
        return _validate_chunk(subscribers)
    size = -(-len(subscribers) // (workers * 4))
    chunks = [subscribers[i:i + size] for i in range(0, len(subscribers), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return [checked for part in pool.map(_validate_chunk, chunks) for checked in part]


@dataclass
class Report:
    imported: Imported
    verdicts: Counter[str] = field(default_factory=Counter)  # added / updated / unchanged / kept
    dry_run: bool = False

    def lines(self) -> list[str]:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.imported.by_status().items()))
        verb = "would change" if self.dry_run else "changed"
        out = [f"{self.imported.source}: {len(self.imported.rows)} addresses ({statuses or 'none'})"]
        if self.verdicts:
            out.append(f"  {verb}: " + ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items())))
        if self.verdicts.get("kept"):
            out.append(f"  {self.verdicts['kept']} kept their suppressed status here (unsubscribed, bounced or "
                       "complained earlier): an import never brings an address back")
        out += [f"  not imported: {n} {why}" for why, n in sorted(self.imported.skipped.items())]
        out += [f"  note: {note}" for note in self.imported.notes]
        out += [f"  refused: {p}" for p in self.imported.problems]
        if self.dry_run:
            out.append("  (dry run: nothing was stored)")
        elif not self.imported.rows:
            out.append("  the export holds no address to import")
        elif not (self.verdicts.keys() - {"unchanged", "kept"}):
            out.append("  nothing changed: the list already holds this export")
        return out


def store(imported: Imported, subscribers_store, *, dry_run: bool = False,  # type: ignore[no-untyped-def]
          progress: Progress | None = None) -> Report:
    """Put the rows in the store (a `subscribers.Store`); a dry run only says what each row would do."""
    from ..subscribers import _merge

    report = Report(imported, dry_run=dry_run)
    total = len(imported.rows)

    def counted() -> Iterable[Subscriber]:
        for done, row in enumerate(imported.rows.values()):
            if progress and done % 1000 == 0:
                progress(done, total)
            yield row.subscriber

    if dry_run:
        for subscriber in counted():
            report.verdicts[_merge(subscribers_store.get(subscriber.email), subscriber, False, validated=True)[1]] += 1
    else:  # one transaction: an import that fails half-way stores nothing
        report.verdicts.update(subscribers_store.upsert_many(counted(), validated=True))  # Imported.add did
    if progress:
        progress(total, total)
    return report
