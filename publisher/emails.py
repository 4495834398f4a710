"""The email of an issue: MJML to HTML once, a plain-text part from the Markdown, and the MIME message each
subscriber gets, made by a cheap fill-in of per-recipient parts (no template runs per subscriber).

The per-recipient parts are markers in the once-rendered HTML and text (`%%publisher:name%%`, ...). A
`MessageFactory` splits both parts at the markers and base64-encodes the fixed pieces once, each aligned to a
3-byte boundary in all three ways the variable text before it can end; a message is then the pieces joined
with the encoded recipient values in between: a valid base64 stream, made in microseconds.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import css_inline
import mjml

from . import markdown, messages
from .config import CONTROL, Config, ascii_url, control_character, preferences_url, unsubscribe_url
from .content import Issue
from .errors import PublisherError, relpath
from .messages import N_, Messages
from .site import Memo, issue_inputs
from .themes import Theme, load_theme
from .tokens import make_token
from .transports import PermanentError

GMAIL_CLIP_BYTES = 102 * 1024
FIELDS = ("name", "email", "unsubscribe_url", "preferences_url")
_MARKER = re.compile(r"%%publisher:(name|email|unsubscribe_url|preferences_url)%%")
EXAMPLE_ADDRESS = "reader@example.com"

# The words of the email around the issue: msgids of the theme's message catalogues (messages.py), looked up
# in the site's language. `strings` in the email templates is the old name of a few of them, kept for themes.
GREETING = N_("Hi %(name)s,")
READER = N_("there")  # the name in the greeting when a subscriber has none ("Hi there,")
REASON = N_("You are receiving this because you subscribed to %(title)s.")
SENT_TO = N_("This email was sent to %(email)s")
VIEW_IN_BROWSER = N_("View in browser")
UNSUBSCRIBE = N_("Unsubscribe")
PREFERENCES = N_("Preferences")  # the footer link to the preferences page of `publisher serve`


class UnsafeValue(PermanentError, PublisherError):
    """A value that must not go into a message: a line break in a header (which would add headers or replace
    the body), a non-ASCII address. Both kinds at once, on purpose: the sending loop records it as a permanent
    failure of that one message and goes on, and a command that makes a single message (`email --eml`,
    `send --test`, `send --dry-run`) prints it as a one-line user error."""


# What `control_character` finds, as one pattern for the per-message check (a search costs ~0.1 us).
_UNSAFE = CONTROL
# What reads as a new line to an author, and so is an error in a subject rather than something to drop.
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")


def messages_for(config: Config, theme: Theme | None = None) -> Messages:
    """The message catalogue of the site's language, from the theme (its overrides over the built-in one)."""
    return messages.for_theme(theme or load_theme(config), config.site.language)


def strings_for(config: Config, theme: Theme | None = None) -> dict[str, str]:
    """The email's words under the names templates knew them by before the catalogues (`strings.greeting`...)."""
    said = messages_for(config, theme)
    greeting, _, greeting_end = said.gettext(GREETING).partition("%(name)s")
    sent_to = said.gettext(SENT_TO).partition("%(email)s")[0]
    return {"view_in_browser": said.gettext(VIEW_IN_BROWSER), "unsubscribe": said.gettext(UNSUBSCRIBE),
            "preferences": said.gettext(PREFERENCES),
            "greeting": greeting, "greeting_end": greeting_end, "sent_to": sent_to, "reader": said.gettext(READER),
            "reason": said.gettext(REASON).replace("%(title)s", "{title}")}


class _Markers:
    """What templates see as `recipient`: each attribute is the marker that is filled in per subscriber."""

    def __getattr__(self, name: str) -> str:
        if name not in FIELDS:
            raise AttributeError(name)
        return f"%%publisher:{name}%%"


