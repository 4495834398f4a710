"""AWS Lambda entry point for the subscribe / confirm / unsubscribe endpoint (Mangum adapts ASGI to Lambda).

Package this file with `publisher[lambda]` and a newsletter folder holding publisher.toml and themes/ (content/
is not needed). Lambda has no durable disk, so that publisher.toml must keep subscribers in an SES contact list
(`[subscribers] ses_contact_list`) and send through SES (`[email] transport = "ses"`). PUBLISHER_SECRET comes
from the function's environment (from Secrets Manager or SSM); AWS credentials from the execution role.

The endpoint queues each sign-up for a background thread, but Lambda freezes an instance as soon as the handler
returns, so `handler` waits for that queue to empty before returning. The reader's answer therefore comes after
the confirmation email went out here, and a new address takes longer than a known one (under `publisher serve`
the answer comes first). To close that gap on Lambda, hand the queue to SQS or an asynchronous invocation.
"""

from __future__ import annotations

import os
from typing import Any

from mangum import Mangum

from publisher.config import load_config
from publisher.errors import PublisherError
from publisher.subscription import create_app

ROOT = os.environ.get("PUBLISHER_ROOT", os.path.join(os.path.dirname(__file__), "newsletter"))


def _app():  # type: ignore[no-untyped-def]
    config = load_config(ROOT)
    if not config.subscribers.ses_contact_list:
        raise PublisherError("on Lambda, subscribers must live in an SES contact list: set "
                             "[subscribers] ses_contact_list (SQLite needs a durable disk)",
                             file=config.file.name, field="subscribers.ses_contact_list")
    return create_app(config)


DRAIN_SECONDS = 20.0  # keep the function's timeout above this

# Built once per Lambda instance (a cold start), then reused for every request it serves.
app = _app()
adapter = Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return adapter(event, context)
    finally:
        app.state.endpoint.worker.drain(DRAIN_SECONDS)  # a frozen instance would never send what is queued
