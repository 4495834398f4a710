"""Offline feed checker used by the test-suite.

Re-implements, without any network access, the rules of the W3C Feed
Validation Service (https://validator.w3.org/feed/, project
``w3c/feedvalidator``) that matter for the feeds ``publisher`` writes, plus
the rules of the JSON Feed 1.1 specification (https://www.jsonfeed.org/version/1.1/).

Public API::

    check_rss(data: bytes, *, self_url=None) -> list[str]
    check_atom(data: bytes, *, self_url=None) -> list[str]
    check_json_feed(data: bytes, *, self_url=None) -> list[str]

Each function returns a list of human readable error strings; an empty list
means the document passed every check.  Every string has the form::

    <where>: <RuleName>: <message> [(line N)]

``<where>`` names the feed part, e.g. ``channel``, ``feed``,
``item[2] (title='...', guid='...')``, ``entry[0] (title='...', id='...')``
or ``items[1] (id='...', title='...')`` (indexes are 0-based, in document
order).  ``<RuleName>`` is the feedvalidator message class where one exists
(``MissingTitle``, ``InvalidRFC2822Date``, ``ContainsRelRef`` ...); rules that
only come from the JSON Feed spec or that feedvalidator lacks use a
descriptive CamelCase name of the same style.

Several feedvalidator *warnings* are deliberately reported here as errors
(MissingAtomSelfLink/MissingSelf, MissingGuid, ContainsRelRef, SecurityRisk*,
DangerousStyleAttr, SelfDoesntMatchLocation, DuplicateEntries,
ProblematicalRFC822Date, NonCanonicalURI, NotHtml, ContainsHTML, NotBlank, ...):
the tests want feeds that the W3C service reports with neither errors nor these
warnings.

What is checked (rule names in brackets):

* XML: UTF-8 declared [MissingEncoding, EncodingNotUTF8, BadXmlVersion] and
  valid [UnicodeError]; only XML 1.0 characters [InvalidXMLCharacter]; no C1
  controls / U+FFFD / double-encoded UTF-8 [BadCharacters]; well-formed, parsed
  with lxml without entity expansion or network [SAXError,
  ContainsSystemEntity, UndefinedNamedEntity]; well-known prefixes bound to
  their namespaces [ReservedPrefix, InvalidNamespace]; xml:lang values
  [InvalidLanguage].
* RSS 2.0: rss/version, one channel, required channel title/link/description,
  elements that may occur once, unknown core elements, attributes and text,
  URLs, RFC 822 dates, language, e-mail fields, image/textInput/cloud/ttl/
  skipHours/skipDays, atom:link rel="self" (type application/rss+xml if
  given, href == self_url), items (title or description, guid present, unique,
  permalink-URL, link, category, author, enclosure, source, content:encoded,
  dc:*), HTML in description / content:encoded (relative URLs, unsafe
  elements/attributes/styles/URLs, broken markup), HTML in plain-text fields.
* Atom 1.0: feed/entry required and at-most-once elements, ids (absolute IRI,
  canonical, unique), RFC 3339 dates, author on the feed or every entry, links
  (rel, type, hreflang, self == self_url, relative hrefs only under xml:base),
  text constructs and content (text/html/xhtml/MIME types, base64, xhtml:div),
  categories, persons, generator, icon/logo, atom:source, misplaced metadata,
  the same HTML checks (relative URLs allowed under xml:base).
* JSON Feed 1.1: UTF-8 JSON object without duplicate keys, version, title,
  URLs, feed_url (== self_url), authors, language, hubs, items (id unique
  string, content_html/content_text, URLs, RFC 3339 dates, tags, authors,
  attachments), deprecated ``author`` without ``authors``, unknown keys that
  do not start with "_", and the HTML checks on content_html.

Dependencies: the standard library and lxml only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import re
import unicodedata
from email.utils import getaddresses
from html.entities import name2codepoint
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from lxml import etree

__all__ = ["check_rss", "check_atom", "check_json_feed"]


def _words(text: str) -> frozenset[str]:
    """A set of whitespace-separated words (for the long vocabulary lists below)."""
    return frozenset(text.split())


# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
SVG_NS = "http://www.w3.org/2000/svg"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"

XML_BASE = f"{{{XML_NS}}}base"
XML_LANG = f"{{{XML_NS}}}lang"

# Well known prefixes and the namespace they are expected to be bound to
# (feedvalidator: ReservedPrefix).
RESERVED_PREFIXES = {
    "atom": ATOM_NS,
    "content": CONTENT_NS,
    "dc": DC_NS,
    "dcterms": "http://purl.org/dc/terms/",
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "media": "http://search.yahoo.com/mrss/",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "georss": "http://www.georss.org/georss",
    "geo": "http://www.w3.org/2003/01/geo/wgs84_pos#",
    "xhtml": XHTML_NS,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "thr": "http://purl.org/syndication/thread/1.0",
    "trackback": "http://madskills.com/public/xml/rss/module/trackback/",
    "feedburner": "http://rssnamespace.org/feedburner/ext/1.0",
    "creativeCommons": "http://backend.userland.com/creativeCommonsRssModule",
}
_KNOWN_NS = set(RESERVED_PREFIXES.values()) | {SVG_NS, MATHML_NS, XML_NS}


def _near(ns: str) -> str:
    return ns.lower().rstrip("/#")


_NEAR_KNOWN = {_near(ns): ns for ns in _KNOWN_NS}
# feed vocabularies that must not appear inside (X)HTML content
_FEED_VOCABULARIES = (set(RESERVED_PREFIXES.values()) - {XHTML_NS}) | {"http://www.w3.org/2007/app"}

# ---------------------------------------------------------------------------
# Small value validators.  Each returns None when fine, else a
# (rule, message) tuple.
# ---------------------------------------------------------------------------

# ISO 639-1 two letter codes (including the withdrawn mo/sh that
# feedvalidator still accepts).
_ISO639_1 = _words(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce
    ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy
    ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu
    ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu
    lv mg mh mi mk ml mn mo mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj
    om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn
    so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur
    uz ve vi vo wa wo xh yi yo za zh zu"""
)
_LANG_SHAPE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


def _lang_problem(value: str, element: str):
    """RFC 3066 / BCP 47 shaped tag whose primary subtag is an ISO 639 code
    (feedvalidator: InvalidLanguage)."""
    msg = f"{element} must be an ISO-639 language code: {value!r}"
    if not _LANG_SHAPE.match(value or ""):
        return ("InvalidLanguage", msg)
    primary = value.split("-", 1)[0].lower()
    if len(primary) == 2:
        ok = primary in _ISO639_1
    elif len(primary) == 3:
        ok = True  # ISO 639-2/639-3 alpha-3 code
    else:
        ok = primary in ("i", "x") and "-" in value
    return None if ok else ("InvalidLanguage", msg)


# RFC 822 / RFC 2822 date-time as written in RSS 2.0, the strict form that
# feedvalidator accepts without any warning: optional English day name and
# comma, 1-2 digit day, English month, 4-digit year, HH:MM[:SS], zone.
_RFC822_RE = re.compile(
    r"^(?:(?P<dow>Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?"
    r"(?P<day>\d\d?) (?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(?P<year>\d{4}) (?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d))? "
    r"(?P<tz>[+-]\d\d[03]0|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$"
)
# The loose RFC 822 grammar (2 digit year, any case, comments, military zones)
# that feedvalidator only tolerates with a ProblematicalRFC822Date warning.
_RFC822_LOOSE_RE = re.compile(
    r"^((mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?\d\d?\s+"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+\d\d(\d\d)?\s+"
    r"\d\d:\d\d(:\d\d)?\s+([+-]\d\d\d\d|ut|gmt|est|edt|cst|cdt|mst|mdt|pst|pdt|[a-ik-z])?$"
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _rfc822_problem(value: str, element: str):
    m = _RFC822_RE.match(value)
    if not m:
        # strip (nested) RFC 822 comments and quoted-pairs, as feedvalidator does
        loose, prev = re.sub(r"\\.", "", value), None
        while loose != prev:
            prev, loose = loose, re.sub(r"\([^(]*?\)", " ", loose)
        if _RFC822_LOOSE_RE.match(loose.strip().lower()):
            return (
                "ProblematicalRFC822Date",
                f"{element} is an obsolete/ambiguous RFC-822 date-time (use e.g. "
                f"'Mon, 05 Jan 2026 08:00:00 +0000'): {value!r}",
            )
        return ("InvalidRFC2822Date", f"{element} must be an RFC-822 date-time: {value!r}")
    try:
        date = _dt.date(int(m["year"]), _MONTHS.index(m["mon"]) + 1, int(m["day"]))
    except ValueError as exc:
        return ("InvalidRFC2822Date", f"{element} must be an RFC-822 date-time: {value!r} ({exc})")
    if int(m["h"]) > 23 or int(m["m"]) > 59 or (m["s"] and int(m["s"]) > 60):
        return ("InvalidRFC2822Date", f"{element} has an impossible time of day: {value!r}")
    tz = m["tz"]
    if tz[0] in "+-" and int(tz[1:3]) > 23:
        return ("InvalidRFC2822Date", f"{element} has an impossible time zone offset: {value!r}")
    if m["dow"] and _DAYS[date.weekday()] != m["dow"]:
        return (
            "IncorrectDOW",
            f"Incorrect day of week in {element}: {value!r} ({date.isoformat()} is a {_DAYS[date.weekday()]})",
        )
    if date.year < 1990:
        return ("ImplausibleDate", f"Implausible date in {element}: {value!r}")
    return None


_RFC3339_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-](\d\d):(\d\d))$")


def _rfc3339_problem(value: str, element: str, rule: str = "InvalidRFC3339Date"):
    msg = f"{element} must be an RFC-3339 date-time: {value!r}"
    m = _RFC3339_RE.match(value)
    if not m:
        return (rule, msg)
    year, month, day, hh, mm, ss = (int(m.group(i)) for i in range(1, 7))
    try:
        _dt.date(year, month, day)
    except ValueError as exc:
        return (rule, f"{msg} ({exc})")
    if hh > 23 or mm > 59 or ss > 60:
        return (rule, msg + " (impossible time of day)")
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return (rule, msg + " (impossible time zone offset)")
    if year < 1990:
        return ("ImplausibleDate", f"Implausible date in {element}: {value!r}")
    return None