@dataclass(frozen=True)
class Sender:
    """Everything about the sender that every message of the newsletter shares, defaults applied."""

    address: str
    name: str
    reply_to: str | None
    list_id: str
    list_name: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    subject_prefix: str
    reason: str
    postal_address: str
    default_name: str
    preferences_url: str = ""  # the preferences page of `publisher serve`; "" when there is none (no link)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def sender_of(config: Config, *, require_address: bool = True, theme: Theme | None = None) -> Sender:
    """The sender's settings with defaults applied. Only a real message needs a From address; a preview of
    the HTML or text does not (`require_address=False` then puts a stand-in on the site's domain)."""
    email, site = config.email, config.site
    host = urlsplit(ascii_url(site.url)).hostname or "example.com"
    address = email.from_address or site.author_email
    if not address:
        if require_address:
            raise PublisherError("email.from_address is not set (nor site.author_email)", file=config.file.name,
                                 field="email.from_address", hint='e.g. from_address = "news@example.com"')
        address = f"newsletter@{host}"
    said = messages_for(config, theme)
    return Sender(
        address=address,
        name=email.from_name or site.title,
        reply_to=email.reply_to,
        list_id=email.list_id or f"newsletter.{host}",
        list_name=site.title,
        # List-Unsubscribe carries ASCII only: a site URL with a Chinese path or domain is encoded for it.
        unsubscribe_url=ascii_url(unsubscribe_url(config)),
        unsubscribe_mailto=email.unsubscribe_mailto or address,
        subject_prefix=email.subject_prefix,
        reason=email.reason or said.gettext(REASON, title=site.title),
        postal_address=email.postal_address,
        default_name=email.default_name or said.gettext(READER),
        preferences_url=ascii_url(preferences_url(config)) if preferences_url(config) else "",
    )


@dataclass(frozen=True)
class RenderedEmail:
    """One issue's email, rendered once: HTML and text still hold the per-recipient markers."""

    issue: Issue
    subject: str
    preheader: str
    html: str
    text: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def html_size(self) -> int:
        return len(self.html.encode("utf-8"))


def _email_html(config: Config, theme: Theme, issue: Issue, body_html: str, pages: Mapping[str, str],
                warnings: list[str]) -> str:
    """The issue's HTML made fit for mail clients: absolute URLs, styles inlined, every image with alt text."""
    permalink = markdown.absolute_url(config.site.url, issue.url_path)
    fragment = markdown.absolutize(body_html, issue.path.parent, pages, config.site.url, permalink)
    shown = relpath(issue.file, config.root)
    for attr, url in markdown.urls_in(fragment):
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if attr == "href" and scheme not in ("http", "https", "mailto"):
            warnings.append(f"{shown}: link {url!r} is not an http(s) or mailto URL; it will not work in email")
    for match in re.finditer(r"<img\b[^>]*>", fragment):
        if not re.search(r'\balt="[^"]+"', match.group(0)):
            warnings.append(f"{shown}: an image has no alt text ({match.group(0)[:80]}); readers who block "
                            "images see nothing")
    fragment = separate_inline_tags(fragment)
    css = theme.email_css
    try:
        return css_inline.inline_fragment(fragment, css) if css else fragment
    except ValueError as exc:  # css_inline.InlineError
        raise PublisherError(f"the theme's email/content.css cannot be inlined: {exc}") from None


# Inline elements met between two letters of which one is Chinese (`发布了<a>Codex</a>，`, `**推理模型**的`): spam
# filters take a tag between two letters for a word split to hide it (SpamAssassin's HTML_OBFUSCATE_* rules count
# them against all tags: a Chinese issue with much inline markup scored +0.2 to +2.5; the preheader's filler counts
# for nothing there, measured). A HAIR SPACE (U+200A, the thinnest space) there is whitespace to them and next to
# nothing to a reader (Chinese typography spaces Chinese from Latin text anyway). It goes outside a link, so no
# underline shows it.
_INLINE = "a|abbr|b|code|del|em|i|ins|kbd|mark|q|s|small|span|strong|sub|sup|u"
_INLINE_RUN = re.compile(rf"(?<=[^\s!-/:-@\[-`{{-~<>])((?:</?(?:{_INLINE})\b[^>]*>)+)(?=[^\s!-/:-@\[-`{{-~<>])")
_OPENING = re.compile(rf"<(?:{_INLINE})\b")
HAIR_SPACE = "\u200a"


