"""Deploy `dist/` to a folder or to S3 (or any S3-compatible store): upload only what changed, in an order
that never shows a reader a broken state, and delete only after everything is up.

Order: assets first (images, CSS), then issue pages, then the archive and tag pages that link to them, then
the feeds and the sitemap last, so a feed reader never sees an entry whose page is not there yet.

On S3, files are compared by our own SHA-256, kept in each object's metadata (`x-amz-meta-sha256`) and, for
speed, in a manifest object beside the site (`.publisher/manifest.json`): one LIST and one GET tell what
changed. An object whose ETag is not the one the manifest recorded (changed by someone else, or uploaded by an
interrupted deploy that never wrote the manifest) is checked with a HEAD of its metadata. An S3 ETag alone is
not a content hash (multipart uploads, SSE-KMS).

A folder target is written and emptied only when it is deploy's own: new or empty the first time (then marked
with an empty `.publisher-deploy/` folder), marked, or holding a site an earlier publisher deployed there. A
folder that is or holds a project (`.git`, `publisher.toml`, the newsletter, its home...) is refused outright
(`files.unsafe_folder_reason`). No symbolic link is followed, in dist/ or in the target.

With `feeds.hubs` set, a deploy that uploaded feeds then tells each WebSub hub which of them changed (websub.py),
once they are live: after the uploads, deletes and CloudFront invalidation. A hub that cannot be told is a
warning in the result (`hub_pings`), never a failed deploy; a dry run tells no hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import redirects
from .config import Config
from .errors import PublisherError
from .files import open_no_follow, prune_empty_parents, read_no_follow, refuse_unsafe_folder, short
from .websub import HubPing, Notifier

log = logging.getLogger(__name__)

MANIFEST = ".publisher/manifest.json"
FEEDS = ("rss.xml", "atom.xml", "feed.json")
TYPES = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
    "sitemap.xml": "application/xml; charset=utf-8",
}
SHORT = "public, max-age=300"  # HTML and feeds: a new issue shows within minutes
LONG = "public, max-age=86400"  # images and other assets that keep their name when they change
IMMUTABLE = "public, max-age=31536000, immutable"  # assets with a content hash in their name
_HASHED = re.compile(r"[.-][0-9a-f]{8,64}\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class LocalFile:
    key: str  # the site path, e.g. issues/x/index.html
    path: Path
    size: int
    sha256: str
    redirect: str | None = None  # an old address's page (redirects.py): where S3 website endpoints send it, 301

    @property
    def phase(self) -> int:
        return phase(self.key)


# The search index (Pagefind) names its index files by their content; its entry file says which are current.
_SEARCH_HASHED = re.compile(r"^pagefind/(?:(?:fragment|index)/[^/]+_[0-9a-f]{6,64}\.pf_\w+"
                            r"|[^/]*_[0-9a-f]{6,64}\.pf_meta)$")
SEARCH_ENTRY = "pagefind/pagefind-entry.json"


def immutable(key: str) -> bool:
    """A file whose name changes with its content: cached for a year, never invalidated (a new one is new)."""
    return bool(_SEARCH_HASHED.match(key)) or (not key.endswith((".html", ".xml", ".json")) and
                                               bool(_HASHED.search(key)))


def phase(key: str) -> int:
    """0 assets, 1 issue pages, 2 archive and tag pages (and the search index's entry file, which names index
    files uploaded before it), 3 feeds and sitemap."""
    name = key.rpartition("/")[2]
    if key == SEARCH_ENTRY:
        return 2
    if name in FEEDS or key == "sitemap.xml":
        return 3
    if name.endswith(".html"):
        return 1 if key.startswith("issues/") else 2
    return 0


def content_type(key: str) -> str:
    name = key.rpartition("/")[2]
    if name in TYPES:
        return TYPES[name]
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "application/javascript", "image/svg+xml",
                                                  "application/xml", "application/xslt+xml"):
        guessed += "; charset=utf-8"
    return guessed


def cache_control(key: str) -> str:
    if immutable(key):
        return IMMUTABLE
    return SHORT if key.endswith((".html", ".xml", ".json")) else LONG


def local_files(folder: Path) -> dict[str, LocalFile]:
    """The files of a site folder by key. Hidden names are left out (the build's `.publisher-build/` mark, the
    deploy mark), and so are symbolic links (a build makes none: one in dist/ was put there to publish what it
    points at) and anything else that is not a regular file."""
    if not folder.is_dir():
        raise PublisherError(f"there is nothing to deploy: {folder} does not exist", hint="run `publisher build` first")
    files = {}
    for path in _site_files(folder):
        key = path.relative_to(folder).as_posix()
        try:
            data = read_no_follow(path)
        except OSError as exc:  # replaced by a link or removed since it was listed
            log.warning("%s is skipped: %s", path, exc.strerror or exc)
            continue
        files[key] = LocalFile(key, path, len(data), hashlib.sha256(data).hexdigest())
    if (moved := files.get(redirects.MAP_FILE)) is not None:
        for key, target in redirects.read_map(read_no_follow(moved.path)).items():
            if key in files:
                files[key] = replace(files[key], redirect=target)
    return files


def _site_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                log.warning("%s is a symbolic link; deploy never follows one, so it is skipped", entry.path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path))
            else:
                log.warning("%s is not a regular file; it is skipped", entry.path)
    return found


class Target(Protocol):
    """Where a site goes: a folder or an S3 prefix."""

    description: str

    def remote(self, wanted: Mapping[str, LocalFile]) -> dict[str, str]:
        """Every file there as key -> SHA-256 (or "" when unknown)."""

    def put(self, file: LocalFile) -> None: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def finish(self, files: Mapping[str, LocalFile]) -> None:
        """Called once everything is up and deleted (S3 writes its manifest here)."""

    def invalidate(self, keys: Sequence[str]) -> str | None: ...


# ---- a folder ----


# An empty folder in every folder target deploy fills (a folder: hidden names are neither deployed nor listed).
DEPLOY_MARK = ".publisher-deploy"
_GENERATOR = b"<generator>publisher</generator>"  # in every rss.xml publisher writes


def _marked(folder: Path) -> bool:
    mark = folder / DEPLOY_MARK
    return mark.is_dir() and not mark.is_symlink()


def _earlier_deploy(folder: Path) -> bool:
    """True for a folder an earlier publisher deployed to (it made no mark): a site with publisher's feed."""
    try:
        with open_no_follow(folder / "rss.xml") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    index = folder / "index.html"
    return _GENERATOR in head and index.is_file() and not index.is_symlink()