_W3CDTF_RE = re.compile(r"^\d{4}(-\d\d(-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d))?)?)?$")

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# ASCII characters allowed in a URI (RFC 3986 unreserved + reserved + '%').
_URI_ASCII_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$&'()*+,;=%")
_BAD_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TAG_RE = re.compile(
    r"^tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*(#[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*)?$"
)
_URN_RE = re.compile(r"^[Uu][Rr][Nn]:[a-zA-Z0-9][a-zA-Z0-9-]{1,31}:([a-zA-Z0-9()+,.:=@;$_!*'\-]|%[0-9A-Fa-f]{2})+$")
_UUID_RE = re.compile(
    r"^[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(:\d*)?$")


def _uri_chars_problem(value: str, element: str, iri: bool):
    for ch in value:
        if ch.isspace() or (ord(ch) < 128 and ch not in _URI_ASCII_OK):
            return ("InvalidUriChar", f"Invalid character {ch!r} in {element} URI {value!r}")
        if ord(ch) >= 128 and not iri:
            return (
                "UriNotIri",
                f"{element} must be a URI; non-ASCII character {ch!r} must be percent-encoded: {value!r}",
            )
    if _BAD_PCT_RE.search(value):
        return ("InvalidUriChar", f"Invalid percent-escape in {element} URI {value!r}")
    return None


def _full_uri_problem(value: str, element: str, *, iri: bool = False, http: bool = False):
    """Absolute URI (feedvalidator rfc2396_full / rfc3987_full)."""
    if value is None or value == "":
        return ("InvalidFullLink", f"{element} must be a full and valid URL (it is empty)")
    if value != value.strip():
        return ("UnexpectedWhitespace", f"Whitespace not permitted around {element}: {value!r}")
    m = _SCHEME_RE.match(value)
    if not m:
        return ("InvalidFullLink", f"{element} must be a full and valid URL: {value!r}")
    scheme = m.group(1).lower()
    if scheme == "tag" and not _TAG_RE.match(value):
        return ("InvalidTAG", f"{element} is not a valid TAG URI: {value!r}")
    if scheme == "urn" and value.lower().startswith("urn:uuid:") and not _UUID_RE.match(value):
        return ("InvalidUUID", f"{element} is not a valid UUID URN: {value!r}")
    if scheme == "urn" and not _URN_RE.match(value):
        return ("InvalidURN", f"{element} is not a valid URN: {value!r}")
    problem = _uri_chars_problem(value, element, iri)
    if problem:
        return problem
    if http and scheme not in ("http", "https"):
        return ("InvalidFullLink", f"{element} must be an absolute http(s) URL: {value!r}")
    if scheme in ("http", "https", "ftp"):
        parts = urlsplit(value)
        if (
            not value[len(scheme) + 1 :].startswith("//")
            or not parts.netloc
            or not _HOST_RE.match(parts.netloc.rsplit("@", 1)[-1])
        ):
            return ("InvalidFullLink", f"{element} must be a full and valid URL: {value!r}")
    return None


def _uri_ref_problem(value: str, element: str, *, iri: bool = True):
    """URI/IRI reference (may be relative)."""
    if value != value.strip():
        return ("UnexpectedWhitespace", f"Whitespace not permitted around {element}: {value!r}")
    if _SCHEME_RE.match(value):
        return _full_uri_problem(value, element, iri=iri)
    return _uri_chars_problem(value, element, iri)


_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}


_UNRESERVED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
_PCT_RUN_RE = re.compile(r"((?:%[0-9A-Fa-f]{2})+)")


def _norm_pct(component: str):
    """RFC 3986 6.2.2 normalisation of one component: decode percent-escaped
    unreserved characters, upper-case the hex of the others, NFC-normalise
    percent-encoded UTF-8.  Escaped reserved characters stay escaped."""
    iri = any(ord(c) > 127 for c in component)
    buf = bytearray()
    for i, part in enumerate(_PCT_RUN_RE.split(component)):
        if i % 2 == 0:
            buf += part.encode("utf-8")
        else:
            for hexpair in re.findall(r"%([0-9A-Fa-f]{2})", part):
                octet = int(hexpair, 16)
                if octet < 128 and chr(octet) not in _UNRESERVED:
                    buf += chr(0xF000 + octet).encode("utf-8")  # keep escaped
                else:
                    buf.append(octet)
    text = unicodedata.normalize("NFC", buf.decode("utf-8"))  # may raise UnicodeDecodeError
    out = []
    for ch in text:
        if 0xF000 <= ord(ch) < 0xF080:
            out.append("%%%02X" % (ord(ch) - 0xF000))
        elif ord(ch) > 127 and not iri:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out)


def _canonical_uri(value: str):
    m = re.match(r"^([^:/?#]+):(//([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$", value)
    if not m:
        return None
    scheme = m.group(1).lower()
    result = scheme + ":"
    path = m.group(4)
    if m.group(2) is not None:
        auth = m.group(3)
        userinfo, _, host = auth.rpartition("@")
        if userinfo in ("", ":"):
            userinfo = ""
        host = host.lower()
        hm = re.match(r"^(.*?)(?::(\d*))?$", host)
        host, port = hm.group(1), hm.group(2)
        if port and port != _DEFAULT_PORTS.get(scheme):
            host += ":" + port
        result += "//" + (userinfo + "@" if userinfo else "") + host
        path = _remove_dot_segments(path) or "/"
    elif path.startswith("/"):
        path = _remove_dot_segments(path)
    result += _norm_pct(path)
    for extra in (m.group(5), m.group(6)):
        if extra is not None:
            result += extra[0] + _norm_pct(extra[1:])
    return result


def _canonical_problem(value: str, element: str):
    """feedvalidator NonCanonicalURI: identifiers should be in the RFC 3986
    normalised form so that character-by-character comparison works."""
    if value.lower().startswith(("tag:", "urn:")):
        if value[:4] != value[:4].lower():
            return (
                "NonCanonicalURI",
                f"Identifier {element} {value!r} is not in canonical form (the scheme should be lower case)",
            )
        return None
    try:
        canonical = _canonical_uri(value)
    except (UnicodeDecodeError, ValueError):
        return None
    if canonical is not None and canonical != value:
        return (
            "NonCanonicalURI",
            f"Identifier {element} {value!r} is not in canonical form (the canonical form would be {canonical!r})",
        )
    return None


def _norm_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.netloc else None
    netloc = host
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = parts.path or ("/" if parts.netloc else "")
    out = f"{scheme}://{netloc}{path}"
    if parts.query:
        out += "?" + parts.query
    return out


_ADDR_SPEC_RE = re.compile(
    r"^[A-Za-z0-9_\-+.'!#$%&*/=?^`{|}~]+@"
    r"(?:\[?\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\]?|(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9\-]*)$"
)


def _addr_spec_ok(value: str) -> bool:
    return bool(_ADDR_SPEC_RE.match(value or "")) and ".." not in value


def _rss_email_problem(value: str, element: str):
    """RSS managingEditor / webMaster / item author (email_with_name)."""
    v = value.strip()
    if v.lower().startswith("mailto:"):
        v = unquote(v[7:].split("?", 1)[0])
    found = _contains_html(v)
    if found:
        return ("ContainsHTML", f"{element} should not contain HTML (found {found})")
    addresses = [a for _, a in getaddresses([v]) if a]
    if len(addresses) != 1 or not _addr_spec_ok(addresses[0]):
        return (
            "InvalidContact",
            f"Invalid email address in {element}: {value!r} (expected e.g. 'jane@example.com (Jane Doe)';"
            " use dc:creator for a plain name)",
        )
    return None


_MIME_RE = re.compile(
    r'^[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+'
    r'(\s*;\s*[^\s()<>,;:\\"/\[\]?=]+=("(\\"|[^"])*"|[^\s()<>,;:\\"/\[\]?=]+))*$'
)

# ---------------------------------------------------------------------------
# HTML checks (description, content:encoded, Atom html/xhtml, content_html)
# ---------------------------------------------------------------------------

_HTML_TAGS = _words(
    """a abbr acronym address applet area article aside audio b base basefont bdi
    bdo big blockquote body br button canvas caption center cite code col
    colgroup command data datalist dd del details dfn dialog dir div dl dt em
    embed fieldset figcaption figure font footer form frame frameset h1 h2 h3
    h4 h5 h6 head header hgroup hr html i iframe img input ins isindex kbd
    keygen label legend li link listing main map mark menu meta meter nav
    noframes noscript object ol optgroup option output p param picture
    plaintext pre progress q rp rt ruby s samp script section select slot small
    source span strike strong style sub summary sup table tbody td template
    textarea tfoot th thead time title tr track tt u ul var video wbr xmp"""
)
# Elements feedvalidator reports as SecurityRisk (HTML elements that are not
# on its list of acceptable elements).
_UNSAFE_TAGS = _words(
    """applet base basefont body embed frame frameset head html iframe isindex
    link listing meta noframes object param plaintext script slot style title
    xmp"""
)
_VOID_TAGS = _words(
    "area base basefont br col command embed frame hr img input isindex keygen link meta param source track wbr"
)
_OPTIONAL_END = _words("p li dt dd rt rp optgroup option colgroup caption thead tbody tfoot tr td th html head body")
_URL_ATTRS = {
    "href",
    "src",
    "poster",
    "cite",
    "action",
    "formaction",
    "background",
    "longdesc",
    "xlink:href",
    "data",
    "srcset",
}
_ABS_REF_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:")
_DANGEROUS_URL_RE = re.compile(r"^\s*(javascript|vbscript|livescript)\s*:", re.I)
# Inline CSS that feedvalidator accepts without a DangerousStyleAttr warning:
# a conservative set of presentational properties; for the box properties
# (background*, border*, margin*, padding*) only simple keywords, colours and
# short lengths.
_SAFE_CSS_PROPERTIES = _words(
    """azimuth background background-color border border-bottom border-bottom-color
    border-bottom-style border-bottom-width border-collapse border-color border-left
    border-left-color border-left-style border-left-width border-right border-right-color
    border-right-style border-right-width border-spacing border-style border-top
    border-top-color border-top-style border-top-width border-width clear color cursor
    direction display elevation float font font-family font-size font-style font-variant
    font-weight height letter-spacing line-height list-style-type margin margin-bottom
    margin-left margin-right margin-top overflow padding padding-bottom padding-left
    padding-right padding-top pause pause-after pause-before pitch pitch-range richness
    speak speak-header speak-numeral speak-punctuation speech-rate stress text-align
    text-decoration text-indent unicode-bidi vertical-align voice-family volume
    white-space width"""
)
_SAFE_CSS_KEYWORDS = _words(
    """aqua auto black block blue bold both bottom brown center collapse dashed dotted
    fuchsia gray green !important italic left lime maroon medium none navy normal nowrap
    olive pointer purple red right solid silver teal top transparent underline white
    yellow"""
)
_SAFE_CSS_VALUE_RE = re.compile(
    r"^(#[0-9a-f]+|rgb\(\d+%?,\d*%?,?\d*%?\)?|\d?\.?\d?\d(cm|em|ex|in|mm|pc|pt|px|%|,|\))?)$"
)
_CSS_CHARS_RE = re.compile(r"""^([:,;#%.\sa-zA-Z0-9!]|\w-\w|'[\s\w]+'|"[\s\w]+"|\([\d,\s]+\))*$""")
_CSS_DECLS_RE = re.compile(r"^(\s*[-\w]+\s*:\s*[^:;]*(;|$))*$")