def separate_inline_tags(fragment: str) -> str:
    """Put a hair space where inline tags stand between two letters of which one is Chinese (see above)."""

    def sub(match: re.Match[str]) -> str:
        before, after = fragment[match.start() - 1], fragment[match.end()]
        if not (markdown.is_wide(before) or markdown.is_wide(after)):
            return match.group(0)  # Latin on both sides: as written ("un<b>believ</b>able")
        tags = match.group(1)
        opening = _OPENING.search(tags)
        at = len(tags) if opening is None else opening.start()  # after closing tags, before opening ones
        return tags[:at] + HAIR_SPACE + tags[at:]

    return _INLINE_RUN.sub(sub, fragment)


_CONTENT_MARKER = "%%publisher:content%%"


def _template_file(theme: Theme, name: str, config: Config) -> Path | str:
    filename = theme.env.get_template(name).filename
    return relpath(Path(filename), config.root) if filename else name


def render_email(config: Config, issue: Issue, body_html: str, *, theme: Theme | None = None,
                 pages: Mapping[str, str] | None = None, text: bool = True) -> RenderedEmail:
    """Render the issue's email once: MJML to HTML, and (unless `text` is false) the plain-text part."""
    theme = theme or load_theme(config)
    pages = pages if pages is not None else {str(issue.path): issue.url_path}
    said = messages.install(theme, config.site.language)
    sender = sender_of(config, require_address=False, theme=theme)
    warnings: list[str] = []
    subject = issue.subject or issue.title
    prefix = config.email.subject_prefix
    subject = f"{prefix} {subject}" if prefix else subject
    line_break = _LINE_BREAK.search(subject)
    if line_break:  # the factory would refuse every message; `check` says so first, naming the file and the key
        raise PublisherError(f"contains a line break (U+{ord(line_break.group()):04X}): an email subject is one line",
                             file=relpath(issue.file, config.root), field="subject" if issue.subject else "title",
                             hint="remove it (in YAML, a quoted \\n or \\r is one)")
    # Other control characters are dropped, as the web pages and feeds drop them from a title.
    subject = _UNSAFE.sub("", subject)
    local = issue.date.astimezone(config.site.timezone)
    permalink = markdown.absolute_url(config.site.url, issue.url_path)
    context = {
        "site": {"title": config.site.title, "url": config.site.url, "language": config.site.language},
        "issue": {"title": issue.title, "subject": subject, "preheader": issue.preheader or issue.summary,
                  "permalink": permalink, "date_text": said.format_date(local),
                  "date_iso": local.isoformat(), "summary": issue.summary, "tags": list(issue.tags)},
        "email": {"reason": sender.reason, "postal_address": sender.postal_address,
                  "preferences": bool(sender.preferences_url)},  # whether `recipient.preferences_url` leads anywhere
        "strings": strings_for(config, theme),
        "recipient": _Markers(),
    }
    content = _email_html(config, theme, issue, body_html, pages, warnings)
    # MJML passes the inside of <mj-text> through untouched, so the issue's HTML goes in after MJML has run:
    # MJML then parses a small document (5x faster) and an author's loose raw HTML cannot break it.
    # MJML is parsed as XML: characters XML forbids (control characters in a title) would make it fail.
    mjml_source = markdown.xml_safe(theme.render("email/issue.mjml", content=_CONTENT_MARKER, **context))
    template_name = "email/issue.mjml"
    try:
        html_out = mjml.mjml2html(mjml_source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise PublisherError(f"MJML error: {exc}", file=_template_file(theme, template_name, config),
                             hint=f"while rendering the email of {relpath(issue.file, config.root)}") from None
    if html_out.count(_CONTENT_MARKER) != 1:
        raise PublisherError("the template must place {{ content }} exactly once inside an <mj-text>",
                             file=_template_file(theme, template_name, config))
    html_out = html_out.replace(_CONTENT_MARKER, markdown.xml_safe(content))

    def resolve(url: str) -> str:
        return markdown.absolute(url, issue.path.parent, pages, config.site.url, permalink)

    text_out = ""
    if text:
        body_text = markdown.to_text(issue.body, resolve)
        # A text ends with one line break, whatever the theme's issue.txt ends with: `email --text`, files, pipes.
        text_out = theme.render("email/issue.txt", content=body_text.rstrip("\n"), **context).rstrip("\n") + "\n"
    rendered = RenderedEmail(issue=issue, subject=subject, preheader=context["issue"]["preheader"], html=html_out,
                             text=text_out, warnings=tuple(warnings))
    if rendered.html_size > GMAIL_CLIP_BYTES:
        warnings.append(f"{relpath(issue.file, config.root)}: the email's HTML is {rendered.html_size // 1024} KB; "
                        f"Gmail clips messages over 102 KB (shorten the issue or split it)")
        rendered = RenderedEmail(issue, subject, rendered.preheader, html_out, text_out, tuple(warnings))
    return rendered


def check_emails(config: Config, issues: Sequence[Issue], *, theme: Theme | None = None) -> list[str]:
    """Render every issue's email (HTML and text) and return the warnings; raises with every error found."""
    theme = theme or load_theme(config)
    pages = {str(i.path): i.url_path for i in issues}
    warnings: list[str] = []
    problems = []
    for issue in issues:
        try:
            rendered = render_email(config, issue, markdown.to_html(issue.body), theme=theme, pages=pages)
        except PublisherError as exc:
            problems.extend(exc.problems)
            continue
        warnings.extend(rendered.warnings)
        leftovers = [t for t in ("{{", "{%", "%%publisher:content") if t in rendered.html or t in rendered.text]
        if leftovers:
            warnings.append(f"{relpath(issue.file, config.root)}: the email still contains {leftovers[0]!r}")
    if problems:
        raise PublisherError(problems=problems)
    if not config.email.postal_address:
        warnings.append(f"{config.file.name}: email.postal_address is empty; CAN-SPAM requires a physical postal "
                        "address in every commercial email")
    if not (config.email.from_address or config.site.author_email):
        warnings.append(f"{config.file.name}: email.from_address is not set; sending needs it")
    warnings.extend(email_warnings(config))
    return warnings


def email_warnings(config: Config) -> list[str]:
    """Warnings about the email settings themselves (not about one issue)."""
    warnings = []
    if not (config.email.unsubscribe_url or config.serve.public_url):
        warnings.append(
            f"{config.file.name}: email.unsubscribe_url: one-click unsubscribe has no endpoint: the links go to "
            f"{unsubscribe_url(config)}, on the static site, where nothing answers unless `publisher serve` runs "
            "behind a proxy there; set serve.public_url to where `publisher serve` is reached (the links then go to "
            "<public_url>unsubscribe), or email.unsubscribe_url, or keep subscribers in an SES contact list "
            "(subscribers.ses_contact_list with email.transport = \"ses\"): SES then hosts the unsubscribe page")
    if config.subscribers.topics and not preferences_url(config):
        warnings.append(
            f"{config.file.name}: subscribers.topics: readers choose topics on the preferences page of `publisher "
            "serve`, and the emails link to it only when serve.public_url is set (and subscribers are not in an SES "
            "contact list, whose page SES hosts)")
    return warnings


def as_test_copy(config: Config, rendered: RenderedEmail) -> RenderedEmail:
    """The email of `send --test`: the subject marked with `email.test_subject_prefix` (default "[TEST]"), so a
    test copy is never taken for the real issue."""
    marker = config.email.test_subject_prefix
    if not marker:
        return rendered
    return dataclasses.replace(rendered, subject=f"{marker} {rendered.subject}")


# ---- per recipient ----


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


_WORD_BYTES = 45  # UTF-8 bytes per RFC 2047 encoded word: "=?utf-8?b?" + 60 base64 characters + "?=" = 72 <= 75


def check_recipient(recipient: Recipient) -> None:
    """The last line of defence, whatever a value's origin (a store written before validation existed, another
    tool's SES attributes): refuse a name or address that could break a header or the body."""
    email, name = recipient.email, recipient.name
    if _UNSAFE.search(email) or not email.isascii() or "@" not in email:
        raise UnsafeValue(f"{email!r} is not an ASCII email address; no message is made for it", field="email",
                          hint="addresses are stored in ASCII (a Unicode domain as punycode) since publisher "
                               "validates them: add this subscriber again with `publisher subscribers add`")
    if _UNSAFE.search(name):
        raise UnsafeValue(f"the name of {email} contains the control character {control_character(name)}; no "
                          "message is made for it", field="name",
                          hint="correct the name with `publisher subscribers add ADDRESS --name NAME`")


def _encoded_words(text: str, charset: str = "utf-8", size: int = _WORD_BYTES) -> str:
    """Text as RFC 2047 encoded words (each within the 75-character limit), folded between words. Only base64
    comes out: whatever `text` holds, it cannot add a line or a header."""
    data = text.encode(charset)
    if len(data) <= size:
        chunks = [data]
    else:
        chunks, chunk = [], b""
        for char in text:  # split between characters, never inside one
            encoded = char.encode(charset)
            if len(chunk) + len(encoded) > size:
                chunks.append(chunk)
                chunk = b""
            chunk += encoded
        chunks.append(chunk)
    return "\r\n ".join(f"=?{charset}?b?{binascii.b2a_base64(c, newline=False).decode('ascii')}?=" for c in chunks)


# Subject words a little shorter (39 bytes: 52 base64 characters), so that "Subject: " and the first word stay
# within the 78 characters past which the email package would fold the header again (in UTF-8).
_SUBJECT_WORD_BYTES = 39
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003fffd]")
_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")


