"""moto's server with DynamoDB requests serialized.

moto evaluates a DynamoDB ConditionExpression and then applies the write as two steps with no
lock between them, so two concurrent conditional writes to one item can both succeed. Real
DynamoDB never lets that happen, and forcelink's store contract tests it (two racing versioned
writes: exactly one wins). This launcher runs moto's own WSGI app on a threaded server, as
`moto_server` does, but takes one lock around every DynamoDB request (`X-Amz-Target:
DynamoDB_…`). Other services stay concurrent, so SQS long polls still wait in parallel.

It also sets moto's DynamoDB item size limit to DynamoDB's documented 400 KB (409,600 bytes;
moto refuses above 405,000 bytes), so an item of exactly 400 KB passes on moto as on AWS
(forcelink's store contract writes one; see shared/src/ports/item_size.rs).

`GET /forcelink-test/ses-raw/{message id}` answers the raw message moto's SES recorded under that
id (the mailer contract reads back what SES "sent"). moto's own `/moto-api/data.json` serializes
every model of every service, which takes minutes once a test run has filled DynamoDB.

    python moto_serial_dynamodb.py HOST PORT
"""

import os
import sys
import threading

from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

# DynamoDB's item size limit: 400 KB, binary units (the "Constraints in Amazon DynamoDB" page).
MAX_ITEM_BYTES = 400 * 1024


def _size(value):
    return value.size() if isinstance(value, dynamo_type.DynamoType) else dynamo_type.bytesize(str(value))


def _limited_setitem(self, key, value):
    """moto's `LimitedSizeDict.__setitem__` with DynamoDB's limit instead of moto's 405,000."""
    current = sum(_size(k) + _size(v) for k, v in self.items())
    if current + dynamo_type.bytesize(key) + _size(value) > MAX_ITEM_BYTES:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


dynamo_type.LimitedSizeDict.__setitem__ = _limited_setitem


class SerialDynamoDB:
    """WSGI middleware: one DynamoDB request at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # Consume the whole response under the lock: the write happens while it is built.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class SesRawMessages:
    """WSGI middleware: `GET /forcelink-test/ses-raw/{id}` → the raw message SES recorded, or 404."""

    PREFIX = "/forcelink-test/ses-raw/"

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.PREFIX):
            return self.app(environ, start_response)
        from moto.ses.models import ses_backends

        wanted = path[len(self.PREFIX):]
        for account in list(ses_backends.values()):
            for backend in list(account.values()):
                for message in list(backend.sent_messages):
                    if getattr(message, "id", None) == wanted and hasattr(message, "raw_data"):
                        start_response("200 OK", [("Content-Type", "message/rfc822")])
                        return [message.raw_data.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such SES message"]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # As `moto_server` does: moto builds SQS queue URLs from it.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SesRawMessages(SerialDynamoDB(app)), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