def _style_problems(style: str) -> list[str]:
    """What in an inline style attribute is not on the safe list."""
    if not _CSS_CHARS_RE.match(style) or not _CSS_DECLS_RE.match(style):
        return [style]
    unsafe: list[str] = []
    for prop, value in re.findall(r"([-\w]+)\s*:\s*([^:;]*)", style.lower()):
        if prop not in _SAFE_CSS_PROPERTIES:
            unsafe.append(prop)
        elif prop.split("-")[0] in ("background", "border", "margin", "padding"):
            unsafe.extend(v for v in value.split() if v not in _SAFE_CSS_KEYWORDS and not _SAFE_CSS_VALUE_RE.match(v))
    return list(dict.fromkeys(unsafe))


def _url_values(attr: str, value: str):
    if attr == "srcset":
        return [c.strip().split()[0] for c in value.split(",") if c.strip()]
    return [value]


class _HTMLScanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []  # (rule, detail)
        self.stack = []
        self.foreign = 0  # depth inside <svg>/<math>

    def _attrs(self, tag, attrs):
        for name, value in attrs:
            name = name.lower()
            value = value or ""
            if name.startswith("on"):
                self.problems.append(("SecurityRiskAttr", f"should not contain {name} attribute (on <{tag}>)"))
            elif name == "style":
                for bad in _style_problems(value):
                    self.problems.append(
                        (
                            "DangerousStyleAttr",
                            f"style attribute contains potentially dangerous content: {bad!r} (in {value!r})",
                        )
                    )
            if name in _URL_ATTRS and not (name == "data" and tag != "object"):
                for ref in _url_values(name, value):
                    if _DANGEROUS_URL_RE.match(ref):
                        self.problems.append(
                            ("SecurityRisk", f"should not contain script URLs: <{tag} {name}={ref!r}>")
                        )
                    elif not _ABS_REF_RE.match(ref):
                        self.problems.append(
                            (
                                "ContainsRelRef",
                                f"should not contain relative URL references: <{tag} {name}={ref!r}>",
                            )
                        )

    def _start(self, tag, attrs, selfclosing):
        if self.foreign == 0:
            if tag in ("svg", "math"):
                pass
            elif tag not in _HTML_TAGS:
                self.problems.append(("NotHtml", f"Non-html tag: <{tag}>"))
            elif tag in _UNSAFE_TAGS:
                self.problems.append(("SecurityRisk", f"should not contain {tag} tag"))
        elif tag == "script":
            self.problems.append(("SecurityRisk", f"should not contain {tag} tag"))
        self._attrs(tag, attrs)
        if tag in _VOID_TAGS and self.foreign == 0:
            return
        if selfclosing:
            if self.foreign == 0 and tag not in ("svg", "math"):
                self.problems.append(("NotHtml", f"Invalid HTML: non-void element used as self-closing tag <{tag}/>"))
            return
        if tag in ("svg", "math"):
            self.foreign += 1
        self.stack.append(tag)

    def handle_starttag(self, tag, attrs):
        self._start(tag, attrs, False)

    def handle_startendtag(self, tag, attrs):
        self._start(tag, attrs, True)

    def handle_endtag(self, tag):
        if tag in _VOID_TAGS and self.foreign == 0:
            self.problems.append(("NotHtml", f"Invalid HTML: end tag for void element </{tag}>"))
            return
        if tag not in self.stack:
            self.problems.append(("NotHtml", f"Invalid HTML: unexpected end tag </{tag}>"))
            return
        while self.stack:
            top = self.stack.pop()
            if top in ("svg", "math"):
                self.foreign -= 1
            if top == tag:
                break
            if top not in _OPTIONAL_END and self.foreign == 0:
                self.problems.append(("NotHtml", f"Invalid HTML: <{top}> not closed before </{tag}>"))

    def finish(self):
        rest = self.rawdata
        if re.match(r"<[A-Za-z/!?]", rest or ""):
            self.problems.append(("NotHtml", f"Invalid HTML: truncated markup at end: {rest[:40]!r}"))
        self.close()
        for tag in self.stack:
            if tag not in _OPTIONAL_END:
                self.problems.append(("NotHtml", f"Invalid HTML: unclosed <{tag}>"))
        return self.problems


def _html_problems(html: str, *, allow_relative: bool = False):
    scanner = _HTMLScanner()
    if "<?import" in html.lower():
        scanner.problems.append(("SecurityRisk", "should not contain <?import processing instructions"))
    try:
        scanner.feed(html)
        problems = scanner.finish()
    except Exception as exc:  # pragma: no cover - html.parser is very lenient
        problems = scanner.problems + [("NotHtml", f"Invalid HTML: {exc}")]
    if allow_relative:
        problems = [p for p in problems if p[0] != "ContainsRelRef"]
    # de-duplicate while keeping order
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


_END_TAG_RE = re.compile(r"</(\w+)>")
_ENTITY_RE = re.compile(r"&(#?\w+)")


def _contains_html(value: str, raw: str = ""):
    """feedvalidator nonhtml: plain-text fields must not contain HTML markup or
    (double) escaped entities.  Like feedvalidator, entity-looking text is
    accepted when the raw XML uses hex character references (``&#x26;``), the
    RSS Profile's recommended way to put a literal '&' or '<' in a title."""
    for tag in _END_TAG_RE.findall(value):
        if tag.lower() in _HTML_TAGS:
            return f"</{tag}>"
    if "&#x" in raw:
        return None
    for ent in _ENTITY_RE.findall(value):
        if ent in name2codepoint or ent == "apos" or not ent.isalpha():
            return f"&{ent}"
    return None


# ---------------------------------------------------------------------------
# Reporting helpers
# ---------------------------------------------------------------------------


def _short(value, limit=60) -> str:
    if value is None:
        return "None"
    value = " ".join(str(value).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)


class _Report:
    def __init__(self):
        self.errors: list[str] = []
        self.lines: list[str] = []  # the decoded XML document, for raw look-ups

    def raw(self, el) -> str:
        """Raw XML source lines of an element (approximate)."""
        if not self.lines or not el.sourceline:
            return ""
        start = el.sourceline - 1
        nxt = el.getnext()
        if nxt is not None and nxt.sourceline:
            end = max(nxt.sourceline, start + 1)
        else:
            end = start + _text(el).count("\n") + 1
        return "\n".join(self.lines[start:end])

    def add(self, where: str, rule: str, message: str, line=None):
        text = f"{where}: {rule}: {message}"
        if line:
            text += f" (line {line})"
        if text not in self.errors:
            self.errors.append(text)

    def addp(self, where: str, problem, line=None):
        if problem:
            self.add(where, problem[0], problem[1], line)


# ---------------------------------------------------------------------------
# XML level checks
# ---------------------------------------------------------------------------

_XML_DECL_RE = re.compile(
    rb"^<\?xml\s+version\s*=\s*([\"'])([^\"']*)\1"
    rb"(?:\s+encoding\s*=\s*([\"'])([^\"']*)\3)?"
    rb"(?:\s+standalone\s*=\s*([\"'])([^\"']*)\5)?\s*\?>"
)
_XML_FORBIDDEN_RE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BAD_CHARS_RE = re.compile("[\u0080-\u009f\ufffd]|[\u00c2\u00c3][\u0080-\u00bf]")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _parse_xml(data, report: _Report, where: str):
    if isinstance(data, str):
        data = data.encode("utf-8")
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        report.add(where, "EncodingNotUTF8", "document is UTF-16 encoded; feeds must be UTF-8")
        return None
    decl = _XML_DECL_RE.match(body)
    if not decl:
        report.add(
            where,
            "MissingEncoding",
            'No XML declaration with encoding: start the document with <?xml version="1.0" encoding="UTF-8"?>',
            1,
        )
    else:
        if decl.group(2) != b"1.0":
            report.add(
                where,
                "BadXmlVersion",
                "Incorrect XML Version: {!r}".format(decl.group(2).decode("ascii", "replace")),
                1,
            )
        if decl.group(4) is None:
            report.add(where, "MissingEncoding", "No character encoding was specified in the XML declaration", 1)
        elif decl.group(4).decode("ascii", "replace").upper() != "UTF-8":
            report.add(
                where,
                "EncodingNotUTF8",
                "XML declaration says encoding={!r}; it must be UTF-8".format(decl.group(4).decode("ascii", "replace")),
                1,
            )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        report.add(where, "UnicodeError", f"document is not valid UTF-8 ({exc.reason})", line)
        return None
    report.lines = text.split("\n")
    bad = False
    for m in _XML_FORBIDDEN_RE.finditer(text):
        report.add(
            where,
            "InvalidXMLCharacter",
            f"character U+{ord(m.group()):04X} is not allowed in XML 1.0",
            _line_of(text, m.start()),
        )
        bad = True
    if bad:
        return None
    for m in _BAD_CHARS_RE.finditer(text):
        report.add(
            where,
            "BadCharacters",
            f"contains bad characters {m.group()!r} (C1 control, U+FFFD or double-encoded UTF-8)",
            _line_of(text, m.start()),
        )
    if re.search(r"<!ENTITY[^>]*\s(SYSTEM|PUBLIC)\s", text):
        report.add(where, "ContainsSystemEntity", "Feeds must not contain SYSTEM entities")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        report.add(where, "SAXError", f"XML parsing error: {exc.msg}", exc.lineno)
        return None
    for ent in root.iter(etree.Entity):
        report.add(where, "UndefinedNamedEntity", f"Undefined (unexpanded) named entity {ent.text}", ent.sourceline)
    # namespace prefix checks for every element
    reported_ns = set()
    for el in root.iter(etree.Element):
        parent = el.getparent()
        inherited = parent.nsmap if parent is not None else {}
        for prefix, uri in (el.nsmap or {}).items():
            if inherited.get(prefix) == uri or (prefix, uri) in reported_ns:
                continue  # not declared on this element / already reported
            reported_ns.add((prefix, uri))
            expected = RESERVED_PREFIXES.get(prefix)
            if expected and uri != expected:
                report.add(
                    where,
                    "ReservedPrefix",
                    f'The prefix "{prefix}" generally is associated with the namespace "{expected}", not "{uri}"',
                    el.sourceline,
                )
            elif uri and uri not in _KNOWN_NS and _near(uri) in _NEAR_KNOWN:
                report.add(
                    where,
                    "InvalidNamespace",
                    f"namespace {uri!r} looks like a misspelling of {_NEAR_KNOWN[_near(uri)]!r}",
                    el.sourceline,
                )
        lang = el.get(XML_LANG)
        if lang:  # xml:lang="" is allowed (means "unknown")
            report.addp(where, _lang_problem(lang, f"xml:lang on <{_qname(el)}>"), el.sourceline)
        base = el.get(XML_BASE)
        if base is not None:
            report.addp(where, _uri_ref_problem(base, f"xml:base on <{_qname(el)}>"), el.sourceline)
    return root


