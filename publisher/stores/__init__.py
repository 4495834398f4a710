"""Subscriber stores, one module per store, each implementing the `Store` protocol of `publisher.subscribers`.

Today this package holds the DynamoDB store (`dynamodb.py`) and the SQLite-to-DynamoDB migration (`migrate.py`).
The SQLite store (`SqliteStore`, now in `publisher/subscribers.py`) and the SES contact-list store (now
`publisher/ses_contacts.py`) will move here as `sqlite.py` and `ses_contacts.py`, with the `Store` protocol in
this package; that move also ends the subscribers <-> ses_contacts import circle (see docs/DESIGN.md). Until then,
`publisher.subscribers.open_store` picks the store and imports each non-default one lazily.
"""
