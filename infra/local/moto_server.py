"""moto's server, with DynamoDB requests serialized.

moto's DynamoDB backend is not thread-safe: concurrent requests can both pass the same
condition (two validators winning one claim) or crash with "dictionary changed size during
iteration". Real DynamoDB evaluates each conditional write and transaction atomically, so the
emulator must too for the tests to mean anything. Everything else (SQS long polls, S3) stays
concurrent.

TransactWriteItems, in moto, deep-copies every table it touches before it starts, to roll back
on failure: its cost grows with the whole table (seconds per transaction once the tests have
written a few thousand items), all of it inside the lock. `cheap_transaction_rollback` saves
only the items the transaction names, and puts them back if it fails — the same rollback.

`GET /_local/ses/raw-messages` lists the raw e-mails SES accepted (destinations, raw MIME, id)
without moto's state dump (`/moto-api/data.json`), which serializes every model — every
DynamoDB item included — under the lock above and takes tens of seconds once the tables have
grown, stalling every function that waits on DynamoDB meanwhile.

    python infra/local/moto_server.py -H 127.0.0.1 -p 5050
    python infra/local/moto_server.py --self-test
"""

import argparse
import copy
import json
import sys
import threading
import time

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_dynamodb = threading.Lock()

# A DynamoDB request slower than this (waiting for the lock included) is logged to stderr, so
# that a function timing out in the tests can be traced to the emulator's share of its time.
SLOW_SECONDS = 0.5


def serialize_dynamodb(app):
    def wrapper(environ, start_response):
        # The state dump walks every model, DynamoDB's included: it must not race their writes.
        dump = environ.get("PATH_INFO") == "/moto-api/data.json"
        if not (dump or environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB")):
            return app(environ, start_response)
        asked = time.monotonic()
        with _dynamodb:
            started = time.monotonic()
            # Produce the whole body inside the lock: the write happens while it is built.
            body = [b"".join(app(environ, start_response))]
        done = time.monotonic()
        if done - asked > SLOW_SECONDS:
            target = environ.get("HTTP_X_AMZ_TARGET", "dump").rpartition(".")[2]
            print(
                f"slow dynamodb {target}: waited {started - asked:.3f}s, ran {done - started:.3f}s",
                file=sys.stderr,
                flush=True,
            )
        return body

    return wrapper


class _TablesStayPut:
    """The `copy` module as moto's transaction sees it: a table "copied" for the rollback is the
    table itself (its touched items are saved instead); anything else is copied as usual."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _saved_items(backend, transact_items):
    """(table, hash, range, a copy of the item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            key = op.get("Key") or op["Item"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_value, range_value)
        except Exception:
            # A malformed entry: moto refuses the whole transaction before writing anything.
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved):
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


def cheap_transaction_rollback():
    transact = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = _saved_items(self, transact_items)
        dynamodb_models.copy = _TablesStayPut
        try:
            return transact(self, transact_items)
        except Exception:
            _restore(saved)
            raise
        finally:
            dynamodb_models.copy = copy

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


def serve_sent_emails(app):
    def wrapper(environ, start_response):
        if environ.get("PATH_INFO") != "/_local/ses/raw-messages":
            return app(environ, start_response)
        from moto.core.model_instances import model_data

        tracked = model_data.get("ses", {}).get("RawMessage")
        messages = [
            {"id": m.id, "source": m.source, "destinations": list(m.destinations), "raw_data": m.raw_data}
            for m in (list(tracked.instances_tracked) if tracked else [])
        ]
        body = json.dumps({"messages": messages}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapper


def self_test() -> None:
    """A failed transaction leaves no trace and a successful one writes everything, through the
    cheap rollback; checked against moto in-process."""
    import boto3
    import botocore.exceptions
    from moto import mock_aws

    cheap_transaction_rollback()
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )

        def key(pk):
            return {"pk": {"S": pk}, "sk": {"S": "1"}}

        def set_v(pk, v):
            return {
                "Update": {
                    "TableName": "t",
                    "Key": key(pk),
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": v}},
                }
            }

        def v_of(pk):
            return db.get_item(TableName="t", Key=key(pk)).get("Item", {}).get("v", {}).get("N")

        db.put_item(TableName="t", Item={**key("a"), "v": {"N": "1"}})
        failing = [
            set_v("a", "2"),
            {"Put": {"TableName": "t", "Item": {**key("c"), "v": {"N": "1"}}}},
            {"Put": {"TableName": "t", "Item": key("b"), "ConditionExpression": "attribute_exists(pk)"}},
        ]
        try:
            db.transact_write_items(TransactItems=failing)
            raise SystemExit("self-test: a transaction with a failed condition was applied")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "TransactionCanceledException", e
        assert (v_of("a"), v_of("c")) == ("1", None), "self-test: the failed transaction left writes behind"
        db.transact_write_items(TransactItems=[set_v("a", "3"), {"Delete": {"TableName": "t", "Key": key("x")}}])
        assert v_of("a") == "3", "self-test: the successful transaction was not applied"
        assert dynamodb_models.copy is copy, "self-test: moto's copy module was not given back"
    print("moto_server.py self-test: transactions roll back through the saved items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--self-test", action="store_true", help="check the transaction rollback and exit")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    cheap_transaction_rollback()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serve_sent_emails(serialize_dynamodb(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