def _qname(el) -> str:
    q = etree.QName(el)
    if q.namespace is None:
        return q.localname
    for prefix, ns in RESERVED_PREFIXES.items():
        if ns == q.namespace:
            return f"{prefix}:{q.localname}"
    return f"{{{q.namespace}}}{q.localname}"


def _text(el) -> str:
    return "".join(el.itertext()) if el is not None else ""


def _elements(el):
    return [c for c in el if isinstance(c.tag, str)]


def _direct_text(el) -> str:
    parts = [el.text or ""]
    for c in el:
        parts.append(c.tail or "")
    return "".join(parts)


def _unexpected_attrs(report, where, el, allowed, name=None):
    for attr in el.attrib:
        if attr.startswith("{"):
            continue  # xml:* and extension attributes are fine
        if attr not in allowed:
            report.add(
                where,
                "UnexpectedAttribute",
                f"Unexpected {attr} attribute on {name or _qname(el)} element",
                el.sourceline,
            )


# ---------------------------------------------------------------------------
# RSS 2.0
# ---------------------------------------------------------------------------

_RSS_CHANNEL_ONCE = [
    "title",
    "link",
    "description",
    "language",
    "copyright",
    "managingEditor",
    "webMaster",
    "pubDate",
    "lastBuildDate",
    "generator",
    "docs",
    "cloud",
    "ttl",
    "image",
    "rating",
    "textInput",
    "skipHours",
    "skipDays",
]
_RSS_CHANNEL_KNOWN = set(_RSS_CHANNEL_ONCE) | {"category", "item"}
_RSS_ITEM_ONCE = ["title", "link", "description", "author", "comments", "guid", "pubDate", "source"]
_RSS_ITEM_KNOWN = set(_RSS_ITEM_ONCE) | {"category", "enclosure"}
_ATOM_IN_RSS_CHANNEL = {
    "author",
    "category",
    "contributor",
    "generator",
    "id",
    "icon",
    "link",
    "logo",
    "title",
    "subtitle",
    "rights",
    "updated",
}
_ATOM_IN_RSS_ITEM = {
    "id",
    "link",
    "title",
    "summary",
    "author",
    "contributor",
    "content",
    "published",
    "updated",
    "category",
}
_ATOM_LINK_RELS = {
    "alternate",
    "current",
    "describedby",
    "edit",
    "edit-media",
    "enclosure",
    "first",
    "hub",
    "last",
    "license",
    "next",
    "next-archive",
    "payment",
    "prev-archive",
    "previous",
    "related",
    "replies",
    "search",
    "self",
    "service",
    "up",
    "via",
}


def _rss_item_label(index, item):
    title = item.find("title")
    guid = item.find("guid")
    label = f"item[{index}]"
    bits = []
    if title is not None:
        bits.append(f"title={_short(_text(title))}")
    if guid is not None:
        bits.append(f"guid={_short(_text(guid))}")
    elif item.find("link") is not None:
        bits.append("link={}".format(_short(_text(item.find("link")))))
    return label + (" ({})".format(", ".join(bits)) if bits else "")


def _check_once(report, where, parent, names, ns=None):
    for name in names:
        tag = name if ns is None else f"{{{ns}}}{name}"
        found = parent.findall(tag)
        if len(found) > 1:
            pname = _qname(parent)
            report.add(
                where,
                "DuplicateElement",
                f"{pname} contains more than one {_qname(found[0])}",
                found[1].sourceline,
            )


_IANA_REL_PREFIX = "http://www.iana.org/assignments/relation/"


def _link_rel(link) -> str:
    rel = link.get("rel", "alternate")
    if rel.startswith(_IANA_REL_PREFIX):
        rel = rel[len(_IANA_REL_PREFIX) :]
    return rel


def _xml_base_of(el):
    """Absolute base URI in scope for ``el`` from xml:base attributes, or None."""
    bases = []
    while el is not None:
        if el.get(XML_BASE) is not None:
            bases.append(el.get(XML_BASE))
        el = el.getparent()
    base = ""
    for b in reversed(bases):
        base = urljoin(base, b) if base else b
    return base if _SCHEME_RE.match(base or "") else None


def _check_atom_link(report, where, link, *, in_feed_kind=None, self_url=None):
    """atom:link, both inside Atom feeds and inside RSS channels."""
    _unexpected_attrs(report, where, link, {"href", "rel", "type", "hreflang", "title", "length"}, "link")
    if _direct_text(link).strip() or _elements(link):
        report.add(
            where,
            "AtomLinkNotEmpty",
            "link should not have text (all data is in attributes)",
            link.sourceline,
        )
    rel = _link_rel(link)
    title = link.get("title")
    if title is not None:
        if not title.strip():
            report.add(where, "AttrNotBlank", "The title attribute of link should not be blank", link.sourceline)
        elif _contains_html(title):
            report.add(
                where,
                "ContainsHTML",
                f"link title should not contain HTML (found {_contains_html(title)})",
                link.sourceline,
            )
    if not rel.strip():
        report.add(where, "AttrNotBlank", "The rel attribute of link should not be blank", link.sourceline)
    elif rel not in _ATOM_LINK_RELS and _full_uri_problem(rel, "rel", iri=True):
        report.add(where, "UnregisteredAtomLinkRel", f"Unregistered link relationship {rel!r}", link.sourceline)
    ltype = link.get("type")
    if ltype is not None and not _MIME_RE.match(ltype):
        report.add(
            where,
            "InvalidMIMEType",
            f"link type attribute is not a valid MIME type: {ltype!r}",
            link.sourceline,
        )
    hreflang = link.get("hreflang")
    if hreflang is not None:
        report.addp(where, _lang_problem(hreflang, "hreflang"), link.sourceline)
    length = link.get("length")
    if length is not None and not re.match(r"^\d+$", length):
        report.add(
            where,
            "InvalidNonNegativeInteger",
            f"length must be a non-negative integer: {length!r}",
            link.sourceline,
        )
    href = link.get("href")
    if href is None:
        report.add(where, "MissingHref", "link must have an href attribute", link.sourceline)
        return rel
    base = _xml_base_of(link)
    if _SCHEME_RE.match(href):
        report.addp(where, _full_uri_problem(href, "link href", iri=True), link.sourceline)
    elif base is None:
        if rel == "self" and in_feed_kind:
            report.add(where, "RelativeSelf", f"Relative href value on self link: {href!r}", link.sourceline)
        else:
            report.add(
                where,
                "RelativeLink",
                f"link href {href!r} is relative and no xml:base is in scope",
                link.sourceline,
            )
    else:
        report.addp(where, _uri_ref_problem(href, "link href"), link.sourceline)
        href = urljoin(base, href)
    if rel == "self":
        if in_feed_kind:
            allowed = ("application/rss+xml",) if in_feed_kind == "rss" else ("application/atom+xml",)
        else:
            allowed = ("application/atom+xml", "application/rss+xml", "application/rdf+xml")
        if ltype is not None and ltype.split(";")[0].strip() not in allowed:
            report.add(
                where,
                "SelfNotAtom",
                f'self link type should be "{allowed[0]}", not {ltype!r}',
                link.sourceline,
            )
    if rel == "self" and in_feed_kind and self_url is not None and _norm_url(href) != _norm_url(self_url):
        report.add(
            where,
            "SelfDoesntMatchLocation",
            f"Self reference {href!r} doesn't match document location {self_url!r}",
            link.sourceline,
        )
    return rel


def _check_plain_text(report, where, el, name, *, nonblank=False):
    value = _text(el).strip()
    if nonblank and not value:
        report.add(where, "NotBlank", f"{name} should not be blank", el.sourceline)
    html = _contains_html(value, report.raw(el))
    if html:
        report.add(where, "ContainsHTML", f"{name} should not contain HTML (found {html})", el.sourceline)


def _check_rss_leaf(report, where, el, name):
    """Core RSS elements have text content only."""
    if _elements(el):
        report.add(
            where,
            "UndefinedElement",
            f"Undefined {name} element: {_qname(_elements(el)[0])}",
            el.sourceline,
        )


def _check_html_field(report, where, name, html, line, *, allow_relative=False):
    for rule, detail in _html_problems(html, allow_relative=allow_relative):
        report.add(where, rule, f"{name} {detail}", line)


def _root(data: bytes, report: _Report, expected: str, shown):  # type: ignore[no-untyped-def]
    """The document's root element and its QName, or (None, None) when it does not parse or is not
    `expected` (e.g. "rss", "atom:feed"); the problem is on `report`."""
    root = _parse_xml(data, report, "document")
    if root is None:
        return None, None
    q = etree.QName(root)
    if q.localname != expected.rpartition(":")[2]:
        wanted = expected if ":" in expected else f"<{expected}>"
        report.add("document", "UndefinedElement", f"root element must be {wanted}, not {shown(root, q)}",
                   root.sourceline)
        return None, None
    return root, q


