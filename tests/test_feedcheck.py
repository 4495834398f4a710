"""Tests for tests/feedcheck.py, the offline feed checker.

Known-good RSS 2.0 / Atom 1.0 feeds are generated with feedgen (configured the
way publisher has to configure it), a known-good JSON Feed 1.1 is written
inline.  Each rule is then shown to fire on a small mutation of a good feed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedgen.feed import FeedGenerator

sys.path.insert(0, str(Path(__file__).parent))
import feedcheck  # noqa: E402

SITE = "https://example.com/"
RSS_URL = "https://example.com/rss.xml"
ATOM_URL = "https://example.com/atom.xml"
JSON_URL = "https://example.com/feed.json"
FEED_TITLE = "AI 日报：大模型周报"
UTC = UTC

CONTENT_HTML = (
    '<p>本期要点：<a href="https://example.com/p/{i}#top">大模型</a>发布</p>'
    '<p><img src="https://example.com/images/{i}.png" alt="配图" width="600"/></p>'
    "<ul><li>第一条<li>第二条</ul>"
)


def _feedgen(self_url: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.id(SITE)
    fg.title(FEED_TITLE)
    # For RSS feedgen uses the *last* link added as <channel><link>, so add the
    # self link first and the alternate (home page) link last.
    fg.link(href=self_url, rel="self")
    fg.link(href=SITE, rel="alternate", type="text/html")
    fg.description("每日 AI 新闻与大模型动态")
    fg.subtitle("每日 AI 新闻与大模型动态")
    fg.language("zh-CN")
    fg.author({"name": "编辑部", "email": "editor@example.com"})
    fg.lastBuildDate(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    fg.updated(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    for i in range(3):
        fe = fg.add_entry(order="append")
        url = f"https://example.com/p/{i}"
        fe.id(url)
        fe.guid(url, permalink=True)
        fe.title(f"第 {i} 期：大模型周报")
        fe.link(href=url, rel="alternate", type="text/html")
        fe.description(f"第 {i} 期摘要：模型 & 数据")
        fe.summary(f"第 {i} 期摘要：模型 & 数据")
        fe.content(CONTENT_HTML.format(i=i), type="html")
        when = datetime(2026, 1, i + 1, 8, 0, tzinfo=UTC)
        fe.pubDate(when)
        fe.published(when)
        fe.updated(when)
        fe.category(term="AI")
        if i == 0:
            fe.dc.dc_creator("张三")
        else:
            fe.author({"name": "李四", "email": "lisi@example.com"})
    return fg


def good_rss() -> bytes:
    return _feedgen(RSS_URL).rss_str(pretty=True)


def good_atom() -> bytes:
    return _feedgen(ATOM_URL).atom_str(pretty=True)


def good_json_obj() -> dict:
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": FEED_TITLE,
        "home_page_url": SITE,
        "feed_url": JSON_URL,
        "description": "每日 AI 新闻与大模型动态",
        "language": "zh-CN",
        "icon": "https://example.com/icon.png",
        "authors": [{"name": "编辑部", "url": "https://example.com/about"}],
        "_publisher": {"about": "extension keys start with an underscore"},
        "items": [
            {
                "id": f"https://example.com/p/{i}",
                "url": f"https://example.com/p/{i}",
                "title": f"第 {i} 期：大模型周报",
                "content_html": CONTENT_HTML.format(i=i),
                "content_text": "本期要点：大模型发布",
                "summary": "摘要",
                "image": f"https://example.com/images/{i}.png",
                "date_published": f"2026-01-0{i + 1}T08:00:00+08:00",
                "date_modified": f"2026-01-0{i + 1}T09:30:00.123Z",
                "tags": ["AI", "大模型"],
                "authors": [{"name": "张三"}],
                "language": "zh-CN",
                "attachments": [{"url": "https://example.com/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 1234}],
            }
            for i in range(3)
        ],
    }


def good_json() -> bytes:
    return json.dumps(good_json_obj(), ensure_ascii=False, indent=2).encode("utf-8")


def sub(data: bytes, old: str, new: str, count: int = 1) -> bytes:
    """Replace ``old`` by ``new`` in a UTF-8 document, insisting it is there."""
    text = data.decode("utf-8")
    assert old in text, f"mutation anchor {old!r} not found in:\n{text}"
    return text.replace(old, new, count).encode("utf-8")


def assert_rule(errors: list[str], rule: str, *fragments: str) -> None:
    hits = [e for e in errors if f": {rule}: " in e and all(f in e for f in fragments)]
    assert hits, f"expected a {rule} error containing {fragments!r}, got:\n" + "\n".join(errors)


# ---------------------------------------------------------------------------
# Known-good feeds
# ---------------------------------------------------------------------------


def test_good_rss_has_no_errors():
    data = good_rss()
    assert FEED_TITLE.encode() in data
    assert feedcheck.check_rss(data) == []
    assert feedcheck.check_rss(data, self_url=RSS_URL) == []


def test_feedgen_default_docs_and_generator_are_allowed():
    data = good_rss().decode()
    assert "<docs>http://www.rssboard.org/rss-specification</docs>" in data
    assert "<generator>python-feedgen</generator>" in data
    assert "<dc:creator>张三</dc:creator>" in data
    assert feedcheck.check_rss(data.encode()) == []


def test_minimal_feedgen_rss_passes():
    fg = FeedGenerator()
    fg.title("最小")
    fg.link(href=RSS_URL, rel="self")
    fg.link(href=SITE)
    fg.description("描述")
    fg.lastBuildDate(datetime(2026, 1, 5, tzinfo=UTC))
    fe = fg.add_entry()
    fe.title("条目")
    fe.guid("urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", permalink=False)
    assert feedcheck.check_rss(fg.rss_str(), self_url=RSS_URL) == []


def test_good_atom_has_no_errors():
    data = good_atom()
    assert FEED_TITLE.encode() in data
    assert feedcheck.check_atom(data) == []
    assert feedcheck.check_atom(data, self_url=ATOM_URL) == []


def test_good_json_has_no_errors():
    data = good_json()
    assert FEED_TITLE.encode() in data
    assert feedcheck.check_json_feed(data) == []
    assert feedcheck.check_json_feed(data, self_url=JSON_URL) == []


@pytest.mark.parametrize(
    "old,new",
    [
        ("Mon, 05 Jan 2026 08:00:00 +0000", "Mon, 05 Jan 2026 08:00:00 GMT"),
        ("Mon, 05 Jan 2026 08:00:00 +0000", "5 Jan 2026 16:00 +0800"),
        (
            '<guid isPermaLink="true">https://example.com/p/0</guid>',
            '<guid isPermaLink="false">tag:example.com,2026:p0</guid>',
        ),
        ('<guid isPermaLink="true">https://example.com/p/0</guid>', "<guid>https://example.com/p/0</guid>"),
        ("<language>zh-CN</language>", "<language>en-us</language>"),
        ("<category>AI</category>", '<category domain="https://example.com/tags">AI</category>'),
        # RSS Profile: hex character references for a literal '&' in a title are fine
        ("<title>第 0 期：大模型周报</title>", "<title><![CDATA[Q&#x26;A 第 0 期]]></title>"),
        (
            "<author>lisi@example.com (李四)</author>",
            "<author>mailto:lisi%40example.com%20%28%E6%9D%8E%E5%9B%9B%29</author>",
        ),
        ("<author>lisi@example.com (李四)</author>", "<author>李四 &lt;lisi@example.com&gt;</author>"),
        ("配图", '配图" style="color: red; padding: 0 16px; text-align:center'),
        (
            "<link>https://example.com/</link>",
            "<link>https://example.com/</link><ttl>60</ttl><skipHours><hour>0</hour><hour>23</hour></skipHours>"
            "<skipDays><day>Sunday</day></skipDays><image><url>https://example.com/logo.png</url>"
            "<title>AI 日报</title><link>https://example.com/</link><width>144</width></image>",
        ),
    ],
)
def test_rss_valid_variants(old, new):
    assert feedcheck.check_rss(sub(good_rss(), old, new)) == []


def test_atom_relative_refs_allowed_with_xml_base():
    data = sub(
        good_atom(),
        '<content type="html">&lt;p&gt;本期要点：&lt;a href="https://example.com/p/0#top"',
        '<content type="html" xml:base="https://example.com/p/">&lt;p&gt;本期要点：&lt;a href="0#top"',
    )
    assert feedcheck.check_atom(data) == []


def test_atom_relative_self_allowed_with_absolute_xml_base():
    data = sub(
        good_atom(),
        '<link href="https://example.com/atom.xml" rel="self"/>',
        '<link xml:base="https://example.com/" href="atom.xml" '
        'rel="http://www.iana.org/assignments/relation/self" type="application/atom+xml"/>',
    )
    assert feedcheck.check_atom(data, self_url=ATOM_URL) == []


def test_atom_xhtml_content_is_accepted():
    data = sub(
        good_atom(),
        "<summary>第 0 期摘要：模型 &amp; 数据</summary>",
        '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        '<p>摘要 <a href="https://example.com/">首页</a></p></div></summary>',
    )
    assert feedcheck.check_atom(data) == []


def test_json_deprecated_author_is_fine_next_to_authors():
    obj = good_json_obj()
    obj["author"] = {"name": "编辑部"}
    assert feedcheck.check_json_feed(json.dumps(obj).encode()) == []


# ---------------------------------------------------------------------------
# Error messages identify the item and the rule
# ---------------------------------------------------------------------------


def test_error_names_item_index_title_and_guid():
    data = sub(good_rss(), "Fri, 02 Jan 2026 08:00:00 +0000", "2026-13-01")
    errors = feedcheck.check_rss(data)
    assert len(errors) == 1, errors
    err = errors[0]
    assert err.startswith("item[1] ")
    assert "第 1 期：大模型周报" in err
    assert "https://example.com/p/1" in err
    assert "InvalidRFC2822Date" in err and "pubDate" in err and "2026-13-01" in err
    assert "(line " in err


# ---------------------------------------------------------------------------
# XML level (shared by RSS and Atom)
# ---------------------------------------------------------------------------

XML_CASES = [
    ("not well-formed", lambda d: d[:-30], "SAXError", ()),
    ("undefined entity", lambda d: sub(d, "每日 AI", "每日&nbsp;AI"), "SAXError", ()),
    ("latin-1 declared", lambda d: sub(d, "encoding='UTF-8'", "encoding='ISO-8859-1'"), "EncodingNotUTF8", ()),
    ("no xml declaration", lambda d: d.split(b"?>", 1)[1].lstrip(), "MissingEncoding", ()),
    ("no encoding in declaration", lambda d: sub(d, " encoding='UTF-8'", ""), "MissingEncoding", ()),
    ("xml 1.1", lambda d: sub(d, "version='1.0'", "version='1.1'"), "BadXmlVersion", ()),
    ("invalid utf-8", lambda d: d.replace("日报".encode(), b"\xe6\x97", 1), "UnicodeError", ()),
    ("control character", lambda d: sub(d, "每日 AI", "每日\x01AI"), "InvalidXMLCharacter", ("U+0001",)),
    ("C1 control / mojibake", lambda d: sub(d, "每日 AI", "每日\u0092AI"), "BadCharacters", ()),
    (
        "system entity",
        lambda d: sub(d, "?>\n", '?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'),
        "ContainsSystemEntity",
        (),
    ),
    (
        "bad xml:lang",
        lambda d: sub(
            d,
            "<channel>" if b"<channel>" in d else "<entry>",
            '<channel xml:lang="chinese">' if b"<channel>" in d else '<entry xml:lang="zh_CN">',
        ),
        "InvalidLanguage",
        ("xml:lang on <",),
    ),
]


@pytest.mark.parametrize("name,mutate,rule,frags", XML_CASES, ids=[c[0] for c in XML_CASES])
def test_rss_xml_level_rules(name, mutate, rule, frags):
    assert_rule(feedcheck.check_rss(mutate(good_rss())), rule, *frags)


@pytest.mark.parametrize("name,mutate,rule,frags", XML_CASES, ids=[c[0] for c in XML_CASES])
def test_atom_xml_level_rules(name, mutate, rule, frags):
    assert_rule(feedcheck.check_atom(mutate(good_atom())), rule, *frags)


# ---------------------------------------------------------------------------
# RSS 2.0 rules
# ---------------------------------------------------------------------------

ITEM0 = "item[0] (title='第 0 期：大模型周报', guid='https://example.com/p/0')"
ITEM1 = "item[1] (title='第 1 期：大模型周报', guid='https://example.com/p/1')"
TITLE0 = "<title>第 0 期：大模型周报</title>"
GUID0 = '<guid isPermaLink="true">https://example.com/p/0</guid>'
GUID1 = '<guid isPermaLink="true">https://example.com/p/1</guid>'
LINK0 = "<link>https://example.com/p/0</link>"
DESC0 = "<description>第 0 期摘要：模型 &amp; 数据</description>"
SELF_LINK = '<atom:link href="https://example.com/rss.xml" rel="self"/>'
CHANNEL_LINK = "<link>https://example.com/</link>"
CHANNEL_TITLE = f"<title>{FEED_TITLE}</title>"
CHANNEL_DESC = "<description>每日 AI 新闻与大模型动态</description>"
LBD = "<lastBuildDate>Mon, 05 Jan 2026 08:00:00 +0000</lastBuildDate>"
PUB0 = "<pubDate>Thu, 01 Jan 2026 08:00:00 +0000</pubDate>"
ENC0 = '&lt;a href="https://example.com/p/0#top"&gt;'
IMG0 = 'src="https://example.com/images/0.png"'

RSS_CASES = [
    # root / channel structure
    ("root not rss", lambda d: sub(sub(d, "<rss ", "<rdf "), "</rss>", "</rdf>"), "UndefinedElement", ("rdf",)),
    ("rss version", lambda d: sub(d, 'version="2.0"', 'version="0.91"'), "InvalidRSSVersion", ()),
    ("rss without version", lambda d: sub(d, ' version="2.0"', ""), "MissingAttribute", ("version",)),
    (
        "no channel",
        lambda d: sub(sub(d, "<channel>", "<chan>"), "</channel>", "</chan>"),
        "MissingElement",
        ("channel",),
    ),
    ("two channels", lambda d: sub(d, "</rss>", "<channel/></rss>"), "DuplicateElement", ("channel",)),
    ("missing channel title", lambda d: sub(d, CHANNEL_TITLE, ""), "MissingTitle", ("channel",)),
    ("blank channel title", lambda d: sub(d, CHANNEL_TITLE, "<title> </title>"), "NotBlank", ("channel",)),
    ("missing channel link", lambda d: sub(d, CHANNEL_LINK, ""), "MissingLink", ("channel",)),
    ("missing channel description", lambda d: sub(d, CHANNEL_DESC, ""), "MissingDescription", ("channel",)),
    (
        "relative channel link",
        lambda d: sub(d, CHANNEL_LINK, "<link>/index.html</link>"),
        "InvalidFullLink",
        ("channel",),
    ),
    ("non-http channel link", lambda d: sub(d, CHANNEL_LINK, "<link>ftp://example.com/</link>"), "InvalidFullLink", ()),
    (
        "non-ascii channel link",
        lambda d: sub(d, CHANNEL_LINK, "<link>https://example.com/日报/</link>"),
        "UriNotIri",
        (),
    ),
    (
        "channel link with space",
        lambda d: sub(d, CHANNEL_LINK, "<link>https://example.com/a b</link>"),
        "InvalidUriChar",
        (),
    ),
    (
        "duplicate channel link",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK * 2),
        "DuplicateElement",
        ("channel contains more than one link",),
    ),
    ("duplicate lastBuildDate", lambda d: sub(d, LBD, LBD * 2), "DuplicateElement", ("lastBuildDate",)),
    (
        "unknown channel element",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<updated>x</updated>"),
        "UndefinedElement",
        ("channel", "updated"),
    ),
    (
        "content:encoded in channel",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<content:encoded>x</content:encoded>"),
        "UndefinedElement",
        ("content:encoded",),
    ),
    ("channel text", lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "stray"), "UnexpectedText", ()),
    (
        "channel title with html",
        lambda d: sub(d, CHANNEL_TITLE, "<title>AI &lt;b&gt;日报&lt;/b&gt;</title>"),
        "ContainsHTML",
        ("title",),
    ),
    (
        "double escaped title",
        lambda d: sub(d, CHANNEL_TITLE, "<title>AI &amp;amp; 日报</title>"),
        "ContainsHTML",
        ("&amp",),
    ),
    ("metadata after items", lambda d: sub(d, "</channel>", "<ttl>60</ttl></channel>"), "MisplacedItem", ("ttl",)),
    ("bad ttl", lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<ttl>soon</ttl>"), "InvalidPositiveInteger", ()),
    (
        "bad managingEditor",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<managingEditor>编辑部</managingEditor>"),
        "InvalidContact",
        ("managingEditor",),
    ),
    (
        "image blank title",
        lambda d: sub(
            d,
            CHANNEL_LINK,
            CHANNEL_LINK + "<image><url>https://example.com/a.png</url>"
            "<title></title><link>https://example.com/</link></image>",
        ),
        "NotBlank",
        ("image title",),
    ),
    (
        "image too wide",
        lambda d: sub(
            d,
            CHANNEL_LINK,
            CHANNEL_LINK + "<image><url>https://example.com/a.png</url><title>t</title>"
            "<link>https://example.com/</link><width>600</width></image>",
        ),
        "InvalidWidth",
        (),
    ),
    (
        "textInput without name",
        lambda d: sub(
            d,
            CHANNEL_LINK,
            CHANNEL_LINK + "<textInput><title>t</title><description>d</description>"
            "<link>https://example.com/s</link></textInput>",
        ),
        "MissingElement",
        ("name",),
    ),
    (
        "skipHours 24",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<skipHours><hour>24</hour></skipHours>"),
        "InvalidHour",
        (),
    ),
    (
        "skipDays duplicate",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<skipDays><day>Monday</day><day>Monday</day></skipDays>"),
        "DuplicateValue",
        (),
    ),
    (
        "skipDays chinese",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<skipDays><day>星期一</day></skipDays>"),
        "InvalidDay",
        (),
    ),
    (
        "cloud port",
        lambda d: sub(
            d,
            CHANNEL_LINK,
            CHANNEL_LINK + '<cloud domain="rpc.example.com" port="-1" path="/RPC2" '
            'registerProcedure="p" protocol="xml-rpc"/>',
        ),
        "InvalidIntegerAttribute",
        (),
    ),
    (
        "duplicate dc:language",
        lambda d: sub(d, CHANNEL_LINK, CHANNEL_LINK + "<dc:language>zh</dc:language>" * 2),
        "DuplicateElement",
        ("dc:language",),
    ),
    (
        "image without url",
        lambda d: sub(
            d, CHANNEL_LINK, CHANNEL_LINK + "<image><title>t</title><link>https://example.com/</link></image>"
        ),
        "MissingElement",
        ("image", "url"),
    ),
    # language
    (
        "language cn",
        lambda d: sub(d, "<language>zh-CN</language>", "<language>cn</language>"),
        "InvalidLanguage",
        ("'cn'",),
    ),
    (
        "language underscore",
        lambda d: sub(d, "<language>zh-CN</language>", "<language>zh_CN</language>"),
        "InvalidLanguage",
        (),
    ),
    (
        "language name",
        lambda d: sub(d, "<language>zh-CN</language>", "<language>Chinese</language>"),
        "InvalidLanguage",
        (),
    ),
    # dates
    (
        "iso date in lastBuildDate",
        lambda d: sub(d, LBD, "<lastBuildDate>2026-13-01</lastBuildDate>"),
        "InvalidRFC2822Date",
        ("lastBuildDate",),
    ),
    (
        "two digit year",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 26 08:00:00 +0000</lastBuildDate>"),
        "ProblematicalRFC822Date",
        (),
    ),
    (
        "lower case month",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 jan 2026 08:00:00 +0000</lastBuildDate>"),
        "ProblematicalRFC822Date",
        (),
    ),
    (
        "wrong day name",
        lambda d: sub(d, LBD, "<lastBuildDate>Tue, 05 Jan 2026 08:00:00 +0000</lastBuildDate>"),
        "IncorrectDOW",
        (),
    ),
    (
        "invalid day name",
        lambda d: sub(d, LBD, "<lastBuildDate>Mo, 05 Jan 2026 08:00:00 +0000</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "chinese day name",
        lambda d: sub(d, LBD, "<lastBuildDate>周一, 05 Jan 2026 08:00:00 +0000</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "day 32",
        lambda d: sub(d, LBD, "<lastBuildDate>32 Jan 2026 08:00:00 +0000</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "hour 25",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 25:00:00 +0000</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "bad timezone",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 08:00:00 CST8</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "timezone +2500",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 08:00:00 +2500</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "missing timezone",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 08:00:00</lastBuildDate>"),
        "InvalidRFC2822Date",
        (),
    ),
    (
        "epoch date",
        lambda d: sub(d, LBD, "<lastBuildDate>Thu, 01 Jan 1970 00:00:00 +0000</lastBuildDate>"),
        "ImplausibleDate",
        (),
    ),
    (
        "rfc822 comments",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 08:00:00 +0000 (UTC)</lastBuildDate>"),
        "ProblematicalRFC822Date",
        (),
    ),
    (
        "odd zone minutes",
        lambda d: sub(d, LBD, "<lastBuildDate>Mon, 05 Jan 2026 08:00:00 +0545</lastBuildDate>"),
        "ProblematicalRFC822Date",
        (),
    ),
    (
        "bad item pubDate",
        lambda d: sub(d, PUB0, "<pubDate>2026-01-01T08:00:00Z</pubDate>"),
        "InvalidRFC2822Date",
        (ITEM0, "pubDate"),
    ),
    # atom:link rel=self
    ("missing self link", lambda d: sub(d, SELF_LINK, ""), "MissingAtomSelfLink", ("channel",)),
    ("self link without href", lambda d: sub(d, SELF_LINK, '<atom:link rel="self"/>'), "MissingHref", ()),
    (
        "self link wrong type",
        lambda d: sub(d, SELF_LINK, SELF_LINK.replace("/>", ' type="text/html"/>')),
        "SelfNotAtom",
        (),
    ),
    ("relative self link", lambda d: sub(d, SELF_LINK, '<atom:link href="rss.xml" rel="self"/>'), "RelativeSelf", ()),
    (
        "bad atom:link rel",
        lambda d: sub(d, SELF_LINK, SELF_LINK + '<atom:link href="https://example.com/" rel="home page"/>'),
        "UnregisteredAtomLinkRel",
        (),
    ),
    (
        "wrong atom namespace",
        lambda d: sub(d, 'xmlns:atom="http://www.w3.org/2005/Atom"', 'xmlns:atom="http://www.w3.org/2005/atom"'),
        "ReservedPrefix",
        ("atom",),
    ),
    # items
    (
        "item without title/description",
        lambda d: sub(sub(d, TITLE0, ""), DESC0, ""),
        "ItemMustContainTitleOrDescription",
        ("item[0] (guid='https://example.com/p/0')",),
    ),
    ("blank item title", lambda d: sub(d, TITLE0, "<title></title>"), "NotBlank", ("item[0]",)),
    ("item title html", lambda d: sub(d, TITLE0, "<title>第 0 期&lt;/br&gt;</title>"), "ContainsHTML", ("item[0]",)),
    ("duplicate item title", lambda d: sub(d, TITLE0, TITLE0 * 2), "DuplicateElement", (ITEM0, "title")),
    ("duplicate item link", lambda d: sub(d, LINK0, LINK0 * 2), "DuplicateElement", (ITEM0, "link")),
    ("duplicate item description", lambda d: sub(d, DESC0, DESC0 * 2), "DuplicateElement", (ITEM0, "description")),
    ("duplicate item pubDate", lambda d: sub(d, PUB0, PUB0 * 2), "DuplicateElement", (ITEM0, "pubDate")),
    (
        "duplicate item guid element",
        lambda d: sub(d, GUID0, GUID0 + '<guid isPermaLink="false">x-123456789</guid>'),
        "DuplicateElement",
        (ITEM0, "guid"),
    ),
    ("relative item link", lambda d: sub(d, LINK0, "<link>p/0.html</link>"), "InvalidFullLink", (ITEM0,)),
    (
        "unknown item element",
        lambda d: sub(d, LINK0, LINK0 + "<summary>x</summary>"),
        "UndefinedElement",
        (ITEM0, "summary"),
    ),
    (
        "item element with child",
        lambda d: sub(d, LINK0, "<link><a>https://example.com/</a></link>"),
        "UndefinedElement",
        (ITEM0,),
    ),
    (
        "unexpected attribute",
        lambda d: sub(d, TITLE0, '<title type="html">第 0 期：大模型周报</title>'),
        "UnexpectedAttribute",
        ("type",),
    ),
    (
        "missing guid",
        lambda d: sub(d, GUID0, ""),
        "MissingGuid",
        ("item[0] (title='第 0 期：大模型周报', link='https://example.com/p/0')",),
    ),
    ("duplicate guid", lambda d: sub(d, GUID1, GUID0), "DuplicateValue", ("item[1]", "also used by item[0]")),
    (
        "permalink guid not url",
        lambda d: sub(d, GUID0, '<guid isPermaLink="true">post-0</guid>'),
        "InvalidHttpGUID",
        (),
    ),
    ("implicit permalink guid not url", lambda d: sub(d, GUID0, "<guid>第0期</guid>"), "InvalidHttpGUID", ()),
    ("permalink guid tag uri", lambda d: sub(d, GUID0, "<guid>tag:example.com,2026:0</guid>"), "InvalidHttpGUID", ()),
    (
        "bad isPermaLink",
        lambda d: sub(d, GUID0, '<guid isPermaLink="yes">https://example.com/p/0</guid>'),
        "InvalidBooleanAttribute",
        (),
    ),
    ("short numeric guid", lambda d: sub(d, GUID0, '<guid isPermaLink="false">42</guid>'), "NotSufficientlyUnique", ()),
    ("empty category", lambda d: sub(d, "<category>AI</category>", "<category></category>"), "NotBlank", ("category",)),
    (
        "author not email",
        lambda d: sub(d, "<author>lisi@example.com (李四)</author>", "<author>李四</author>"),
        "InvalidContact",
        (ITEM1, "author"),
    ),
    (
        "author name with html",
        lambda d: sub(
            d, "<author>lisi@example.com (李四)</author>", "<author>lisi@example.com (&lt;b&gt;李四&lt;/b&gt;)</author>"
        ),
        "ContainsHTML",
        (),
    ),
    (
        "author bad email",
        lambda d: sub(d, "<author>lisi@example.com (李四)</author>", "<author>lisi@ (李四)</author>"),
        "InvalidContact",
        (),
    ),
    (
        "bad enclosure",
        lambda d: sub(d, LINK0, LINK0 + '<enclosure url="a.mp3" type="audio" />'),
        "MissingAttribute",
        ("length",),
    ),
    (
        "bad enclosure url",
        lambda d: sub(d, LINK0, LINK0 + '<enclosure url="a.mp3" length="1" type="audio/mpeg" />'),
        "InvalidFullLink",
        ("enclosure url",),
    ),
    (
        "two enclosures",
        lambda d: sub(
            d, LINK0, LINK0 + '<enclosure url="https://example.com/a.mp3" length="1" type="audio/mpeg" />' * 2
        ),
        "DuplicateEnclosure",
        (),
    ),
    (
        "dc:date not w3cdtf",
        lambda d: sub(d, "<dc:creator>张三</dc:creator>", "<dc:creator>张三</dc:creator><dc:date>Jan 1</dc:date>"),
        "InvalidW3CDTFDate",
        (),
    ),
    # content:encoded namespace
    (
        "content namespace without slash",
        lambda d: sub(
            d,
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"',
            'xmlns:content="http://purl.org/rss/1.0/modules/content"',
        ),
        "ReservedPrefix",
        ("content",),
    ),
    (
        "content namespace other prefix",
        lambda d: sub(
            sub(
                d,
                'xmlns:content="http://purl.org/rss/1.0/modules/content/"',
                'xmlns:c="http://purl.org/rss/1.0/modules/Content"',
            ),
            "content:encoded",
            "c:encoded",
            6,
        ),
        "InvalidNamespace",
        ("misspelling",),
    ),
    (
        "duplicate content:encoded",
        lambda d: sub(d, "</content:encoded>", "</content:encoded><content:encoded>x</content:encoded>"),
        "DuplicateElement",
        ("content:encoded",),
    ),
    # HTML in description / content:encoded
    (
        "relative href in content",
        lambda d: sub(d, ENC0, '&lt;a href="p/0"&gt;'),
        "ContainsRelRef",
        (ITEM0, "content:encoded", "p/0"),
    ),
    ("root-relative src", lambda d: sub(d, IMG0, 'src="/images/0.png"'), "ContainsRelRef", ("/images/0.png",)),
    ("parent-relative src", lambda d: sub(d, IMG0, 'src="../y.png"'), "ContainsRelRef", ("../y.png",)),
    ("images/a.png", lambda d: sub(d, IMG0, 'src="images/a.png"'), "ContainsRelRef", ("images/a.png",)),
    ("protocol-relative src", lambda d: sub(d, IMG0, 'src="//cdn.example.com/a.png"'), "ContainsRelRef", ()),
    (
        "relative srcset",
        lambda d: sub(d, IMG0, IMG0 + ' srcset="https://example.com/a.png 1x, a@2x.png 2x"'),
        "ContainsRelRef",
        ("a@2x.png",),
    ),
    (
        "relative href in description",
        lambda d: sub(d, DESC0, "<description>&lt;a href='x.html'&gt;x&lt;/a&gt;</description>"),
        "ContainsRelRef",
        ("description",),
    ),
    (
        "script in content",
        lambda d: sub(d, ENC0, "&lt;script&gt;alert(1)&lt;/script&gt;" + ENC0),
        "SecurityRisk",
        ("script",),
    ),
    (
        "cdata script in description",
        lambda d: sub(
            d, DESC0, "<description><![CDATA[<script src='https://evil.example/x.js'></script>]]></description>"
        ),
        "SecurityRisk",
        ("description", "script"),
    ),
    (
        "iframe in content",
        lambda d: sub(d, ENC0, '&lt;iframe src="https://example.com/"&gt;&lt;/iframe&gt;' + ENC0),
        "SecurityRisk",
        ("iframe",),
    ),
    (
        "onclick in content",
        lambda d: sub(d, ENC0, ENC0.replace("&gt;", ' onclick="x()"&gt;')),
        "SecurityRiskAttr",
        ("onclick",),
    ),
    ("javascript url", lambda d: sub(d, ENC0, '&lt;a href="javascript:alert(1)"&gt;'), "SecurityRisk", ("javascript",)),
    (
        "unsafe css property",
        lambda d: sub(d, "配图", '配图" style="position: absolute; max-width: 100%'),
        "DangerousStyleAttr",
        ("position",),
    ),
    (
        "import processing instruction",
        lambda d: sub(
            d, DESC0, '<description>&lt;?import namespace="t" implementation="#default#time2"&gt;x</description>'
        ),
        "SecurityRisk",
        ("import",),
    ),
    (
        "dangerous style",
        lambda d: sub(d, ENC0, ENC0.replace("&gt;", ' style="background:url(https://x/)"&gt;')),
        "DangerousStyleAttr",
        (),
    ),
    (
        "truncated html",
        lambda d: sub(d, DESC0, '<description>&lt;p&gt;摘要 &lt;a href="https://ex</description>'),
        "NotHtml",
        ("truncated",),
    ),
    (
        "unclosed html",
        lambda d: sub(d, DESC0, "<description>&lt;b&gt;摘要</description>"),
        "NotHtml",
        ("unclosed <b>",),
    ),
    (
        "misnested html",
        lambda d: sub(d, DESC0, "<description>&lt;b&gt;&lt;i&gt;x&lt;/b&gt;&lt;/i&gt;</description>"),
        "NotHtml",
        (),
    ),
    (
        "non-html tag",
        lambda d: sub(d, DESC0, "<description>&lt;foo&gt;x&lt;/foo&gt;</description>"),
        "NotHtml",
        ("foo",),
    ),
]


@pytest.mark.parametrize("name,mutate,rule,frags", RSS_CASES, ids=[c[0] for c in RSS_CASES])
def test_rss_rules(name, mutate, rule, frags):
    assert_rule(feedcheck.check_rss(mutate(good_rss())), rule, *frags)


def test_rss_self_link_must_match_self_url():
    errors = feedcheck.check_rss(good_rss(), self_url="https://example.com/feed/rss.xml")
    assert_rule(errors, "SelfDoesntMatchLocation", "https://example.com/feed/rss.xml")
    # equivalent spellings of the same URL are accepted
    assert feedcheck.check_rss(good_rss(), self_url="HTTPS://Example.com:443/rss.xml") == []


def test_rss_multiple_errors_are_all_reported():
    data = sub(sub(good_rss(), GUID1, GUID0), "<language>zh-CN</language>", "<language>cn</language>")
    errors = feedcheck.check_rss(data)
    assert_rule(errors, "DuplicateValue")
    assert_rule(errors, "InvalidLanguage")


# ---------------------------------------------------------------------------
# Atom 1.0 rules
# ---------------------------------------------------------------------------

ENTRY0 = "entry[0] (title='第 0 期：大模型周报', id='https://example.com/p/0')"
ENTRY1 = "entry[1] (title='第 1 期：大模型周报', id='https://example.com/p/1')"
A_FEED_ID = "<id>https://example.com/</id>"
A_FEED_TITLE = f"<title>{FEED_TITLE}</title>"
A_FEED_UPDATED = "<updated>2026-01-05T08:00:00+00:00</updated>"
A_FEED_AUTHOR = "<author>\n    <name>编辑部</name>\n    <email>editor@example.com</email>\n  </author>"
A_SELF = '<link href="https://example.com/atom.xml" rel="self"/>'
A_ALT = '<link href="https://example.com/" rel="alternate" type="text/html"/>'
E0_ID = "<id>https://example.com/p/0</id>"
E1_ID = "<id>https://example.com/p/1</id>"
E0_TITLE = "<title>第 0 期：大模型周报</title>"
E0_UPDATED = "<updated>2026-01-01T08:00:00+00:00</updated>"
E0_PUBLISHED = "<published>2026-01-01T08:00:00+00:00</published>"
E0_LINK = '<link href="https://example.com/p/0"/>'
E0_CONTENT_START = '<content type="html">'
E0_SUMMARY = "<summary>第 0 期摘要：模型 &amp; 数据</summary>"
E0_CAT = '<category term="AI"/>'
E1_AUTHOR = "<author>\n      <name>李四</name>\n      <email>lisi@example.com</email>\n    </author>"


def _drop_entry0_content(d: bytes) -> bytes:
    text = d.decode()
    start = text.index(E0_CONTENT_START)
    end = text.index("</content>", start) + len("</content>")
    return (text[:start] + text[end:]).encode()


ATOM_CASES = [
    # root
    (
        "atom 0.3 namespace",
        lambda d: sub(d, 'xmlns="http://www.w3.org/2005/Atom"', 'xmlns="http://purl.org/atom/ns#"'),
        "InvalidNamespace",
        (),
    ),
    ("no namespace", lambda d: sub(d, ' xmlns="http://www.w3.org/2005/Atom"', ""), "MissingNamespace", ()),
    ("root not feed", lambda d: sub(sub(d, "<feed ", "<rss "), "</feed>", "</rss>"), "UndefinedElement", ()),
    # feed metadata
    ("missing feed id", lambda d: sub(d, A_FEED_ID, ""), "MissingElement", ("feed", "id")),
    ("missing feed title", lambda d: sub(d, A_FEED_TITLE, ""), "MissingElement", ("feed", "title")),
    ("missing feed updated", lambda d: sub(d, A_FEED_UPDATED, ""), "MissingElement", ("feed", "updated")),
    ("duplicate feed title", lambda d: sub(d, A_FEED_TITLE, A_FEED_TITLE * 2), "DuplicateElement", ("title",)),
    ("duplicate feed updated", lambda d: sub(d, A_FEED_UPDATED, A_FEED_UPDATED * 2), "DuplicateElement", ("updated",)),
    ("relative feed id", lambda d: sub(d, A_FEED_ID, "<id>/feed</id>"), "InvalidFullLink", ("feed",)),
    ("feed id whitespace", lambda d: sub(d, A_FEED_ID, "<id> https://example.com/ </id>"), "UnexpectedWhitespace", ()),
    ("non canonical id", lambda d: sub(d, A_FEED_ID, "<id>HTTPS://Example.com</id>"), "NonCanonicalURI", ()),
    (
        "id without trailing slash",
        lambda d: sub(d, A_FEED_ID, "<id>https://example.com</id>"),
        "NonCanonicalURI",
        ("https://example.com/",),
    ),
    ("id with default port", lambda d: sub(d, A_FEED_ID, "<id>https://example.com:443/</id>"), "NonCanonicalURI", ()),
    (
        "id with lower-case escapes",
        lambda d: sub(d, E0_ID, "<id>https://example.com/p/%e6%96%87</id>"),
        "NonCanonicalURI",
        ("%E6%96%87",),
    ),
    ("id with dot segment", lambda d: sub(d, E0_ID, "<id>https://example.com/./p/0</id>"), "NonCanonicalURI", ()),
    ("bad tag id", lambda d: sub(d, A_FEED_ID, "<id>tag:example.com:feed</id>"), "InvalidTAG", ()),
    (
        "feed updated bad month",
        lambda d: sub(d, A_FEED_UPDATED, "<updated>2026-13-01T00:00:00Z</updated>"),
        "InvalidRFC3339Date",
        ("feed", "updated"),
    ),
    (
        "feed updated date only",
        lambda d: sub(d, A_FEED_UPDATED, "<updated>2026-01-05</updated>"),
        "InvalidRFC3339Date",
        (),
    ),
    (
        "feed updated no timezone",
        lambda d: sub(d, A_FEED_UPDATED, "<updated>2026-01-05T08:00:00</updated>"),
        "InvalidRFC3339Date",
        (),
    ),
    (
        "feed updated rfc822",
        lambda d: sub(d, A_FEED_UPDATED, "<updated>Mon, 05 Jan 2026 08:00:00 +0000</updated>"),
        "InvalidRFC3339Date",
        (),
    ),
    (
        "feed updated feb 30",
        lambda d: sub(d, A_FEED_UPDATED, "<updated>2026-02-30T08:00:00Z</updated>"),
        "InvalidRFC3339Date",
        (),
    ),
    ("missing self link", lambda d: sub(d, A_SELF, ""), "MissingSelf", ("feed",)),
    (
        "self link wrong type",
        lambda d: sub(d, A_SELF, A_SELF.replace("/>", ' type="application/rss+xml"/>')),
        "SelfNotAtom",
        (),
    ),
    ("relative self link", lambda d: sub(d, A_SELF, '<link href="atom.xml" rel="self"/>'), "RelativeSelf", ()),
    (
        "relative alternate link",
        lambda d: sub(d, A_ALT, '<link href="/" rel="alternate" type="text/html"/>'),
        "RelativeLink",
        (),
    ),
    ("duplicate alternate", lambda d: sub(d, A_ALT, A_ALT * 2), "DuplicateAtomLink", ()),
    ("link without href", lambda d: sub(d, A_ALT, '<link rel="alternate" type="text/html"/>'), "MissingHref", ()),
    (
        "bad link type",
        lambda d: sub(d, A_ALT, '<link href="https://example.com/" rel="alternate" type="html"/>'),
        "InvalidMIMEType",
        (),
    ),
    (
        "unregistered rel",
        lambda d: sub(d, A_ALT, '<link href="https://example.com/" rel="homepage"/>'),
        "UnregisteredAtomLinkRel",
        (),
    ),
    (
        "link title with html",
        lambda d: sub(d, A_ALT, A_ALT.replace("/>", ' title="&lt;b&gt;首页&lt;/b&gt;"/>')),
        "ContainsHTML",
        (),
    ),
    (
        "entry self link not atom",
        lambda d: sub(d, E0_LINK, E0_LINK + '<link rel="self" type="text/html" href="https://example.com/p/0"/>'),
        "SelfNotAtom",
        (ENTRY0,),
    ),
    (
        "generator with html",
        lambda d: sub(d, ">python-feedgen</generator>", ">python-feedgen &lt;b&gt;1&lt;/b&gt;</generator>"),
        "ContainsHTML",
        ("generator",),
    ),
    (
        "link with text",
        lambda d: sub(d, A_ALT, '<link href="https://example.com/" rel="alternate">首页</link>'),
        "AtomLinkNotEmpty",
        (),
    ),
    (
        "bad title type",
        lambda d: sub(d, A_FEED_TITLE, f'<title type="text/plain">{FEED_TITLE}</title>'),
        "InvalidTextType",
        (),
    ),
    (
        "title with undeclared html",
        lambda d: sub(d, A_FEED_TITLE, "<title>AI &lt;b&gt;日报&lt;/b&gt;</title>"),
        "ContainsUndeclaredHTML",
        (),
    ),
    (
        "unknown feed element",
        lambda d: sub(d, A_FEED_ID, A_FEED_ID + "<language>zh-CN</language>"),
        "UndefinedElement",
        ("language",),
    ),
    (
        "metadata after entry",
        lambda d: sub(d, "</feed>", "<rights>©</rights></feed>"),
        "MisplacedMetadata",
        ("rights",),
    ),
    (
        "no author anywhere",
        lambda d: sub(sub(d, A_FEED_AUTHOR, ""), E1_AUTHOR, ""),
        "MissingElement",
        (ENTRY0, "author"),
    ),
    ("author without name", lambda d: sub(d, "<name>编辑部</name>", ""), "MissingElement", ("author", "name")),
    (
        "author bad email",
        lambda d: sub(d, "<email>editor@example.com</email>", "<email>editor at example.com</email>"),
        "InvalidAddrSpec",
        (),
    ),
    (
        "feed category without term",
        lambda d: sub(d, A_FEED_ID, A_FEED_ID + '<category label="AI"/>'),
        "MissingAttribute",
        ("term",),
    ),
    # entries
    (
        "missing entry id",
        lambda d: sub(d, E0_ID, ""),
        "MissingElement",
        ("entry[0] (title='第 0 期：大模型周报')", "id"),
    ),
    (
        "missing entry title",
        lambda d: sub(d, E0_TITLE, ""),
        "MissingElement",
        ("entry[0] (id='https://example.com/p/0')", "title"),
    ),
    ("missing entry updated", lambda d: sub(d, E0_UPDATED, ""), "MissingElement", (ENTRY0, "updated")),
    ("duplicate entry id", lambda d: sub(d, E1_ID, E0_ID), "DuplicateEntries", ("entry[1]", "also entry[0]")),
    ("relative entry id", lambda d: sub(d, E0_ID, "<id>p/0</id>"), "InvalidFullLink", ("entry[0]",)),
    ("urn uuid invalid", lambda d: sub(d, E0_ID, "<id>urn:uuid:not-a-uuid</id>"), "InvalidUUID", ()),
    (
        "two ids in entry",
        lambda d: sub(d, E0_ID, E0_ID + "<id>https://example.com/p/x</id>"),
        "DuplicateElement",
        (ENTRY0, "id"),
    ),
    ("two titles in entry", lambda d: sub(d, E0_TITLE, E0_TITLE * 2), "DuplicateElement", (ENTRY0, "title")),
    ("two updated in entry", lambda d: sub(d, E0_UPDATED, E0_UPDATED * 2), "DuplicateElement", (ENTRY0, "updated")),
    (
        "two published in entry",
        lambda d: sub(d, E0_PUBLISHED, E0_PUBLISHED * 2),
        "DuplicateElement",
        (ENTRY0, "published"),
    ),
    (
        "entry updated bad",
        lambda d: sub(d, E0_UPDATED, "<updated>2026-13-01</updated>"),
        "InvalidRFC3339Date",
        (ENTRY0, "updated"),
    ),
    (
        "entry published bad",
        lambda d: sub(d, E0_PUBLISHED, "<published>2026-01-01 08:00:00</published>"),
        "InvalidRFC3339Date",
        (ENTRY0, "published"),
    ),
    (
        "published hour 24",
        lambda d: sub(d, E0_PUBLISHED, "<published>2026-01-01T24:00:00Z</published>"),
        "InvalidRFC3339Date",
        (),
    ),
    ("entry category without term", lambda d: sub(d, E0_CAT, "<category/>"), "MissingAttribute", (ENTRY0, "term")),
    ("entry category blank term", lambda d: sub(d, E0_CAT, '<category term=""/>'), "NotBlank", ("term",)),
    (
        "unknown entry element",
        lambda d: sub(d, E0_CAT, E0_CAT + "<pubDate>x</pubDate>"),
        "UndefinedElement",
        (ENTRY0, "pubDate"),
    ),
    (
        "no content no alternate",
        lambda d: sub(_drop_entry0_content(d), E0_LINK, ""),
        "MissingContentOrAlternate",
        (ENTRY0,),
    ),
    (
        "no content no summary",
        lambda d: sub(_drop_entry0_content(d), E0_SUMMARY, ""),
        "MissingTextualContent",
        (ENTRY0,),
    ),
    (
        "content src without summary",
        lambda d: sub(_drop_entry0_content(d), E0_SUMMARY, '<content src="https://example.com/p/0" type="text/html"/>'),
        "MissingSummary",
        (),
    ),
    (
        "feedgen CDATA content type",
        lambda d: sub(d, E0_CONTENT_START, '<content type="CDATA">'),
        "InvalidMIMEType",
        (ENTRY0,),
    ),
    (
        "html content with raw elements",
        lambda d: sub(d, E0_SUMMARY, '<summary type="html"><p xmlns="http://www.w3.org/1999/xhtml">x</p></summary>'),
        "UndefinedElement",
        ("summary",),
    ),
    ("blank summary", lambda d: sub(d, E0_SUMMARY, "<summary></summary>"), "NotBlank", ("summary",)),
    (
        "empty content",
        lambda d: sub(_drop_entry0_content(d), E0_SUMMARY, E0_SUMMARY + "<content/>"),
        "NotBlank",
        ("content",),
    ),
    ("blank type attribute", lambda d: sub(d, E0_SUMMARY, '<summary type="">x</summary>'), "AttrNotBlank", ("type",)),
    (
        "multipart content",
        lambda d: sub(d, E0_CONTENT_START, '<content type="multipart/alternative">'),
        "InvalidMIMEType",
        (),
    ),
    (
        "text/html content with script",
        lambda d: sub(d, E0_CONTENT_START, '<content type="text/html">&lt;script&gt;x()&lt;/script&gt;'),
        "SecurityRisk",
        ("script",),
    ),
    (
        "base64 html content with script",
        lambda d: sub(
            _drop_entry0_content(d),
            E0_SUMMARY,
            E0_SUMMARY + '<content type="application/html">PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==</content>',
        ),
        "SecurityRisk",
        ("script",),
    ),
    (
        "not base64",
        lambda d: sub(
            _drop_entry0_content(d), E0_SUMMARY, E0_SUMMARY + '<content type="application/pdf">不是 base64</content>'
        ),
        "NotBase64",
        (),
    ),
    (
        "xhtml div wrong namespace",
        lambda d: sub(d, E0_SUMMARY, '<summary type="xhtml"><div>x</div></summary>'),
        "NotHtml",
        ("namespace",),
    ),
    (
        "feed element inside xhtml",
        lambda d: sub(
            d,
            E0_SUMMARY,
            '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
            '<title xmlns="http://www.w3.org/2005/Atom">x</title></div></summary>',
        ),
        "UndefinedElement",
        (),
    ),
    (
        "xhtml unsafe style",
        lambda d: sub(
            d,
            E0_SUMMARY,
            '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
            '<p style="position:fixed">x</p></div></summary>',
        ),
        "DangerousStyleAttr",
        (),
    ),
    (
        "source with two titles",
        lambda d: sub(
            d, E0_CAT, E0_CAT + "<source><id>https://other.example.com/</id><title>a</title><title>b</title></source>"
        ),
        "DuplicateElement",
        ("source", "title"),
    ),
    (
        "source with entry",
        lambda d: sub(d, E0_CAT, E0_CAT + "<source><id>https://other.example.com/</id><entry/></source>"),
        "UndefinedElement",
        ("source", "entry"),
    ),
    (
        "source with bad updated",
        lambda d: sub(
            d, E0_CAT, E0_CAT + "<source><id>https://other.example.com/</id><updated>yesterday</updated></source>"
        ),
        "InvalidRFC3339Date",
        (),
    ),
    (
        "xhtml without div",
        lambda d: sub(d, E0_SUMMARY, '<summary type="xhtml">摘要</summary>'),
        "MissingXhtmlDiv",
        (ENTRY0,),
    ),
    (
        "xhtml with p not div",
        lambda d: sub(d, E0_SUMMARY, '<summary type="xhtml"><p xmlns="http://www.w3.org/1999/xhtml">x</p></summary>'),
        "MissingXhtmlDiv",
        (),
    ),
    (
        "xhtml script",
        lambda d: sub(
            d,
            E0_SUMMARY,
            '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div></summary>',
        ),
        "SecurityRisk",
        ("script",),
    ),
    (
        "xhtml relative href",
        lambda d: sub(
            d,
            E0_SUMMARY,
            '<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><a href="/x">x</a></div></summary>',
        ),
        "ContainsRelRef",
        ("/x",),
    ),
    (
        "html content not html",
        lambda d: sub(d, E0_CONTENT_START + "&lt;p&gt;", E0_CONTENT_START + "&lt;p&gt;&lt;/div&gt;"),
        "NotHtml",
        (ENTRY0, "content"),
    ),
    (
        "relative url in content",
        lambda d: sub(d, "https://example.com/images/0.png", "images/a.png"),
        "ContainsRelRef",
        (ENTRY0, "images/a.png"),
    ),
    ("relative href in content", lambda d: sub(d, "https://example.com/p/0#top", "../y"), "ContainsRelRef", ("../y",)),
    (
        "script in content",
        lambda d: sub(d, E0_CONTENT_START, E0_CONTENT_START + "&lt;script&gt;alert(1)&lt;/script&gt;"),
        "SecurityRisk",
        (ENTRY0, "script"),
    ),
    (
        "entry bad xml:lang",
        lambda d: sub(d, E0_TITLE, '<title xml:lang="zh_CN">第 0 期：大模型周报</title>'),
        "InvalidLanguage",
        (),
    ),
    ("blank entry title", lambda d: sub(d, E0_TITLE, "<title></title>"), "NotBlank", ("entry[0]",)),
]


@pytest.mark.parametrize("name,mutate,rule,frags", ATOM_CASES, ids=[c[0] for c in ATOM_CASES])
def test_atom_rules(name, mutate, rule, frags):
    assert_rule(feedcheck.check_atom(mutate(good_atom())), rule, *frags)


def test_atom_self_link_must_match_self_url():
    assert_rule(feedcheck.check_atom(good_atom(), self_url=RSS_URL), "SelfDoesntMatchLocation", RSS_URL)


def test_atom_author_on_every_entry_is_enough():
    data = sub(sub(good_atom(), A_FEED_AUTHOR, ""), E0_ID, E0_ID + "<author><name>张三</name></author>")
    data = sub(
        data, "<id>https://example.com/p/2</id>", "<id>https://example.com/p/2</id><author><name>王五</name></author>"
    )
    assert feedcheck.check_atom(data) == []


# ---------------------------------------------------------------------------
# JSON Feed 1.1 rules
# ---------------------------------------------------------------------------

ITEMS0 = "items[0] (id='https://example.com/p/0', title='第 0 期：大模型周报')"


def _jmut(fn):
    def mutate() -> bytes:
        obj = good_json_obj()
        fn(obj)
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")

    return mutate


def _item0(**changes):
    def fn(obj):
        for key, value in changes.items():
            if value is _DELETE:
                del obj["items"][0][key]
            else:
                obj["items"][0][key] = value

    return _jmut(fn)


def _top(**changes):
    def fn(obj):
        for key, value in changes.items():
            if value is _DELETE:
                del obj[key]
            else:
                obj[key] = value

    return _jmut(fn)


_DELETE = object()

JSON_CASES = [
    ("not json", lambda: good_json()[:-5], "InvalidJSON", ()),
    ("not an object", lambda: b"[]", "InvalidJSON", ()),
    ("not utf-8", lambda: good_json().replace("日报".encode(), "日报".encode("gb18030")), "UnicodeError", ()),
    ("bom", lambda: b"\xef\xbb\xbf" + good_json(), "InvalidJSON", ("byte order mark",)),
    (
        "duplicate key",
        lambda: good_json().replace(b'"title": "AI', b'"title": "x", "title": "AI', 1),
        "InvalidJSON",
        ("duplicate",),
    ),
    ("NaN", lambda: good_json().replace(b'"size_in_bytes": 1234', b'"size_in_bytes": NaN', 1), "InvalidJSON", ()),
    ("missing version", _top(version=_DELETE), "MissingField", ("version",)),
    ("version 1.0", _top(version="https://jsonfeed.org/version/1"), "InvalidVersion", ()),
    ("missing title", _top(title=_DELETE), "MissingField", ("title",)),
    ("title not string", _top(title=["x"]), "InvalidType", ("title",)),
    ("relative home_page_url", _top(home_page_url="/"), "InvalidFullLink", ("home_page_url",)),
    ("relative feed_url", _top(feed_url="feed.json"), "InvalidFullLink", ("feed_url",)),
    ("missing feed_url", _top(feed_url=_DELETE), "MissingFeedUrl", ()),
    ("relative icon", _top(icon="icon.png"), "InvalidFullLink", ("icon",)),
    ("bad language", _top(language="zh_CN"), "InvalidLanguage", ()),
    ("expired not bool", _top(expired="no"), "InvalidType", ("expired",)),
    ("authors not array", _top(authors={"name": "x"}), "InvalidType", ("authors",)),
    ("empty author object", _top(authors=[{}]), "InvalidAuthor", ("authors[0]",)),
    ("author relative url", _top(authors=[{"url": "/about"}]), "InvalidFullLink", ()),
    ("deprecated author only", _top(authors=_DELETE, author={"name": "编辑部"}), "DeprecatedAuthor", ()),
    ("unknown top-level key", _top(homepage="https://example.com/"), "UnknownField", ("homepage",)),
    ("hub without type", _top(hubs=[{"url": "https://hub.example.com/"}]), "MissingField", ("type",)),
    ("missing items", _top(items=_DELETE), "MissingField", ("items",)),
    ("items not array", _top(items={}), "InvalidType", ("items",)),
    ("item not object", _top(items=["x"]), "InvalidType", ("items[0]",)),
    ("item without id", _item0(id=_DELETE), "MissingField", ("items[0] (title='第 0 期：大模型周报')", "id")),
    ("item id number", _item0(id=1), "InvalidType", ("items[0]", "id")),
    ("item id blank", _item0(id=""), "NotBlank", ()),
    (
        "duplicate item id",
        _jmut(lambda o: o["items"][1].update(id=o["items"][0]["id"])),
        "DuplicateValue",
        ("items[1]", "items[0]"),
    ),
    ("item without content", _item0(content_html=_DELETE, content_text=_DELETE), "MissingContent", (ITEMS0,)),
    ("content_html not string", _item0(content_html=None), "InvalidType", ("content_html",)),
    ("relative item url", _item0(url="/p/0"), "InvalidFullLink", (ITEMS0, "url")),
    ("relative external_url", _item0(external_url="p/0"), "InvalidFullLink", ("external_url",)),
    ("relative image", _item0(image="images/a.png"), "InvalidFullLink", ("image",)),
    ("relative banner_image", _item0(banner_image="../b.png"), "InvalidFullLink", ("banner_image",)),
    ("bad date_published", _item0(date_published="2026-13-01"), "InvalidRFC3339Date", (ITEMS0, "date_published")),
    ("date_modified month 13", _item0(date_modified="2026-13-01T00:00:00Z"), "InvalidRFC3339Date", ("date_modified",)),
    ("date without timezone", _item0(date_published="2026-01-01T08:00:00"), "InvalidRFC3339Date", ()),
    ("tags not strings", _item0(tags=["AI", 1]), "InvalidType", ("tags",)),
    ("tags not array", _item0(tags="AI"), "InvalidType", ("tags",)),
    ("item authors bad", _item0(authors=[{"email": "x@example.com"}]), "InvalidAuthor", ()),
    ("item language bad", _item0(language="cn"), "InvalidLanguage", ()),
    ("item deprecated author", _item0(authors=_DELETE, author={"name": "张三"}), "DeprecatedAuthor", (ITEMS0,)),
    ("unknown item key", _item0(content="x"), "UnknownField", ("content",)),
    (
        "attachment without mime_type",
        _item0(attachments=[{"url": "https://example.com/a.mp3"}]),
        "MissingField",
        ("mime_type",),
    ),
    (
        "relative url in content_html",
        _item0(content_html='<p><img src="images/a.png"></p>'),
        "ContainsRelRef",
        (ITEMS0, "images/a.png"),
    ),
    ("root relative href in content_html", _item0(content_html='<a href="/x">x</a>'), "ContainsRelRef", ("/x",)),
    ("script in content_html", _item0(content_html="<p>x</p><script>alert(1)</script>"), "SecurityRisk", ("script",)),
    ("broken content_html", _item0(content_html="<p><b>x</p>"), "NotHtml", ()),
]


@pytest.mark.parametrize("name,mutate,rule,frags", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_feed_rules(name, mutate, rule, frags):
    assert_rule(feedcheck.check_json_feed(mutate()), rule, *frags)


def test_json_feed_url_must_match_self_url():
    assert_rule(
        feedcheck.check_json_feed(good_json(), self_url="https://example.com/other.json"),
        "SelfDoesntMatchLocation",
        "other.json",
    )
