"""moto's server with DynamoDB requests serialized.

moto evaluates a DynamoDB ConditionExpression and then applies the write as two steps with no
lock between them, so two concurrent conditional writes to one item can both succeed. Real
DynamoDB never lets that happen, and forcelink's store contract tests it (two racing versioned
writes: exactly one wins). This launcher runs moto's own WSGI app on a threaded server, as
`moto_server` does, but takes one lock around every DynamoDB request (`X-Amz-Target:
DynamoDB_…`). Other services stay concurrent, so SQS long polls still wait in parallel.

    python moto_serial_dynamodb.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


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


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # As `moto_server` does: moto builds SQS queue URLs from it.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