def check_rss(data: bytes, *, self_url: str | None = None) -> list[str]:
    """Check an RSS 2.0 document; returns a list of error strings."""
    report = _Report()
    root, q = _root(data, report, "rss", lambda r, name: f"<{name.localname}>")
    if root is None:
        return report.errors
    if q.namespace is not None:
        report.add("rss", "InvalidNamespace", f"rss is in an invalid namespace: {q.namespace}", root.sourceline)
    _unexpected_attrs(report, "rss", root, {"version"})
    version = root.get("version")
    if version is None:
        report.add("rss", "MissingAttribute", "Missing rss attribute: version", root.sourceline)
    elif version != "2.0":
        report.add("rss", "InvalidRSSVersion", f'Invalid RSS Version {version!r} (must be "2.0")', root.sourceline)
    if _direct_text(root).strip():
        report.add("rss", "UnexpectedText", "Unexpected Text in rss", root.sourceline)
    for child in _elements(root):
        if child.tag != "channel" and etree.QName(child).namespace is None:
            report.add("rss", "UndefinedElement", f"Undefined rss element: {child.tag}", child.sourceline)
    channels = root.findall("channel")
    if not channels:
        report.add("rss", "MissingElement", "Missing rss element: channel", root.sourceline)
        return report.errors
    if len(channels) > 1:
        report.add("rss", "DuplicateElement", "rss contains more than one channel", channels[1].sourceline)
    channel = channels[0]
    _check_rss_channel(report, channel, self_url)
    return report.errors


def _check_rss_channel(report, channel, self_url):
    w = "channel"
    _unexpected_attrs(report, w, channel, set())
    if _direct_text(channel).strip():
        report.add(w, "UnexpectedText", "Unexpected Text in channel", channel.sourceline)
    _check_once(report, w, channel, _RSS_CHANNEL_ONCE)
    _check_once(report, w, channel, ["date", "language", "rights"], ns=DC_NS)
    for name, rule in (
        ("title", "MissingTitle"),
        ("link", "MissingLink"),
        ("description", "MissingDescription"),
    ):
        if channel.find(name) is None:
            report.add(w, rule, f"Missing channel element: {name}", channel.sourceline)

    seen_item = None
    self_links = []
    for child in _elements(channel):
        ns = etree.QName(child).namespace
        local = etree.QName(child).localname
        line = child.sourceline
        if ns is None:
            if local not in _RSS_CHANNEL_KNOWN:
                report.add(w, "UndefinedElement", f"Undefined channel element: {local}", line)
                continue
            if local == "item":
                if seen_item is None:
                    seen_item = child
                continue
            if seen_item is not None:
                report.add(
                    w,
                    "MisplacedItem",
                    f"Misplaced Item: channel element {local} must appear before the first item",
                    line,
                )
            if local not in ("image", "textInput", "skipHours", "skipDays", "cloud"):
                _check_rss_leaf(report, w, child, local)
            allowed_attrs = {
                "category": {"domain"},
                "cloud": {"domain", "port", "path", "registerProcedure", "protocol"},
            }
            _unexpected_attrs(report, w, child, allowed_attrs.get(local, set()), local)
            value = _text(child).strip()
            if local == "title":
                _check_plain_text(report, w, child, "title", nonblank=True)
            elif local == "description":
                _check_plain_text(report, w, child, "description")
            elif local == "link":
                report.addp(w, _full_uri_problem(value, "link", http=True), line)
            elif local == "docs":
                report.addp(w, _full_uri_problem(value, "docs"), line)
            elif local == "language":
                report.addp(w, _lang_problem(value, "language"), line)
            elif local in ("pubDate", "lastBuildDate"):
                report.addp(w, _rfc822_problem(value, local), line)
            elif local in ("managingEditor", "webMaster"):
                report.addp(w, _rss_email_problem(value, local), line)
            elif local == "category":
                _check_plain_text(report, w, child, "category", nonblank=True)
            elif local == "ttl":
                if not re.match(r"^\d+$", value) or int(value) <= 0:
                    report.add(w, "InvalidPositiveInteger", f"ttl must be a positive integer: {value!r}", line)
            elif local == "image":
                _check_rss_image(report, child)
            elif local == "cloud":
                for attr in ("domain", "port", "path", "registerProcedure", "protocol"):
                    if child.get(attr) is None:
                        report.add(w, "MissingAttribute", f"Missing cloud attribute: {attr}", line)
                port = child.get("port")
                if port is not None and (not re.match(r"^\d+$", port) or int(port) <= 0):
                    report.add(
                        w,
                        "InvalidIntegerAttribute",
                        f"port attribute of cloud must be a positive integer: {port!r}",
                        line,
                    )
            elif local == "textInput":
                _check_rss_textinput(report, child)
            elif local in ("skipHours", "skipDays"):
                _check_rss_skip(report, child, local)
        elif ns == ATOM_NS:
            if local not in _ATOM_IN_RSS_CHANNEL:
                report.add(w, "UndefinedElement", f"Undefined channel element: atom:{local}", line)
            elif local == "link":
                rel = _check_atom_link(report, w, child, in_feed_kind="rss", self_url=self_url)
                if rel == "self":
                    self_links.append(child)
        elif ns == CONTENT_NS:
            report.add(w, "UndefinedElement", f"Undefined channel element: content:{local}", line)
        elif ns == DC_NS:
            _check_dc(report, w, child)
    if not self_links:
        report.add(w, "MissingAtomSelfLink", 'Missing atom:link with rel="self"', channel.sourceline)

    guids: dict[str, int] = {}
    for index, item in enumerate(channel.findall("item")):
        _check_rss_item(report, index, item, guids)


def _check_dc(report, where, el):
    local = etree.QName(el).localname
    value = _text(el).strip()
    if local == "date" and not _W3CDTF_RE.match(value):
        report.add(where, "InvalidW3CDTFDate", f"dc:date must be an W3CDTF date: {value!r}", el.sourceline)
    elif local == "language":
        report.addp(where, _lang_problem(value, "dc:language"), el.sourceline)
    elif local == "creator" and not value:
        report.add(where, "NotBlank", "dc:creator should not be blank", el.sourceline)


_MISSING_RULE = {"title": "MissingTitle", "link": "MissingLink", "description": "MissingDescription"}


def _check_rss_container(report, w, el, known, required):
    """Shared checks for image and textInput."""
    name = el.tag
    _check_once(report, w, el, sorted(known))
    if _direct_text(el).strip():
        report.add(w, "UnexpectedText", f"Unexpected Text in {name}", el.sourceline)
    for sub in required:
        if el.find(sub) is None:
            report.add(
                w,
                _MISSING_RULE.get(sub, "MissingElement"),
                f"Missing {name} element: {sub}",
                el.sourceline,
            )
    children = []
    for child in _elements(el):
        if etree.QName(child).namespace is not None:
            continue
        if child.tag not in known:
            report.add(w, "UndefinedElement", f"Undefined {name} element: {child.tag}", child.sourceline)
            continue
        _check_rss_leaf(report, w, child, child.tag)
        children.append(child)
    return children


def _check_rss_image(report, image):
    w = "channel/image"
    known = {"url", "title", "link", "width", "height", "description"}
    for child in _check_rss_container(report, w, image, known, ("url", "title", "link")):
        value = _text(child).strip()
        if child.tag == "url":
            report.addp(w, _full_uri_problem(value, "image url", http=True), child.sourceline)
        elif child.tag == "link":
            report.addp(w, _full_uri_problem(value, "image link"), child.sourceline)
        elif child.tag in ("title", "description"):
            _check_plain_text(report, w, child, "image " + child.tag, nonblank=child.tag == "title")
        elif child.tag in ("width", "height"):
            limit = 144 if child.tag == "width" else 400
            if not re.match(r"^\d+$", value) or not 0 < int(value) <= limit:
                report.add(
                    w,
                    "Invalid" + child.tag.capitalize(),
                    f"image {child.tag} must be an integer 1-{limit}: {value!r}",
                    child.sourceline,
                )


def _check_rss_textinput(report, textinput):
    w = "channel/textInput"
    known = {"title", "description", "name", "link"}
    for child in _check_rss_container(report, w, textinput, known, ("title", "description", "name", "link")):
        if child.tag == "link":
            report.addp(w, _full_uri_problem(_text(child).strip(), "textInput link"), child.sourceline)
        elif child.tag in ("title", "description"):
            _check_plain_text(report, w, child, "textInput " + child.tag, nonblank=True)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _check_rss_skip(report, el, local):
    w = "channel/" + local
    sub = "hour" if local == "skipHours" else "day"
    seen = set()
    values = [c for c in _elements(el) if etree.QName(c).namespace is None]
    if not values:
        report.add(w, "MissingElement", f"Missing {local} element: {sub}", el.sourceline)
    for child in values:
        value = _text(child).strip()
        if child.tag != sub:
            report.add(w, "UndefinedElement", f"Undefined {local} element: {child.tag}", child.sourceline)
            continue
        if sub == "hour" and not (re.match(r"^\d{1,2}$", value) and int(value) <= 23):
            report.add(w, "InvalidHour", f"hour must be an integer between 0 and 23: {value!r}", child.sourceline)
        elif sub == "day" and value not in _WEEKDAYS:
            report.add(
                w, "InvalidDay", "day must be one of {}: {!r}".format(", ".join(_WEEKDAYS), value), child.sourceline
            )
        elif value in seen:
            report.add(w, "DuplicateValue", f"{sub} values must not be duplicated: {value!r}", child.sourceline)
        seen.add(value)


def _check_rss_item(report, index, item, guids):
    w = _rss_item_label(index, item)
    _unexpected_attrs(report, w, item, set())
    if _direct_text(item).strip():
        report.add(w, "UnexpectedText", "Unexpected Text in item", item.sourceline)
    _check_once(report, w, item, _RSS_ITEM_ONCE)
    _check_once(report, w, item, ["encoded"], ns=CONTENT_NS)
    if len(item.findall("enclosure")) > 1:
        report.add(
            w,
            "DuplicateEnclosure",
            "item contains more than one enclosure",
            item.findall("enclosure")[1].sourceline,
        )
    if item.find("title") is None and item.find("description") is None:
        report.add(
            w,
            "ItemMustContainTitleOrDescription",
            "item must contain either title or description",
            item.sourceline,
        )
    if item.find("guid") is None:
        report.add(w, "MissingGuid", "item should contain a guid element", item.sourceline)

    for child in _elements(item):
        ns = etree.QName(child).namespace
        local = etree.QName(child).localname
        line = child.sourceline
        value = _text(child).strip()
        if ns is None:
            if local not in _RSS_ITEM_KNOWN:
                report.add(w, "UndefinedElement", f"Undefined item element: {local}", line)
                continue
            _check_rss_leaf(report, w, child, local)
            allowed_attrs = {
                "category": {"domain"},
                "guid": {"isPermaLink"},
                "source": {"url"},
                "enclosure": {"url", "length", "type"},
            }
            _unexpected_attrs(report, w, child, allowed_attrs.get(local, set()), local)
            if local == "title":
                _check_plain_text(report, w, child, "title", nonblank=True)
            elif local == "link":
                report.addp(w, _full_uri_problem(value, "link"), line)
            elif local == "comments":
                report.addp(w, _full_uri_problem(value, "comments"), line)
            elif local == "description":
                _check_html_field(report, w, "description", _text(child), line)
            elif local == "author":
                report.addp(w, _rss_email_problem(value, "author"), line)
            elif local == "category":
                _check_plain_text(report, w, child, "category", nonblank=True)
            elif local == "pubDate":
                report.addp(w, _rfc822_problem(value, "pubDate"), line)
            elif local == "guid":
                _check_rss_guid(report, w, index, child, guids)
            elif local == "source":
                url = child.get("url")
                if url is None:
                    report.add(w, "MissingAttribute", "Missing source attribute: url", line)
                else:
                    report.addp(w, _full_uri_problem(url, "source url"), line)
            elif local == "enclosure":
                _check_rss_enclosure(report, w, child)
        elif ns == CONTENT_NS:
            if local == "encoded":
                _check_html_field(report, w, "content:encoded", _text(child), line)
            elif local != "items":
                report.add(w, "UndefinedElement", f"Undefined item element: content:{local}", line)
        elif ns == ATOM_NS:
            if local not in _ATOM_IN_RSS_ITEM:
                report.add(w, "UndefinedElement", f"Undefined item element: atom:{local}", line)
            elif local == "link":
                _check_atom_link(report, w, child)
        elif ns == DC_NS:
            _check_dc(report, w, child)