def subject_charset(subject: str) -> str:
    """The charset a Subject header is encoded in: UTF-8, except for a Chinese subject whose only Latin letters are
    capitals ("AI 日报：本周要闻"). Spam filters read such a subject as shouted: SpamAssassin's SUBJ_ALL_CAPS
    keeps only A-Z and a-z and finds no lowercase letter, unless the subject is encoded in the charset of a
    caseless script (its CHARSETS_LIKELY_TO_FP_AS_CAPS: gb, big5, jis, euc, koi, ...). GB18030 is the Chinese
    standard, covers all of Unicode and is read by every mail client, so the subject is the same, only encoded
    otherwise."""
    if _HAN.search(subject) and _UPPER.search(subject) and not _LOWER.search(subject):
        return "gb18030"
    return "utf-8"


def subject_header(subject: str) -> str:
    """A Subject header's value, ASCII, for `EmailMessage.set_raw("Subject", ...)`: RFC 2047 encoded words in
    `subject_charset(subject)`. The value is checked through `headerregistry` first (which refuses CR and LF)."""
    EmailMessage(policy=policy.SMTP)["Subject"] = subject  # raises ValueError for a line break
    if subject.isascii():
        return subject
    return _encoded_words(subject, subject_charset(subject), _SUBJECT_WORD_BYTES)


