"""moto's server, with DynamoDB requests serialized.

moto's DynamoDB backend is not thread-safe: concurrent requests can both pass the same
condition (two validators winning one claim) or crash with "dictionary changed size during
iteration". Real DynamoDB evaluates each conditional write and transaction atomically, so the
emulator must too for the tests to mean anything. Everything else (SQS long polls, S3) stays
concurrent.

    python infra/local/moto_server.py -H 127.0.0.1 -p 5050
"""

import argparse
import threading

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_dynamodb = threading.Lock()


def serialize_dynamodb(app):
    def wrapper(environ, start_response):
        # The state dump walks every model, DynamoDB's included: it must not race their writes.
        dump = environ.get("PATH_INFO") == "/moto-api/data.json"
        if not (dump or environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB")):
            return app(environ, start_response)
        with _dynamodb:
            # Produce the whole body inside the lock: the write happens while it is built.
            return [b"".join(app(environ, start_response))]

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialize_dynamodb(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