def _check_rss_guid(report, w, index, guid, guids):
    value = _text(guid).strip()
    line = guid.sourceline
    perma = guid.get("isPermaLink")
    if perma is not None and perma not in ("true", "false"):
        report.add(
            w,
            "InvalidBooleanAttribute",
            f"isPermaLink attribute of guid must be 'true' or 'false', not {perma!r}",
            line,
        )
    if not value:
        report.add(w, "NotBlank", "guid should not be blank", line)
        return
    if value in guids:
        report.add(
            w,
            "DuplicateValue",
            f"guid values must not be duplicated within a feed ({value!r} also used by item[{guids[value]}])",
            line,
        )
    else:
        guids[value] = index
    if perma != "false":
        problem = _full_uri_problem(value, "guid")
        if problem or value.lower().startswith(("tag:", "urn:")):
            report.add(
                w,
                "InvalidHttpGUID",
                f"guid must be a full URL, unless isPermaLink attribute is false: {value!r}",
                line,
            )
    elif len(value) < 9 and value.isdigit():
        report.add(w, "NotSufficientlyUnique", f"The specified guid is not sufficiently unique: {value!r}", line)


def _check_rss_enclosure(report, w, enc):
    line = enc.sourceline
    url = enc.get("url")
    if url is None:
        report.add(w, "MissingAttribute", "Missing enclosure attribute: url", line)
    else:
        report.addp(w, _full_uri_problem(url, "enclosure url", http=True), line)
    length = enc.get("length")
    if length is None:
        report.add(w, "MissingAttribute", "Missing enclosure attribute: length", line)
    elif not re.match(r"^\d+$", length.strip()):
        report.add(
            w,
            "InvalidIntegerAttribute",
            f"length attribute of enclosure must be a non-negative integer: {length!r}",
            line,
        )
    etype = enc.get("type")
    if etype is None:
        report.add(w, "MissingAttribute", "Missing enclosure attribute: type", line)
    elif not _MIME_RE.match(etype):
        report.add(
            w,
            "InvalidMIMEAttribute",
            f"type attribute of enclosure must be a valid MIME type: {etype!r}",
            line,
        )


# ---------------------------------------------------------------------------
# Atom 1.0
# ---------------------------------------------------------------------------


def _a(name):
    return f"{{{ATOM_NS}}}{name}"


_ATOM_FEED_KNOWN = {
    "author",
    "category",
    "contributor",
    "generator",
    "icon",
    "id",
    "link",
    "logo",
    "rights",
    "subtitle",
    "title",
    "updated",
    "entry",
}
_ATOM_FEED_ONCE = ["generator", "icon", "id", "logo", "rights", "subtitle", "title", "updated"]
_ATOM_ENTRY_KNOWN = {
    "author",
    "category",
    "content",
    "contributor",
    "id",
    "link",
    "published",
    "rights",
    "source",
    "summary",
    "title",
    "updated",
}
_ATOM_ENTRY_ONCE = ["content", "id", "published", "rights", "source", "summary", "title", "updated"]


def _xml_base_in_scope(el) -> bool:
    while el is not None:
        if el.get(XML_BASE) is not None:
            return True
        el = el.getparent()
    return False


def _atom_entry_label(index, entry):
    bits = []
    title = entry.find(_a("title"))
    if title is not None:
        bits.append(f"title={_short(_text(title))}")
    eid = entry.find(_a("id"))
    if eid is not None:
        bits.append(f"id={_short(_text(eid))}")
    return f"entry[{index}]" + (f" ({', '.join(bits)})" if bits else "")


def _check_atom_date(report, w, el, name):
    value = _text(el)
    if value != value.strip():
        report.add(w, "UnexpectedWhitespace", f"Whitespace not permitted in {name}: {value!r}", el.sourceline)
        value = value.strip()
    report.addp(w, _rfc3339_problem(value, name), el.sourceline)


def _check_atom_id(report, w, el):
    value = _text(el)
    line = el.sourceline
    if _elements(el):
        report.add(w, "UndefinedElement", f"Undefined id element: {_qname(_elements(el)[0])}", line)
    if value != value.strip():
        report.add(w, "UnexpectedWhitespace", f"Whitespace not permitted in id: {value!r}", line)
        value = value.strip()
    if not value:
        report.add(w, "NotBlank", "id should not be blank", line)
        return value
    problem = _full_uri_problem(value, "id", iri=True)
    report.addp(w, problem, line)
    if not problem:
        report.addp(w, _canonical_problem(value, "id"), line)
    return value


def _check_text_construct(report, w, el, name, *, content=False):
    """Atom text constructs (title, subtitle, rights, summary) and atom:content."""
    line = el.sourceline
    _unexpected_attrs(report, w, el, {"type", "src"} if content else {"type"}, name)
    ctype = el.get("type", "text")
    src = el.get("src")
    children = _elements(el)
    text = _text(el) if not children else (el.text or "")
    xml_base = _xml_base_in_scope(el)
    if not ctype:
        report.add(w, "AttrNotBlank", f"The type attribute of {name} should not be blank", line)
        return
    if src is not None:
        if not content:
            report.add(w, "UnexpectedAttribute", f"Unexpected src attribute on {name} element", line)
        else:
            report.addp(w, _uri_ref_problem(src, "content src"), line)
            if (el.text or "").strip() or children:
                report.add(w, "InvalidContent", "content with a src attribute must be empty", line)
        if ctype in ("text", "html", "xhtml") and el.get("type") is not None:
            report.add(w, "InvalidMIMEType", f"content with src must have a MIME media type, not {ctype!r}", line)
        return
    if ctype not in ("text", "html", "xhtml"):
        if not content and "/" in ctype:
            report.add(
                w,
                "InvalidTextType",
                f'type attribute of {name} must be "text", "html", or "xhtml", not {ctype!r}',
                line,
            )
            return
        if not content or not _MIME_RE.match(ctype) or ctype.lower().startswith("multipart/"):
            report.add(
                w,
                "InvalidMIMEType",
                "{} type attribute is not a valid {}: {!r}".format(
                    name, "MIME type" if content else '"text", "html" or "xhtml" value', ctype
                ),
                line,
            )
            return
        _check_mime_content(report, w, el, name, ctype, children, allow_relative=xml_base)
        return
    if ctype == "xhtml":
        divs = [c for c in children if c.tag == f"{{{XHTML_NS}}}div"]
        stray_text = (el.text or "").strip() or any((c.tail or "").strip() for c in children)
        if len(children) != 1 or len(divs) != 1 or stray_text:
            report.add(
                w,
                "MissingXhtmlDiv",
                f"{name} of type xhtml must contain exactly one xhtml:div element",
                line,
            )
        for child in children:
            if etree.QName(child).localname == "div" and child.tag != f"{{{XHTML_NS}}}div":
                report.add(
                    w,
                    "NotHtml",
                    f"{name}: div is in an unexpected namespace {etree.QName(child).namespace!r} (must be {XHTML_NS})",
                    child.sourceline,
                )
        for div in divs:
            _check_xhtml_tree(report, w, div, name, allow_relative=xml_base)
        if not _text(el).strip() and not any(_elements(d) for d in divs):
            report.add(w, "NotBlank", f"{name} should not be blank", line)
        return
    if children:
        report.add(
            w,
            "UndefinedElement",
            f'Undefined {name} element: {_qname(children[0])} (escape the markup and use type="html")',
            line,
        )
    if ctype == "html":
        _check_html_field(report, w, name, text, line, allow_relative=xml_base)
    else:
        found = _contains_html(text, report.raw(el))
        if found:
            report.add(
                w,
                "ContainsUndeclaredHTML",
                f"{name} should not contain HTML unless declared in the type attribute (found {found})",
                line,
            )
    if not text.strip() and not children:
        report.add(w, "NotBlank", f"{name} should not be blank", line)


def _check_mime_content(report, w, el, name, ctype, children, *, allow_relative):
    """atom:content with a MIME media type as its type."""
    line = el.sourceline
    ctype = ctype.split(";")[0].strip().lower()
    xmlish = ctype.endswith("+xml") or ctype.endswith("/xml")
    if xmlish:
        _check_xhtml_tree(report, w, el, name, allow_relative=allow_relative, xhtml_only=True)
        return
    if children:
        report.add(w, "UndefinedElement", f"Undefined {name} element: {_qname(children[0])}", line)
        return
    value = _text(el)
    if not ctype.startswith("text/"):
        try:
            decoded = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            report.add(w, "NotBase64", f"{name} claims to be base64-encoded, but isn't", line)
            return
        if not ctype.endswith("/html"):
            return
        try:
            value = decoded.decode("utf-8")
        except UnicodeDecodeError:
            report.add(w, "NotHtml", f"{name}: base64-encoded HTML is not UTF-8", line)
            return
    if ctype.endswith("/html"):
        _check_html_field(report, w, name, value, line, allow_relative=allow_relative)
    else:
        found = _contains_html(value, report.raw(el))
        if found:
            report.add(
                w,
                "ContainsUndeclaredHTML",
                f"{name} should not contain HTML unless declared in the type attribute (found {found})",
                line,
            )


