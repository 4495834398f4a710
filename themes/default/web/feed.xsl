<?xml version="1.0" encoding="UTF-8"?>
<!-- Makes rss.xml and atom.xml readable in a browser: the feed stays a feed for readers (they ignore this),
     and a person who opens it sees the issues and how to subscribe. -->
{# A template (not a static file), rendered to static/feed.xsl in the site's language. A theme's own
    web/static/feed.xsl is copied instead. Not autoescaped: each word goes through |e. #}
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/">
    <xsl:variable name="title" select="rss/channel/title | atom:feed/atom:title"/>
    <xsl:variable name="lang" select="rss/channel/language | atom:feed/@xml:lang"/>
    <xsl:variable name="self" select="rss/channel/atom:link[@rel='self']/@href | atom:feed/atom:link[@rel='self']/@href"/>
    <xsl:variable name="home" select="rss/channel/link | atom:feed/atom:link[@rel='alternate']/@href"/>
    <html lang="{$lang}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="color-scheme" content="light dark"/>
        <title><xsl:value-of select="$title"/> · {{ _("web feed")|e }}</title>
        <style>
          body { margin: 0 auto; max-width: 42rem; padding: 1.25rem; line-height: 1.7; color-scheme: light dark;
                 font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "PingFang SC", "Microsoft YaHei",
                 "Noto Sans CJK SC", sans-serif; }
          .hint { border: 1px solid #d8dee4; border-radius: 0.5rem; padding: 0.75rem 1rem; background: #f3f4f61a; }
          .url { display: flex; gap: 0.5rem; margin-top: 0.5rem; }
          .url input { flex: 1; min-width: 0; font: inherit; padding: 0.25rem 0.5rem; }
          .url button { font: inherit; padding: 0.25rem 0.75rem; cursor: pointer; }
          li { margin: 0.75rem 0; } .date { color: #59636e; font-size: 0.9rem; }
        </style>
      </head>
      <body>
        <h1><xsl:value-of select="$title"/></h1>
        <div class="hint" id="subscribe">
          <strong>{{ _("This is a web feed.")|e }}</strong> {{ _("Copy its address into your feed reader (NetNewsWire, Feedly, Inoreader, Thunderbird, newsboat, …) to get every new issue.")|e }}
          <div class="url">
            <input id="feed-url" readonly="readonly" value="{$self}" aria-label="{{ _('Feed URL')|e }}"/>
            <button type="button" onclick="navigator.clipboard.writeText(document.getElementById('feed-url').value); this.textContent='✓';">{{ _("Copy feed URL")|e }}</button>
          </div>
        </div>
        <p><a href="{$home}">← <xsl:value-of select="$title"/></a></p>
        <ol reversed="reversed">
          <xsl:for-each select="rss/channel/item | atom:feed/atom:entry">
            <li>
              <a href="{link | atom:link[@rel='alternate']/@href | atom:link[not(@rel)]/@href}">
                <xsl:value-of select="title | atom:title"/>
              </a>
              <div class="date"><xsl:value-of select="pubDate | atom:published"/></div>
            </li>
          </xsl:for-each>
        </ol>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
