"""HTML from other tools to publisher Markdown (publisher/importers/convert.py): footnotes as every editor writes
them become `[^n]` notes that publisher renders back as footnotes."""

from __future__ import annotations

import re

import pytest

from publisher import markdown
from publisher.importers.convert import html_to_markdown

MARKDOWN_IT = ('<p>模型 A<sup class="footnote-ref"><a href="#fn1" id="fnref1">[1]</a></sup> and B'
               '<sup class="footnote-ref"><a href="#fn2" id="fnref2">[2]</a></sup>, A again'
               '<sup class="footnote-ref"><a href="#fn1" id="fnref1:1">[1]</a></sup>.</p>'
               '<hr class="footnotes-sep"><section class="footnotes"><ol class="footnotes-list">'
               '<li id="fn1" class="footnote-item"><p>第一条 with <a href="https://a.example/x">a link</a> '
               '<a href="#fnref1" class="footnote-backref">↩︎</a></p><p>A second paragraph.</p></li>'
               '<li id="fn2" class="footnote-item"><p>Two <a href="#fnref2" class="footnote-backref">↩︎</a></p></li>'
               '</ol></section>')
SUBSTACK = ('<p>Text<a class="footnote-anchor" data-component-name="FootnoteAnchorToDOM" id="footnote-anchor-1" '
            'href="#footnote-1" target="_self">1</a> more.</p>'
            '<div class="footnote" data-component-name="FootnoteToDOM"><a id="footnote-1" href="#footnote-anchor-1" '
            'class="footnote-number" contenteditable="false" target="_self">1</a>'
            '<div class="footnote-content"><p>The note 内容.</p></div></div>')
WORDPRESS = ('<p>Claim<sup id="fnref:1"><a href="#fn:1" class="footnote-ref" role="doc-noteref">1</a></sup>.</p>'
             '<div class="footnotes" role="doc-endnotes"><hr><ol><li id="fn:1" role="doc-endnote">'
             '<p>Source.&nbsp;<a href="#fnref:1" class="footnote-backref" role="doc-backlink">↩︎</a></p></li>'
             '</ol></div>')


@pytest.mark.parametrize(("html", "refs", "notes"), [(MARKDOWN_IT, 3, 2), (SUBSTACK, 1, 1), (WORDPRESS, 1, 1)],
                         ids=["markdown-it-ghost", "substack", "wordpress"])
def test_footnotes_become_markdown_footnotes(html, refs, notes):
    md = html_to_markdown(html)
    assert len(re.findall(r"\[\^\d+\](?!:)", md)) == refs
    assert len(re.findall(r"^\[\^\d+\]: ", md, re.M)) == notes
    assert "↩" not in md and "#fnref" not in md and "#footnote-anchor" not in md  # back-references dropped
    rendered = markdown.to_html(md)  # and publisher renders them as footnotes again
    assert rendered.count('class="footnote-ref"') == refs
    assert rendered.count('class="footnote-item"') == notes


def test_a_note_keeps_its_links_paragraphs_and_chinese_text():
    md = html_to_markdown(MARKDOWN_IT)
    assert md.endswith("[^1]: 第一条 with [a link](https://a.example/x)\n\n    A second paragraph.\n\n[^2]: Two\n")
    assert md.startswith("模型 A[^1] and B[^2], A again[^1].")


def test_a_link_to_an_ordinary_anchor_is_not_a_footnote():
    md = html_to_markdown('<p>See <a href="#usage">usage</a>.</p><h2 id="usage">Usage</h2><p>Text</p>')
    assert "[usage](#usage)" in md and "[^" not in md


def test_many_posts_are_converted_on_every_core_to_the_same_markdown():
    from publisher.importers import writer

    jobs = [(MARKDOWN_IT.replace("模型 A", f"模型 {n}"), f"https://old.example/p/{n}") for n in range(80)]
    jobs[5] = ("<div>" * 5000 + "x" + "</div>" * 5000, None)  # too deep: reported, not a crash of the pool
    jobs[7] = None  # a Markdown post: nothing to convert
    serial = writer.convert_all(jobs, workers=1)
    parallel = writer.convert_all(jobs, workers=2)
    assert len(jobs) >= writer.PARALLEL_MIN and parallel == serial
    assert parallel[5].too_deep and parallel[7] is None and parallel[9].markdown.startswith("模型 9[^1]")