def _check_xhtml_tree(report, w, top, name, *, allow_relative, xhtml_only=False):
    """Security / relative-reference checks for inline XHTML (xhtml:div
    content, or XHTML inside XML media-typed content)."""
    for el in top.iter(etree.Element):
        if el is top and xhtml_only:
            continue
        q = etree.QName(el)
        line = el.sourceline
        if q.namespace is None:
            if not xhtml_only:
                report.add(
                    w,
                    "MissingNamespace",
                    f"Missing namespace for {q.localname} inside {name} xhtml:div",
                    line,
                )
            continue
        if q.namespace == XHTML_NS:
            if q.localname not in _HTML_TAGS:
                report.add(w, "NotHtml", f"{name} Non-XHTML element: {q.localname}", line)
            elif q.localname in _UNSAFE_TAGS:
                report.add(w, "SecurityRisk", f"{name} should not contain {q.localname} tag", line)
        elif q.localname == "script":
            report.add(w, "SecurityRisk", f"{name} should not contain script tag", line)
        elif xhtml_only:
            continue
        elif q.namespace in _FEED_VOCABULARIES:
            report.add(w, "UndefinedElement", f"Undefined element inside {name}: {_qname(el)}", line)
            continue
        attrs = []
        for k, v in el.attrib.items():
            aq = etree.QName(k)
            if aq.namespace is None:
                attrs.append((aq.localname, v))
            elif aq.namespace == "http://www.w3.org/1999/xlink" and aq.localname == "href":
                attrs.append(("xlink:href", v))
        scanner = _HTMLScanner()
        scanner._attrs(q.localname, attrs)
        for rule, detail in scanner.problems:
            if rule == "ContainsRelRef" and allow_relative:
                continue
            report.add(w, rule, f"{name} {detail}", line)


def _check_atom_person(report, w, person, role):
    line = person.sourceline
    _unexpected_attrs(report, w, person, set(), role)
    _check_once(report, w, person, ["name", "email", "uri"], ns=ATOM_NS)
    name = person.find(_a("name"))
    if name is None:
        report.add(w, "MissingElement", f"Missing {role} element: name", line)
    elif not _text(name).strip():
        report.add(w, "NotBlank", f"{role} name should not be blank", name.sourceline)
    for child in _elements(person):
        q = etree.QName(child)
        if q.namespace != ATOM_NS:
            continue
        value = _text(child)
        if q.localname == "email":
            if not _addr_spec_ok(value.strip()):
                report.add(
                    w,
                    "InvalidAddrSpec",
                    f"{role} email must be an email address: {value!r}",
                    child.sourceline,
                )
        elif q.localname == "uri":
            report.addp(w, _uri_ref_problem(value, f"{role} uri"), child.sourceline)
            if not _SCHEME_RE.match(value.strip()) and not _xml_base_in_scope(child):
                report.add(
                    w,
                    "RelativeLink",
                    f"{role} uri {value!r} is relative and no xml:base is in scope",
                    child.sourceline,
                )
        elif q.localname == "name":
            found = _contains_html(value)
            if found:
                report.add(
                    w,
                    "ContainsHTML",
                    f"{role} name should not contain HTML (found {found})",
                    child.sourceline,
                )
        else:
            report.add(w, "UndefinedElement", f"Undefined {role} element: {q.localname}", child.sourceline)


def _check_atom_category(report, w, cat):
    line = cat.sourceline
    _unexpected_attrs(report, w, cat, {"term", "scheme", "label"}, "category")
    term = cat.get("term")
    if term is None:
        report.add(w, "MissingAttribute", "Missing category attribute: term", line)
    elif not term.strip():
        report.add(w, "NotBlank", "The term attribute of category should not be blank", line)
    scheme = cat.get("scheme")
    if scheme is not None:
        report.addp(w, _full_uri_problem(scheme, "category scheme", iri=True), line)
    label = cat.get("label")
    if label is not None and _contains_html(label):
        report.add(w, "ContainsHTML", "category label should not contain HTML", line)


def _check_alternate_dupes(report, w, links):
    seen = set()
    for link in links:
        if _link_rel(link) != "alternate":
            continue
        key = (link.get("type"), link.get("hreflang"))
        if key in seen:
            report.add(
                w,
                "DuplicateAtomLink",
                "Duplicate alternate links with the same type and hreflang ({}, {})".format(*key),
                link.sourceline,
            )
        seen.add(key)


def _check_atom_metadata(report, w, parent, *, self_url=None, source=False):
    """Children of atom:feed (or of an entry's atom:source); returns the links."""
    seen_entry = False
    links = []
    kind = "source" if source else "feed"
    for child in _elements(parent):
        cq = etree.QName(child)
        line = child.sourceline
        if cq.namespace is None:
            report.add(
                w,
                "UndefinedElement",
                f"Undefined {kind} element: {cq.localname} (not in a namespace)",
                line,
            )
            continue
        if cq.namespace != ATOM_NS:
            continue  # extension element
        local = cq.localname
        if local not in _ATOM_FEED_KNOWN or (source and local == "entry"):
            report.add(w, "UndefinedElement", f"Undefined {kind} element: {local}", line)
            continue
        if local == "entry":
            seen_entry = True
            continue
        if seen_entry:
            report.add(w, "MisplacedMetadata", f"{local} must appear before all entries", line)
        if local == "id":
            _check_atom_id(report, w, child)
        elif local == "updated":
            _check_atom_date(report, w, child, "updated")
        elif local in ("title", "subtitle", "rights"):
            _check_text_construct(report, w, child, local)
        elif local in ("author", "contributor"):
            _check_atom_person(report, w, child, local)
        elif local == "category":
            _check_atom_category(report, w, child)
        elif local == "link":
            links.append(child)
            _check_atom_link(report, w, child, in_feed_kind=None if source else "atom", self_url=self_url)
        elif local in ("icon", "logo"):
            value = _text(child)
            report.addp(w, _uri_ref_problem(value, local), line)
            if not value.strip():
                report.add(w, "NotBlank", f"{local} should not be blank", line)
        elif local == "generator":
            _unexpected_attrs(report, w, child, {"uri", "version"}, "generator")
            if child.get("uri") is not None:
                report.addp(w, _uri_ref_problem(child.get("uri"), "generator uri"), line)
            if _elements(child):
                report.add(
                    w,
                    "UndefinedElement",
                    f"Undefined generator element: {_qname(_elements(child)[0])}",
                    line,
                )
            elif not _text(child).strip():
                report.add(w, "NotBlank", "generator should not be blank", line)
            found = _contains_html(_text(child), report.raw(child))
            if found:
                report.add(w, "ContainsHTML", f"generator should not contain HTML (found {found})", line)
    _check_alternate_dupes(report, w, links)
    return links


def check_atom(data: bytes, *, self_url: str | None = None) -> list[str]:
    """Check an Atom 1.0 (RFC 4287) feed document; returns a list of error strings."""
    report = _Report()
    root, q = _root(data, report, "atom:feed", lambda r, name: _qname(r))
    if root is None:
        return report.errors
    if q.namespace is None:
        report.add("feed", "MissingNamespace", f'Missing namespace for feed (xmlns="{ATOM_NS}")', root.sourceline)
        return report.errors
    if q.namespace != ATOM_NS:
        report.add("feed", "InvalidNamespace", f"feed is in an invalid namespace: {q.namespace}", root.sourceline)
        return report.errors
    feed = root
    w = "feed"
    _unexpected_attrs(report, w, feed, set())
    if _direct_text(feed).strip():
        report.add(w, "UnexpectedText", "Unexpected Text in feed", feed.sourceline)
    _check_once(report, w, feed, _ATOM_FEED_ONCE, ns=ATOM_NS)
    for name in ("id", "title", "updated"):
        if feed.find(_a(name)) is None:
            report.add(w, "MissingElement", f"Missing feed element: {name}", feed.sourceline)

    links = _check_atom_metadata(report, w, feed, self_url=self_url)
    if not any(_link_rel(link) == "self" for link in links):
        report.add(w, "MissingSelf", 'Missing atom:link with rel="self"', feed.sourceline)

    feed_has_author = feed.find(_a("author")) is not None
    ids: dict[str, int] = {}
    for index, entry in enumerate(feed.findall(_a("entry"))):
        _check_atom_entry(report, index, entry, feed_has_author, ids)
    return report.errors


def _check_atom_entry(report, index, entry, feed_has_author, ids):
    w = _atom_entry_label(index, entry)
    line = entry.sourceline
    _unexpected_attrs(report, w, entry, set())
    if _direct_text(entry).strip():
        report.add(w, "UnexpectedText", "Unexpected Text in entry", line)
    _check_once(report, w, entry, _ATOM_ENTRY_ONCE, ns=ATOM_NS)
    for name in ("id", "title", "updated"):
        if entry.find(_a(name)) is None:
            report.add(w, "MissingElement", f"Missing entry element: {name}", line)
    source = entry.find(_a("source"))
    if (
        entry.find(_a("author")) is None
        and not feed_has_author
        and (source is None or source.find(_a("author")) is None)
    ):
        report.add(w, "MissingElement", "Missing entry element: author (no author on the feed either)", line)

    links = []
    content = entry.find(_a("content"))
    for child in _elements(entry):
        cq = etree.QName(child)
        cline = child.sourceline
        if cq.namespace is None:
            report.add(
                w,
                "UndefinedElement",
                f"Undefined entry element: {cq.localname} (not in a namespace)",
                cline,
            )
            continue
        if cq.namespace != ATOM_NS:
            continue
        local = cq.localname
        if local not in _ATOM_ENTRY_KNOWN:
            report.add(w, "UndefinedElement", f"Undefined entry element: {local}", cline)
        elif local == "id":
            value = _check_atom_id(report, w, child)
            if value:
                if value in ids:
                    report.add(
                        w,
                        "DuplicateEntries",
                        f"Two entries with the same id {value!r} (also entry[{ids[value]}])",
                        cline,
                    )
                else:
                    ids[value] = index
        elif local in ("updated", "published"):
            _check_atom_date(report, w, child, local)
        elif local in ("title", "summary", "rights"):
            _check_text_construct(report, w, child, local)
        elif local == "content":
            _check_text_construct(report, w, child, "content", content=True)
        elif local in ("author", "contributor"):
            _check_atom_person(report, w, child, local)
        elif local == "category":
            _check_atom_category(report, w, child)
        elif local == "link":
            links.append(child)
            _check_atom_link(report, w, child)
        elif local == "source":
            _check_once(report, w + " source", child, _ATOM_FEED_ONCE, ns=ATOM_NS)
            _check_atom_metadata(report, w + " source", child, source=True)
    _check_alternate_dupes(report, w, links)
    has_alternate = any(_link_rel(link) == "alternate" for link in links)
    has_summary = entry.find(_a("summary")) is not None
    if content is None:
        if not has_alternate:
            report.add(w, "MissingContentOrAlternate", "Missing content or alternate link", line)
        if not has_summary:
            report.add(w, "MissingTextualContent", "Missing textual content (no content and no summary)", line)
    elif not has_summary:
        ctype = content.get("type", "text")
        binary = "/" in ctype and not (ctype.endswith("+xml") or ctype.endswith("/xml") or ctype.startswith("text/"))
        if content.get("src") is not None or binary:
            report.add(
                w,
                "MissingSummary",
                "Missing summary (required when content has src or is base64 encoded)",
                line,
            )