def to_header(recipient: Recipient) -> bytes:
    """The To header's value, ASCII. The address is a `headerregistry.Address` (which refuses CR and LF and quotes
    what needs quoting); a non-ASCII name is encoded here rather than through a header fold, which costs more
    than the whole rest of a message. Call `check_recipient` first."""
    local, _, domain = recipient.email.rpartition("@")
    address = Address(display_name=recipient.name, username=local, domain=domain)
    name = address.display_name
    if not name:
        return address.addr_spec.encode("ascii")
    if name.isascii() and "=?" not in name:  # "=?" would read as an encoded word: encode such a name too
        return str(address).encode("ascii")
    return f"{_encoded_words(name)} <{address.addr_spec}>".encode("ascii")


def fill(template: str, values: Mapping[str, str], *, escape: bool) -> str:
    """Fill the markers of a rendered part (HTML-escaping the values for the HTML part)."""
    return _MARKER.sub(lambda m: html.escape(values[m.group(1)]) if escape else values[m.group(1)], template)


def _b64_lines(data: bytes) -> bytes:
    """base64 in lines of 76 characters, each ended by CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join(encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


class _EncodedPart:
    """A text part split at its markers, the fixed pieces pre-encoded (see the module docstring)."""

    def __init__(self, template: str, escape: bool) -> None:
        pieces = _MARKER.split(template)
        self.fixed = [p.encode("utf-8") for p in pieces[0::2]]
        self.fields = pieces[1::2]
        self.escape = escape
        # encoded[i][k]: fixed piece i without its first k bytes, encoded up to a multiple of 3 bytes, and the
        # 0-2 bytes left over for the next window. The last piece is encoded whole (with padding).
        last = len(self.fixed) - 1
        self.encoded = []
        for i, piece in enumerate(self.fixed):
            variants = []
            for k in range(3):
                rest = piece[k:]
                tail = 0 if i == last else len(rest) % 3
                variants.append((_b64_lines(rest[: len(rest) - tail]), rest[len(rest) - tail:]))
            self.encoded.append(variants)

    def encode(self, values: Mapping[str, str]) -> bytes:
        out, carry = [self.encoded[0][0][0]], self.encoded[0][0][1]
        for i, name in enumerate(self.fields, start=1):
            value = html.escape(values[name]) if self.escape else values[name]
            window = carry + value.encode("utf-8")
            need = -len(window) % 3
            piece = self.fixed[i]
            if need > len(piece):  # too short to realign on: it joins the bytes still to encode
                carry = window + piece
                continue
            out.append(_b64_lines(window + piece[:need]))
            encoded, carry = self.encoded[i][need]
            out.append(encoded)
        if carry:
            out.append(_b64_lines(carry))
        return b"".join(out)


class MessageFactory:
    """Makes the MIME message of one issue for any number of recipients, cheaply."""

    def __init__(self, rendered: RenderedEmail, sender: Sender, secret: bytes, *, date: datetime,
                 id_salt: str = "") -> None:
        self.rendered = rendered
        self.sender = sender
        self.secret = secret
        self.slug = rendered.issue.slug
        self.boundary = "==publisher_" + hashlib.sha256(rendered.html.encode("utf-8")).hexdigest()[:24] + "=="
        self._text = _EncodedPart(rendered.text, escape=False)
        self._html = _EncodedPart(rendered.html, escape=True)
        self._common = self._common_headers(date)
        self._mailto = f"mailto:{sender.unsubscribe_mailto}?subject="
        # `id_salt` sets a test copy's Message-ID apart: a mailbox that has a Message-ID drops another message
        # with it as a duplicate (Gmail does), so a test copy must not share it with the issue, nor with an
        # earlier test copy.
        self._message_id_salt = f"{self.slug}\0{sender.list_id}\0{id_salt}".encode()

    def _common_headers(self, date: datetime) -> bytes:
        sender = self.sender
        for key, value in (("Subject", self.rendered.subject), ("From", sender.name), ("From", sender.address),
                           ("Reply-To", sender.reply_to or ""), ("List-Id", sender.list_name),
                           ("List-Id", sender.list_id), ("List-Unsubscribe", sender.unsubscribe_url),
                           ("List-Unsubscribe", sender.unsubscribe_mailto)):
            found = control_character(value)
            if found:
                raise UnsafeValue(f"the {key} header would contain the control character {found}",
                                  field=key, hint="a header value is one line")
        if not (sender.unsubscribe_url + sender.unsubscribe_mailto).isascii():
            raise UnsafeValue("the List-Unsubscribe header would not be ASCII", field="List-Unsubscribe",
                              hint="use an ASCII (percent-encoded, punycode) email.unsubscribe_url")
        msg = EmailMessage(policy=policy.SMTP)
        subject = self.rendered.subject
        if subject_charset(subject) == "utf-8":
            msg["Subject"] = subject
        else:  # headerregistry encodes in UTF-8 only: the value is checked by it, then encoded here
            msg.set_raw("Subject", subject_header(subject))
        msg["From"] = Address(display_name=sender.name, addr_spec=sender.address)
        if sender.reply_to:
            msg["Reply-To"] = sender.reply_to
        msg["Date"] = format_datetime(date)
        msg["List-Id"] = f"{sender.list_name} <{sender.list_id}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Precedence"] = "bulk"
        msg["Auto-Submitted"] = "auto-generated"
        msg["MIME-Version"] = "1.0"
        return msg.as_bytes()[:-2]  # without the blank line that ends the header block

    def values(self, recipient: Recipient) -> dict[str, str]:
        return self._values(recipient)[0]

    def _values(self, recipient: Recipient) -> tuple[dict[str, str], str]:
        # Checked here, before anything is filled into the pre-encoded pieces or the headers.
        check_recipient(recipient)
        token = make_token(self.secret, "unsubscribe", recipient.email, self.sender.list_id)
        url = f"{self.sender.unsubscribe_url}{'&' if '?' in self.sender.unsubscribe_url else '?'}token={token}"
        preferences = ""
        if self.sender.preferences_url:  # same rules as the unsubscribe token: the address and the list, no expiry
            preferences = (f"{self.sender.preferences_url}?token="
                           f"{make_token(self.secret, 'preferences', recipient.email, self.sender.list_id)}")
        values = {"name": recipient.name or self.sender.default_name, "email": recipient.email, "unsubscribe_url": url,
                  "preferences_url": preferences}
        return values, token

    def message_id(self, recipient: Recipient) -> str:
        # The same issue to the same address always has the same id, so a resend after a crash can be
        # recognised as a duplicate by the receiving side.
        digest = hashlib.sha256(self._message_id_salt + recipient.email.encode("utf-8")).hexdigest()[:24]
        return f"<{self.slug}.{digest}@{self.sender.domain}>"

    def message(self, recipient: Recipient) -> bytes:
        values, token = self._values(recipient)
        unsubscribe = f"<{values['unsubscribe_url']}>, <{self._mailto}{quote('unsubscribe ' + token)}>"
        b = self.boundary.encode()
        return b"".join([
            self._common,
            b"To: ", to_header(recipient), b"\r\n",
            b"Message-ID: ", self.message_id(recipient).encode(), b"\r\n",
            b"List-Unsubscribe: ", unsubscribe.encode("ascii"), b"\r\n",
            b'Content-Type: multipart/alternative; boundary="', b, b'"\r\n',
            b"\r\n--", b, b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
            self._text.encode(values),
            b"--", b, b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
            self._html.encode(values),
            b"--", b, b"--\r\n",
        ])

    def html_for(self, recipient: Recipient) -> str:
        return fill(self.rendered.html, self.values(recipient), escape=True)

    def text_for(self, recipient: Recipient) -> str:
        return fill(self.rendered.text, self.values(recipient), escape=False)


def neutral_values(config: Config, theme: Theme | None = None) -> dict[str, str]:
    """The fill-in for the public "view in browser" copy: no one's name, address or token."""
    sender = sender_of(config, require_address=False, theme=theme)
    return {"name": sender.default_name, "email": "…", "unsubscribe_url": sender.unsubscribe_url,
            "preferences_url": sender.preferences_url}


def browser_copy(config: Config, rendered: RenderedEmail, theme: Theme | None = None) -> bytes:
    return fill(rendered.html, neutral_values(config, theme), escape=True).encode("utf-8")


def email_pages(config: Config, theme: Theme, issues: Sequence[Issue], bodies: Mapping[str, str],
                memo: Memo | None = None) -> dict[str, bytes]:
    """`issues/<slug>/email.html` for every issue: the email as a subscriber sees it, for "view in browser"."""
    pages = {str(i.path): i.url_path for i in issues}
    out = {}
    for issue in issues:

        def make(issue: Issue = issue) -> bytes:
            body = bodies[issue.slug]
            return browser_copy(config, render_email(config, issue, body, theme=theme, pages=pages, text=False), theme)

        make.group = issue.slug  # type: ignore[attr-defined]  # rendered beside the issue's page (build.py)

        inputs = ("email", issue_inputs(issue, pages))
        out[issue.url_path + "email.html"] = make() if memo is None else memo(inputs, make)
    return out

