"""AWS Lambda entry point for the subscribe / confirm / unsubscribe endpoint (Mangum adapts ASGI to Lambda).

Package this file with `publisher[lambda]` and a newsletter folder holding publisher.toml and themes/ (content/
is not needed). Lambda has no durable disk, so that publisher.toml must keep subscribers in an SES contact list
(`[subscribers] ses_contact_list`) and send through SES (`[email] transport = "ses"`). PUBLISHER_SECRET comes
from the function's environment (from Secrets Manager or SSM); AWS credentials from the execution role.
"""

from __future__ import annotations

import os

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


# Built once per Lambda instance (a cold start), then reused for every request it serves.
handler = Mangum(_app(), lifespan="off")
