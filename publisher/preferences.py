"""The preferences page of `publisher serve`: what a reader changes from the link in the footer of every email.

- GET (and HEAD) /preferences?token=...: the page, in the site's language, for the address the token names. It
  changes nothing (mail scanners open every link). Each action is its own small POST form to the same URL (the
  token in it), so the page works with JavaScript off:
  `topics` (exactly the declared `subscribers.topics` ticked become the subscriber's topic tags; other tags stay),
  `pause` (`weeks` = 1, 2, 4 or 8: no issue is sent before then; `sending.Ledger.snapshot` skips the address),
  `resume` (the pause ends now), `address` (a confirmation to the NEW address, see below), `unsubscribe`, and
  `download` (the reader's data, `privacy.export_person`, as a JSON attachment: a POST, so that no prefetch or
  link scanner ever fetches a person's data, and the answer is never cached).
- The token: purpose "preferences", the address and the list, no expiry, as the unsubscribe token (emails.py
  makes both). A bad, forged, other-purpose or other-list token, or one for an address no longer in the store
  (forgotten, moved to a new address), gets the same neutral page as a bad unsubscribe link.
- Change of address: the POST answers the same whatever the new address is (known, unknown, suppressed): the
  work runs on the endpoint's worker thread, like a sign-up, and sends a confirmation to the new address only
  (token purpose "change-address": old and new address, an expiry of `serve.confirm_within`, and bound to the
  record's identity, its creation and status, so an unsubscribe in between voids it). GET (and HEAD)
  /change-address?token=... shows a button; its POST moves the record: name, tags, status, pause and creation time
  go with it, the ledger rows stay under the old address. If the new address is already a subscriber the two are
  merged and the more restrictive status wins (`subscribers.merge_change`): a suppressed address stays suppressed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from . import privacy
from .config import Topic
from .errors import PublisherError
from .messages import N_
from .subscribers import Subscriber, normalize_email
from .tokens import make_token

if TYPE_CHECKING:
    from .subscription import Endpoint

log = logging.getLogger(__name__)

WEEKS = (1, 2, 4, 8)  # the choices of "pause for"
PREFERENCES, CHANGE_ADDRESS = "preferences", "change-address"  # the tokens' purposes (and the routes' names)
DOWNLOAD_NAME = "newsletter-data.json"

TEXT = {
    "title": N_("Your preferences"),
    "for": N_("These settings are for %(email)s."),
    "topics": N_("Topics"),
    "topics_help": N_("Choose what you want to receive."),
    "save_topics": N_("Save topics"),
    "saved": N_("Your topics are saved."),
    "pause": N_("Pause"),
    "pause_for": N_("Pause for"),
    "week": N_("1 week"),
    "weeks": N_("%(num)s weeks"),
    "pause_button": N_("Pause the newsletter"),
    "paused": N_("Paused until %(date)s: no issue reaches you before then."),
    "resume": N_("Resume now"),
    "resumed": N_("The pause is over: the next issue reaches you."),
    "address": N_("Change address"),
    "new_address": N_("New address"),
    "address_button": N_("Send a confirmation"),
    "address_sent": N_("If this address can receive the newsletter, we have sent it a confirmation email: click its "
                       "link to finish the change."),
    "unsubscribe": N_("Unsubscribe"),
    "unsubscribe_help": N_("Stop receiving this newsletter."),
    "data": N_("Your data"),
    "data_help": N_("Everything this newsletter holds about you, as a JSON file."),
    "download": N_("Download my data"),
    "inactive": N_("This address does not receive the newsletter."),
    "change_q": N_("Change your address"),
    "change_q_body": N_("Press the button to receive this newsletter at %(email)s."),
    "changed": N_("Address changed"),
    "changed_body": N_("This newsletter now goes to %(email)s."),
}


def identity(subscriber: Subscriber) -> str:
    """A fingerprint of a record's identity for change-address tokens: its creation (a forgotten and added again
    address is another record) and its status (an unsubscribe voids a pending change). Unlike the confirm
    tokens' `record_version`, a saved topic or a pause does not void the link."""
    digest = hashlib.sha256(f"{subscriber.created}|{subscriber.status}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode("ascii")


def iso_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


class PreferencesPages:
    """The /preferences and /change-address routes, on the subscribe endpoint's machinery (its store, worker,
    rate limits, pages and security headers)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.ep = endpoint
        self.config = endpoint.config
        said = endpoint.messages
        self.said = said
        self.text = {key: said.gettext(msgid) for key, msgid in TEXT.items()}
        self.topics: tuple[Topic, ...] = endpoint.config.subscribers.topics

    # ---- helpers ----

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ep.clock(), UTC)

    def bad(self) -> HTMLResponse:
        return self.ep.page(self.ep.text["bad"], self.ep.text["bad_body"], 400)

    def _get(self, email: str) -> Subscriber | None:
        with self.ep.store() as store:
            return store.get(email)

    @staticmethod
    def _form(token: str, action: str, inner: str) -> str:
        return (f'<form method="post" action="?token={html.escape(token)}">'
                f'<input type="hidden" name="action" value="{action}">{inner}</form>')

    def _fieldset(self, token: str, action: str, legend: str, inner: str) -> str:
        return self._form(token, action, f"<fieldset><legend>{html.escape(legend)}</legend>{inner}</fieldset>")

    def _button(self, label: str) -> str:
        return f'<button type="submit">{html.escape(label)}</button>'

    def _weeks_label(self, weeks: int) -> str:
        return self.text["week"] if weeks == 1 else self.said.gettext(TEXT["weeks"], num=self.said.format_number(weeks))

    def _topic_labels(self, topic: Topic) -> str:
        shown, second = topic.labels(self.config.site.language)
        out = html.escape(shown)
        if second:
            english = second == topic.label_en
            lang = ' lang="en"' if english and not self.config.site.language.lower().startswith("en") else ""
            out += f' <span{lang}>({html.escape(second)})</span>'
        return out

    def render(self, token: str, subscriber: Subscriber, notice: str = "", status: int = 200) -> HTMLResponse:
        """The page for `subscriber` as it is now: one form per action."""
        text = self.text
        said_for = self.said.gettext(TEXT["for"], email=subscriber.email)
        parts = [f'<p role="status">{html.escape(notice)}</p>' if notice else ""]
        if subscriber.status == "active":
            if self.topics:
                held = set(subscriber.tags)
                boxes = "".join(
                    f'<div><input type="checkbox" id="topic-{n}" name="topic-{n}" value="1"'
                    f'{" checked" if topic.tag in held else ""}> <label for="topic-{n}">{self._topic_labels(topic)}'
                    f"</label></div>" for n, topic in enumerate(self.topics))
                parts.append(self._fieldset(token, "topics", text["topics"], f"<p>{html.escape(text['topics_help'])}"
                                            f"</p>{boxes}<p>{self._button(text['save_topics'])}</p>"))
            paused = subscriber.paused_at(iso_time(self.now()))
            if paused:
                until = datetime.fromisoformat(subscriber.paused_until).astimezone(self.config.site.timezone)
                line = self.said.gettext(TEXT["paused"], date=self.said.format_date(until))
                parts.append(self._fieldset(token, "resume", text["pause"],
                                            f"<p>{html.escape(line)}</p><p>{self._button(text['resume'])}</p>"))
            else:
                options = "".join(f'<option value="{w}">{html.escape(self._weeks_label(w))}</option>' for w in WEEKS)
                parts.append(self._fieldset(token, "pause", text["pause"],
                                            f'<p><label for="weeks">{html.escape(text["pause_for"])}</label> '
                                            f'<select id="weeks" name="weeks">{options}</select></p>'
                                            f"<p>{self._button(text['pause_button'])}</p>"))
            parts.append(self._fieldset(token, "address", text["address"],
                                        f'<p><label for="new-email">{html.escape(text["new_address"])}</label> '
                                        f'<input type="email" id="new-email" name="email" autocomplete="email" '
                                        f'required maxlength="254"></p><p>{self._button(text["address_button"])}</p>'))
            parts.append(self._fieldset(token, "unsubscribe", text["unsubscribe"],
                                        f"<p>{html.escape(text['unsubscribe_help'])}</p>"
                                        f"<p>{self._button(text['unsubscribe'])}</p>"))
        else:
            parts.append(f"<p>{html.escape(text['inactive'])}</p>")
        parts.append(self._fieldset(token, "download", text["data"], f"<p>{html.escape(text['data_help'])}</p>"
                                    f"<p>{self._button(text['download'])}</p>"))
        return self.ep.page(text["title"], said_for, status, form="".join(parts))

    # ---- /preferences ----

    async def preferences(self, request: Request) -> Response:
        """GET and HEAD show the page and change nothing; POST does one action (the form's `action`)."""
        token, data = self.ep._verify(request, PREFERENCES)
        if data is None:
            return self.bad()
        subscriber = await run_in_threadpool(self._get, data.email)
        if subscriber is None:  # forgotten, or moved to another address: as a bad link (no enumeration)
            return self.bad()
        if request.method != "POST":
            return self.render(token, subscriber)
        fields = await self.ep.body(request)
        if fields is None:
            return PlainTextResponse(self.ep.text["too_large"], status_code=413, headers=self.headers())
        action = fields.get("action", "")
        if action == "download":
            return await run_in_threadpool(self._download, data.email)
        if action == "unsubscribe":
            await run_in_threadpool(self.ep._unsubscribe, data.email)
            return self.ep.page(self.ep.text["unsubscribed"], self.ep.text["unsubscribed_body"])
        if subscriber.status != "active":  # nothing else to change for an address that gets no issues
            return self.render(token, subscriber)
        notice = ""
        if action == "topics":
            chosen = [t.tag for n, t in enumerate(self.topics) if fields.get(f"topic-{n}")]
            await run_in_threadpool(self._set_topics, data.email, chosen)
            notice = self.text["saved"]
        elif action == "pause":
            weeks = fields.get("weeks", "")
            if weeks.isdigit() and int(weeks) in WEEKS:
                until = iso_time(self.now() + timedelta(weeks=int(weeks)))
                await run_in_threadpool(self._pause, data.email, until)
        elif action == "resume":
            await run_in_threadpool(self._pause, data.email, "")
            notice = self.text["resumed"]
        elif action == "address":
            answer = self._change_address(request, subscriber, fields.get("email", ""))
            if answer is not None:
                return answer
            notice = self.text["address_sent"]
        current = await run_in_threadpool(self._get, data.email)
        if current is None:
            return self.bad()
        return self.render(token, current, notice)

    @staticmethod
    def headers() -> dict[str, str]:
        from .subscription import SECURITY_HEADERS

        return dict(SECURITY_HEADERS)

    def _set_topics(self, email: str, chosen: list[str]) -> None:
        declared = {t.tag for t in self.topics}
        with self.ep.store() as store:
            current = store.get(email)
            if current is None:
                return
            tags = [t for t in current.tags if t not in declared] + chosen
            try:
                store.set_tags(email, tags)
            except PublisherError as exc:  # over the tag limit: nothing is saved
                log.info("preferences: topics of %s not saved: %s", email, exc)

    def _pause(self, email: str, until: str) -> None:
        with self.ep.store() as store:
            store.set_paused(email, until)

    def _download(self, email: str) -> Response:
        with self.ep.store() as store:
            try:
                data = privacy.export_person(self.config, email, store=store)
            except PublisherError:
                return self.bad()
            record = data.get("subscriber")
            if isinstance(record, dict) and "paused_until" not in record:
                current = store.get(email)
                record["paused_until"] = current.paused_until if current else ""
        body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        return Response(body, media_type="application/json", headers={
            **self.headers(), "Content-Disposition": f'attachment; filename="{DOWNLOAD_NAME}"'})

    def _change_address(self, request: Request, subscriber: Subscriber, value: str) -> Response | None:
        """Queue the confirmation to the new address; None means "answer that it was sent" (whatever the address
        is: known or not, the answer and its timing are the same). A Response is a refusal that does not depend on
        the store: a malformed address, too many requests."""
        try:
            new = normalize_email(value)
        except ValueError:
            return self.ep.page(self.ep.text["invalid"], self.ep.text["invalid_body"], 400)
        if not self.ep.per_ip.allow(self.ep.client(request)) or not self.ep.per_address.allow(new):
            return self.ep.page(self.ep.text["slow"], self.ep.text["slow_body"], 429)
        if not self.ep.worker.submit(lambda: self._send_change(subscriber.email, new)):
            return self.ep.page(self.ep.text["slow"], self.ep.text["slow_body"], 503)
        return None

    def _send_change(self, old: str, new: str) -> None:
        """On the worker thread: the confirmation to the new address (nothing if the record is gone meanwhile, or
        the address is the same)."""
        current = self._get(old)
        if current is None or current.status != "active" or new == old:
            return
        expires = int(self.ep.clock() + self.config.serve.confirm_within.total_seconds())
        token = make_token(self.ep.secret, CHANGE_ADDRESS, old, self.ep.sender.list_id, expires=expires,
                           version=identity(current), new=new)
        self.ep.send_templated("change_address", new, current.name, f"{self.ep.base}{CHANGE_ADDRESS}?token={token}")

    # ---- /change-address ----

    def _change_state(self, old: str, new: str, version: str | None) -> str | None:
        """"pending" (this token may move the record), "done" (it has moved already: a second click is fine), or
        None (the record is gone or changed: an unsubscribe in between voids the link)."""
        with self.ep.store() as store:
            current = store.get(old)
            if current is not None:
                return "pending" if current.status == "active" and identity(current) == version else None
            moved = store.get(new)
            return "done" if moved is not None and identity(moved) == version else None

    def _apply_change(self, old: str, new: str, version: str | None) -> str | None:
        with self.ep.store() as store:
            current = store.get(old)
            if current is None:
                moved = store.get(new)
                return "done" if moved is not None and identity(moved) == version else None
            if current.status != "active" or identity(current) != version:
                return None
            store.change_email(old, new)
            return "done"

    async def change_address(self, request: Request) -> Response:
        """GET and HEAD show a button (and change nothing); POST moves the record to the new address."""
        token, data = self.ep._verify(request, CHANGE_ADDRESS, now=self.ep.clock())
        if data is None or not data.new:
            return self.bad()
        if request.method != "POST":
            state = await run_in_threadpool(self._change_state, data.email, data.new, data.version)
        else:
            try:
                state = await run_in_threadpool(self._apply_change, data.email, data.new, data.version)
            except PublisherError as exc:  # a store that cannot rename (SES contact lists)
                log.error("change-address: %s", exc)
                return self.ep.page(self.ep.text["error"], "", 500)
        if state is None:
            return self.bad()
        if state == "done":
            return self.ep.page(self.text["changed"], self.said.gettext(TEXT["changed_body"], email=data.new))
        return self.ep.page(self.text["change_q"], self.said.gettext(TEXT["change_q_body"], email=data.new),
                            form=self.ep.button(token, self.text["address"]))