class FolderTarget:
    def __init__(self, root: Path, *, config_file: Path | str | None = None) -> None:
        self.root = root
        self.description = str(root)
        self.config_file = config_file
        self._checked = False
        self._lock = threading.Lock()

    def _refuse(self, message: str, hint: str) -> PublisherError:
        return PublisherError(f"{short(str(self.root))} {message}", file=self.config_file, field="deploy.target",
                              hint=hint)

    def _check(self) -> None:
        """Refuse a folder that is not deploy's own (`remote` runs it first, so a dry run refuses it too)."""
        if not os.path.lexists(self.root) or _marked(self.root):
            self._checked = True
            return
        if self.root.is_symlink() or not self.root.is_dir():
            raise self._refuse("is not a folder", "point deploy.target at a folder")
        if any(self.root.iterdir()) and not _earlier_deploy(self.root):
            raise self._refuse(
                f"is not empty and deploy did not make it (it has no {DEPLOY_MARK} folder); deploy replaces and "
                "deletes files there", 'point deploy.target at a new or empty folder, e.g. "public"')
        self._checked = True

    def _mark(self) -> None:
        """Mark the folder as deploy's own before the first change to it (so a deploy that is stopped halfway
        still leaves it marked)."""
        if _marked(self.root):
            return
        with self._lock:
            if not self._checked:
                self._check()
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / DEPLOY_MARK).mkdir(exist_ok=True)

    def _folder_of(self, key: str, *, make: bool) -> Path:
        """The folder of `key` in the target, made if asked; a part of the way that is a symbolic link (which
        would lead a write or a delete out of the folder) is refused."""
        parts = key.split("/")
        if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise PublisherError(f"refusing the odd file name {short(key)!r} in the deploy")
        folder = self.root
        for part in parts[:-1]:
            folder = folder / part
            if make:
                try:
                    os.mkdir(folder)
                    continue
                except FileExistsError:
                    pass
            if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
                raise self._refuse(f"holds {short(str(folder.relative_to(self.root)))}, which is a symbolic link "
                                   "or a file; deploy writes only into real folders", "remove it, then deploy again")
        return folder

    def remote(self, wanted: Mapping[str, LocalFile]) -> dict[str, str]:
        self._check()
        if not self.root.exists():
            return {}
        return {f.key: f.sha256 for f in local_files(self.root).values()}

    def put(self, file: LocalFile) -> None:
        self._mark()
        target = self._folder_of(file.key, make=True) / file.key.rpartition("/")[2]
        tmp = target.with_name(f".{target.name}.publisher-tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a leftover, or a link planted there: never written through
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with open_no_follow(file.path) as source, open(fd, "wb") as fh:
            shutil.copyfileobj(source, fh)
        os.replace(tmp, target)  # a reader sees the old file or the new one, never half of one

    def delete(self, keys: Sequence[str]) -> None:
        self._mark()
        if not _marked(self.root):
            raise self._refuse("is not deploy's own folder; nothing is deleted there", "see `publisher deploy`")
        for key in keys:
            path = self._folder_of(key, make=False) / key.rpartition("/")[2]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a link itself, never what it points at
            prune_empty_parents(path, self.root)

    def finish(self, files: Mapping[str, LocalFile]) -> None:
        self._mark()  # a deploy that changed nothing still takes over an earlier deploy's folder

    def invalidate(self, keys: Sequence[str]) -> str | None:
        return None


# ---- S3 ----


def s3_error(exc: Exception, target: str, config: Config) -> PublisherError:
    """A boto3/botocore error as a message the user can act on."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    where = {"file": config.file.name, "field": "deploy.target"}
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PublisherError(
            f"no AWS credentials for {target}",
            hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an IAM role "
            "applies (credentials never go in publisher.toml)")
    if isinstance(exc, EndpointConnectionError):
        return PublisherError(f"cannot reach the S3 endpoint: {exc}", file=config.file.name,
                              field="deploy.endpoint_url",
                              hint="check deploy.endpoint_url or AWS_ENDPOINT_URL, and the network")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return PublisherError(f"the bucket of {target} does not exist", **where,
                                  hint="create it (deploy/cloudformation.yaml does) or fix deploy.target")
        if code in ("AccessDenied", "AllAccessDisabled", "403"):
            return PublisherError(f"access denied to {target}: {exc.response['Error'].get('Message', '')}", **where,
                                  hint="the credentials in use need the permissions in deploy/iam-deploy-policy.json")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
            return PublisherError(f"the AWS credentials were refused ({code}) for {target}",
                                  hint="check AWS_PROFILE / AWS_ACCESS_KEY_ID, or refresh an expired session")
        return PublisherError(f"S3 error on {target}: {code}: {exc.response['Error'].get('Message', '')}", **where)
    return PublisherError(f"deploying to {target} failed: {exc}", **where)


class S3Target:
    def __init__(self, config: Config, client: Any = None, cloudfront: Any = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        bucket, _, prefix = config.deploy.target[len("s3://"):].partition("/")
        self.bucket, self.prefix = bucket, prefix
        self.description = config.deploy.target
        self.config = config
        # Standard retries: 5xx, throttling, timeouts and dropped connections back off and retry.
        boto = BotoConfig(retries={"max_attempts": 8, "mode": "standard"},
                          max_pool_connections=max(10, config.deploy.concurrency * 2),
                          connect_timeout=10, read_timeout=60)
        kwargs = {"region_name": config.deploy.region, "endpoint_url": config.deploy.endpoint_url, "config": boto}
        # A session of its own: the credential chain is read now, not whatever boto3's default session cached.
        self.session = boto3.session.Session()
        self.client = client or self.session.client("s3", **{k: v for k, v in kwargs.items() if v is not None})
        self._cloudfront = cloudfront
        self.etags: dict[str, str] = {}  # key -> ETag of what is there now
        self.hashes: dict[str, str] = {}  # key -> SHA-256 of what is there now
        self.manifest_body: bytes | None = None  # the manifest as read: an unchanged one is not written again

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except Exception as exc:
            from botocore.exceptions import BotoCoreError, ClientError

            if isinstance(exc, BotoCoreError | ClientError):
                raise s3_error(exc, self.description, self.config) from None
            raise

    def remote(self, wanted: Mapping[str, LocalFile]) -> dict[str, str]:
        listed: dict[str, str] = {}
        token = None
        while True:
            page = self._call("list_objects_v2", Prefix=self.prefix, **({"ContinuationToken": token} if token else {}))
            for item in page.get("Contents", []):
                listed[item["Key"][len(self.prefix):]] = item["ETag"]
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        manifest = self._manifest() if MANIFEST in listed else {}
        listed.pop(MANIFEST, None)
        self.etags = dict(listed)
        unknown = []
        for key, etag in listed.items():
            entry = manifest.get(key)
            if entry and entry.get("etag") == etag:
                self.hashes[key] = entry["sha256"]
            elif key in wanted:
                unknown.append(key)  # only files we may upload need a hash; others can only be deleted
        if unknown:
            log.debug("reading the metadata of %d objects not in the manifest", len(unknown))
            with ThreadPoolExecutor(self.config.deploy.concurrency) as pool:
                for key, sha in zip(unknown, pool.map(self._head_sha, unknown), strict=True):
                    self.hashes[key] = sha
        return {key: self.hashes.get(key, "") for key in listed}

    def _manifest(self) -> dict[str, dict[str, str]]:
        try:
            body = self._call("get_object", Key=self.prefix + MANIFEST)["Body"].read()
            self.manifest_body = body
            data = json.loads(body)
            return data["files"] if isinstance(data.get("files"), dict) else {}
        except (ValueError, KeyError, AttributeError):
            return {}  # a broken manifest only costs HEAD requests

    def _head_sha(self, key: str) -> str:
        head = self._call("head_object", Key=self.prefix + key)
        return head.get("Metadata", {}).get("sha256", "")

    def put(self, file: LocalFile) -> None:
        response = self._call("put_object", Key=self.prefix + file.key, Body=read_no_follow(file.path),
                              ContentType=content_type(file.key), CacheControl=cache_control(file.key),
                              Metadata={"sha256": file.sha256},
                              **({"WebsiteRedirectLocation": file.redirect} if file.redirect else {}))
        self.etags[file.key] = response["ETag"]
        self.hashes[file.key] = file.sha256

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self.prefix + key} for key in keys[start:start + 1000]]
            response = self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise PublisherError(f"S3 refused to delete {first.get('Key')}: {first.get('Code')}",
                                     hint="the credentials need s3:DeleteObject on the prefix")
        for key in keys:
            self.etags.pop(key, None)
            self.hashes.pop(key, None)

    def finish(self, files: Mapping[str, LocalFile]) -> None:
        entries = {key: {"sha256": self.hashes[key], "etag": self.etags[key]}
                   for key in sorted(files) if key in self.hashes and key in self.etags}
        body = json.dumps({"version": 1, "files": entries}, indent=0, sort_keys=True).encode()
        if body == self.manifest_body:
            log.debug("%s unchanged; not written again", MANIFEST)
            return  # a no-change deploy writes nothing (no PUT, no new version on a versioned bucket)
        self._call("put_object", Key=self.prefix + MANIFEST, Body=body, ContentType="application/json",
                   CacheControl="no-store")

    def invalidate(self, keys: Sequence[str]) -> str | None:
        distribution = self.config.deploy.cloudfront_distribution
        if not distribution or not keys:
            return None
        paths: list[str] = []
        for key in keys:
            if immutable(key):
                continue  # never cached under its name before: nothing to invalidate
            paths.append("/" + key)
            if key == "index.html" or key.endswith("/index.html"):
                paths.append("/" + key[: -len("index.html")])  # the folder URL readers actually use
        if not paths:
            return None
        if len(paths) > 30:  # CloudFront bills per path: one wildcard is cheaper than many
            paths = ["/*"]
        client = self._cloudfront or self.session.client("cloudfront")
        reference = uuid.uuid4().hex  # CloudFront wants a new reference for each new request
        try:
            response = client.create_invalidation(DistributionId=distribution, InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": sorted(set(paths))}, "CallerReference": reference})
        except Exception as exc:
            raise PublisherError(f"the CloudFront invalidation failed: {exc}", file=self.config.file.name,
                                 field="deploy.cloudfront_distribution",
                                 hint="the site is uploaded; readers see changes when the cache expires") from None
        return response["Invalidation"]["Id"]  # type: ignore[no-any-return]


def target_for(config: Config, *, s3_client: Any = None, cloudfront_client: Any = None) -> Target:
    if config.deploy.target.startswith("s3://"):
        return S3Target(config, s3_client, cloudfront_client)
    folder = Path(config.deploy.target)
    folder = (folder if folder.is_absolute() else config.root / folder).resolve()
    refuse_unsafe_folder(folder, project=config.root,
                         protected=(config.content_dir, config.themes_dir, config.output_dir),
                         file=config.file.name, field="deploy.target")
    return FolderTarget(folder, config_file=config.file.name)


# ---- the plan and the run ----


@dataclass
class Plan:
    uploads: list[LocalFile]  # in upload order
    unchanged: int
    stale: list[str]  # remote files no longer in dist/

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.uploads)


def make_plan(files: Mapping[str, LocalFile], remote: Mapping[str, str]) -> Plan:
    uploads = sorted((f for f in files.values() if remote.get(f.key) != f.sha256), key=lambda f: (f.phase, f.key))
    return Plan(uploads, len(files) - len(uploads), sorted(set(remote) - set(files)))


@dataclass
class DeployResult:
    target: str
    uploaded: int = 0
    unchanged: int = 0
    deleted: int = 0
    stale: int = 0
    bytes: int = 0
    seconds: float = 0.0
    invalidation: str | None = None
    dry_run: bool = False
    plan: Plan | None = field(default=None, repr=False)
    hub_pings: list[HubPing] = field(default_factory=list)  # WebSub: one per hub (and 100 feeds), after the upload

    @property
    def hubs_failed(self) -> list[HubPing]:
        return [p for p in self.hub_pings if not p.ok]


Progress = Callable[[int, int], None]  # (files done, files in all)


def deploy(config: Config, *, dry_run: bool = False, delete: bool = False, target: Target | None = None,
           progress: Progress | None = None, files: Mapping[str, LocalFile] | None = None,
           notifier: Notifier | None = None) -> DeployResult:
    """Upload the changes of `dist/` to the configured target. `files`: `local_files(dist/)` when the caller
    already hashed it (publish does, for its fingerprint), so that it is read once. `notifier` pings the WebSub
    hubs of `feeds.hubs` about the feeds uploaded (default: `websub.Notifier()`)."""
    started = time.perf_counter()
    files = local_files(config.output_dir) if files is None else files
    target = target or target_for(config)
    plan = make_plan(files, target.remote(files))
    result = DeployResult(target=target.description, unchanged=plan.unchanged, stale=len(plan.stale), dry_run=dry_run,
                          plan=plan, bytes=plan.upload_bytes)
    if dry_run:
        result.seconds = time.perf_counter() - started
        return result
    done = 0
    with ThreadPoolExecutor(config.deploy.concurrency) as pool:
        for phase_number in range(4):
            batch = [f for f in plan.uploads if f.phase == phase_number]
            # A phase is uploaded whole before the next starts: pages never link to an asset not yet there.
            for file in _as_done(pool, target.put, batch):
                done += 1
                log.debug("uploaded %s", file.key)
                if progress:
                    progress(done, len(plan.uploads))
            result.uploaded = done
    if delete and plan.stale:
        target.delete(plan.stale)
        result.deleted = len(plan.stale)
        result.stale = 0
    target.finish(files)
    result.invalidation = target.invalidate([f.key for f in plan.uploads] + (plan.stale if delete else []))
    result.hub_pings = notify_hubs(config, [f.key for f in plan.uploads], notifier)
    result.seconds = time.perf_counter() - started
    return result


def notify_hubs(config: Config, uploaded: Sequence[str], notifier: Notifier | None = None) -> list[HubPing]:
    """Ping `feeds.hubs` with the public URLs of the feeds among the `uploaded` keys (none: no request)."""
    if not config.feeds.hubs:
        return []
    from .feeds import feed_url, is_feed  # only a deploy with hubs needs the renderer's URL rules

    topics = [feed_url(config, key) for key in uploaded if is_feed(key)]
    return (notifier or Notifier()).notify(config.feeds.hubs, topics) if topics else []


def _as_done(pool: ThreadPoolExecutor, fn: Callable[[LocalFile], None], batch: Iterable[LocalFile]):  # type: ignore[no-untyped-def]
    futures = {pool.submit(fn, file): file for file in batch}
    error: BaseException | None = None
    for future, file in futures.items():
        try:
            future.result()
        except BaseException as exc:  # let the others finish (or fail) before reporting
            error = error or exc
            continue
        yield file
    if error is not None:
        raise error


def describe(plan: Plan, delete: bool, hubs: Sequence[str] = ()) -> list[str]:
    """What a deploy would do, one line per file, then one per WebSub hub it would ping (for --dry-run)."""
    lines = [f"upload {f.key} ({f.size:,} bytes, {content_type(f.key)})" for f in plan.uploads]
    lines += [f"{'delete' if delete else 'stale (kept; --delete removes it)'} {key}" for key in plan.stale]
    if hubs:
        from .feeds import is_feed

        feeds = sum(1 for f in plan.uploads if is_feed(f.key))
        if feeds:
            lines += [f"ping WebSub hub {hub} about {feeds} changed feed{'s' if feeds != 1 else ''}" for hub in hubs]
    return lines