# ---------------------------------------------------------------------------
# JSON Feed 1.1
# ---------------------------------------------------------------------------

JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
_JF_TOP_KEYS = {
    "version",
    "title",
    "home_page_url",
    "feed_url",
    "description",
    "user_comment",
    "next_url",
    "icon",
    "favicon",
    "authors",
    "author",
    "language",
    "expired",
    "hubs",
    "items",
}
_JF_ITEM_KEYS = {
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "authors",
    "author",
    "tags",
    "language",
    "attachments",
}


class _DuplicateKey(ValueError):
    pass


def _json_pairs(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _bad_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _jf_label(index, item):
    if not isinstance(item, dict):
        return f"items[{index}]"
    bits = []
    if "id" in item:
        bits.append("id={}".format(_short(item["id"])))
    if isinstance(item.get("title"), str):
        bits.append(f"title={_short(item['title'])}")
    return f"items[{index}]" + (f" ({', '.join(bits)})" if bits else "")


def _jf_string(report, w, obj, key, *, required=False, nonblank=False):
    if key not in obj:
        if required:
            report.add(w, "MissingField", f"required field {key!r} is missing")
        return None
    value = obj[key]
    if not isinstance(value, str):
        report.add(w, "InvalidType", f"{key!r} must be a string, not {type(value).__name__}")
        return None
    if nonblank and not value.strip():
        report.add(w, "NotBlank", f"{key!r} should not be blank")
    return value


def _jf_url(report, w, obj, key, *, required=False):
    value = _jf_string(report, w, obj, key, required=required)
    if value is not None:
        report.addp(w, _full_uri_problem(value, key, iri=True, http=True))
    return value


def _jf_authors(report, w, obj):
    if "authors" in obj:
        authors = obj["authors"]
        if not isinstance(authors, list):
            report.add(w, "InvalidType", "'authors' must be an array of author objects")
        else:
            if not authors:
                report.add(w, "InvalidAuthor", "'authors' must not be an empty array")
            for i, author in enumerate(authors):
                _jf_author(report, f"{w} authors[{i}]", author)
    elif "author" in obj:
        report.add(w, "DeprecatedAuthor", "'author' is deprecated in JSON Feed 1.1; use 'authors' (an array)")
        _jf_author(report, f"{w} author", obj["author"])


def _jf_author(report, w, author):
    if not isinstance(author, dict):
        report.add(w, "InvalidType", "author must be an object")
        return
    if not any(k in author for k in ("name", "url", "avatar")):
        report.add(w, "InvalidAuthor", "author object must include at least one of name, url, avatar")
    _jf_string(report, w, author, "name", nonblank=True)
    _jf_url(report, w, author, "url")
    _jf_url(report, w, author, "avatar")
    for key in author:
        if key not in ("name", "url", "avatar") and not key.startswith("_"):
            report.add(w, "UnknownField", f"unknown author field {key!r} (extensions must start with '_')")


def _jf_language(report, w, obj):
    value = _jf_string(report, w, obj, "language")
    if value is not None:
        report.addp(w, _lang_problem(value, "language"))


def _jf_objects(report: _Report, w: str, container: dict, key: str, singular: str):  # type: ignore[no-untyped-def]
    """(where, object) for each object of the array `container[key]`; reports a non-array or a non-object."""
    if key not in container:
        return
    values = container[key]
    if not isinstance(values, list):
        report.add(w, "InvalidType", f"'{key}' must be an array")
        return
    for i, value in enumerate(values):
        where = f"{w} {key}[{i}]"
        if not isinstance(value, dict):
            report.add(where, "InvalidType", f"{singular} must be an object")
            continue
        yield where, value


def check_json_feed(data: bytes, *, self_url: str | None = None) -> list[str]:
    """Check a JSON Feed 1.1 document; returns a list of error strings."""
    report = _Report()
    w = "feed"
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        report.add("document", "InvalidJSON", "JSON text must not start with a byte order mark")
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.add(
            "document",
            "UnicodeError",
            f"document is not valid UTF-8 ({exc.reason})",
            data.count(b"\n", 0, exc.start) + 1,
        )
        return report.errors
    try:
        feed = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_bad_constant)
    except _DuplicateKey as exc:
        report.add("document", "InvalidJSON", f"duplicate object key {exc.args[0]!r}")
        return report.errors
    except ValueError as exc:
        report.add("document", "InvalidJSON", f"not valid JSON: {exc}")
        return report.errors
    if not isinstance(feed, dict):
        report.add("document", "InvalidJSON", "top level JSON value must be an object")
        return report.errors

    version = _jf_string(report, w, feed, "version", required=True)
    if version is not None and version != JSONFEED_VERSION:
        report.add(w, "InvalidVersion", f"version must be {JSONFEED_VERSION!r}, not {version!r}")
    _jf_string(report, w, feed, "title", required=True, nonblank=True)
    _jf_url(report, w, feed, "home_page_url")
    feed_url = _jf_url(report, w, feed, "feed_url")
    if "feed_url" not in feed:
        report.add(
            w,
            "MissingFeedUrl",
            "'feed_url' is missing (strongly recommended by the spec; it is the JSON Feed "
            'equivalent of atom:link rel="self")',
        )
    if feed_url is not None and self_url is not None and _norm_url(feed_url) != _norm_url(self_url):
        report.add(
            w,
            "SelfDoesntMatchLocation",
            f"feed_url {feed_url!r} doesn't match document location {self_url!r}",
        )
    for key in ("description", "user_comment"):
        _jf_string(report, w, feed, key)
    for key in ("next_url", "icon", "favicon"):
        _jf_url(report, w, feed, key)
    _jf_authors(report, w, feed)
    _jf_language(report, w, feed)
    if "expired" in feed and not isinstance(feed["expired"], bool):
        report.add(w, "InvalidType", "'expired' must be a boolean")
    for hw, hub in _jf_objects(report, w, feed, "hubs", "hub"):
        _jf_string(report, hw, hub, "type", required=True)
        _jf_url(report, hw, hub, "url", required=True)
    for key in feed:
        if key not in _JF_TOP_KEYS and not key.startswith("_"):
            report.add(w, "UnknownField", f"unknown top-level field {key!r} (extensions must start with '_')")

    if "items" not in feed:
        report.add(w, "MissingField", "required field 'items' is missing")
        return report.errors
    items = feed["items"]
    if not isinstance(items, list):
        report.add(w, "InvalidType", "'items' must be an array")
        return report.errors
    ids: dict[str, int] = {}
    for index, item in enumerate(items):
        _check_jf_item(report, index, item, ids)
    return report.errors


def _check_jf_item(report, index, item, ids):
    w = _jf_label(index, item)
    if not isinstance(item, dict):
        report.add(w, "InvalidType", "item must be an object")
        return
    if "id" not in item:
        report.add(w, "MissingField", "required field 'id' is missing")
    elif not isinstance(item["id"], str):
        report.add(w, "InvalidType", "'id' must be a string, not {}".format(type(item["id"]).__name__))
    elif not item["id"].strip():
        report.add(w, "NotBlank", "'id' should not be blank")
    elif item["id"] in ids:
        report.add(
            w,
            "DuplicateValue",
            f"id values must be unique within the feed ({item['id']!r} also used by items[{ids[item['id']]}])",
        )
    else:
        ids[item["id"]] = index
    _jf_url(report, w, item, "url")
    _jf_url(report, w, item, "external_url")
    _jf_string(report, w, item, "title")
    html = _jf_string(report, w, item, "content_html")
    text = _jf_string(report, w, item, "content_text")
    if "content_html" not in item and "content_text" not in item:
        report.add(w, "MissingContent", "item must have content_html or content_text (or both)")
    if html is not None:
        for rule, detail in _html_problems(html):
            report.add(w, rule, f"content_html {detail}")
    if text is not None and html is None and not text.strip():
        report.add(w, "NotBlank", "'content_text' should not be blank")
    _jf_string(report, w, item, "summary")
    _jf_url(report, w, item, "image")
    _jf_url(report, w, item, "banner_image")
    for key in ("date_published", "date_modified"):
        value = _jf_string(report, w, item, key)
        if value is not None:
            report.addp(w, _rfc3339_problem(value, key))
    if "tags" in item:
        tags = item["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            report.add(w, "InvalidType", "'tags' must be an array of strings")
        elif any(not t.strip() for t in tags):
            report.add(w, "NotBlank", "tags should not be blank")
    _jf_authors(report, w, item)
    _jf_language(report, w, item)
    for aw, att in _jf_objects(report, w, item, "attachments", "attachment"):
        _jf_url(report, aw, att, "url", required=True)
        mime = _jf_string(report, aw, att, "mime_type", required=True)
        if mime is not None and not _MIME_RE.match(mime):
            report.add(aw, "InvalidMIMEType", f"mime_type is not a valid MIME type: {mime!r}")
        _jf_string(report, aw, att, "title")
        for key in ("size_in_bytes", "duration_in_seconds"):
            if key in att and (
                isinstance(att[key], bool) or not isinstance(att[key], (int, float)) or att[key] < 0
            ):
                report.add(aw, "InvalidType", f"{key!r} must be a non-negative number")
        for key in att:
            if key not in (
                "url",
                "mime_type",
                "title",
                "size_in_bytes",
                "duration_in_seconds",
            ) and not key.startswith("_"):
                report.add(aw, "UnknownField", f"unknown attachment field {key!r}")
    for key in item:
        if key not in _JF_ITEM_KEYS and not key.startswith("_"):
            report.add(w, "UnknownField", f"unknown item field {key!r} (extensions must start with '_')")
