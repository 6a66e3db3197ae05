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

`GET /_local/requests` counts the AWS requests the emulator answered since the last
`DELETE /_local/requests` (issue 14: what a sale costs), by caller, service and operation, and for
DynamoDB the read and write request units AWS would bill on demand, by table. The service comes
from the SigV4 credential scope (`…/us-east-1/dynamodb/aws4_request`), the operation from
`X-Amz-Target` (JSON protocols), the form's `Action` (query protocol) or, for the REST services
(S3, SESv2), from method, path and query. The caller is told apart by how it signs: a function's
SDK runs with `AWS_EXECUTION_ENV` set and says `exec-env/AWS_Lambda…` in its user agent
("function"); the gateway's SQS pollers — Lambda's event source mappings, whose requests AWS
bills too — sign with a session token ("event-source"); anything else is the tests, provisioning
or a person ("other"). A ReceiveMessage that returned nothing is counted as `empty_receives`:
an idle poll costs by the hour, not by the sale. The report's `journal` lists the last 2,000
counted requests in order, each with the function that made it (the SDK's `app/<name>`
user-agent token, which every function sets to its own name) and its units.

The units follow https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
and read moto's own tables before and after each call — consistent because DynamoDB calls are
serialized by the lock above. Sizes are DynamoDB's, not moto's `Item.size()` (which counts a
number's characters, base64 text for binaries and no list or map overhead): attribute names plus
values, a number one byte per two significant digits plus one, binaries their raw bytes, lists
and maps 3 bytes plus 1 per element. Writes: ceil(size / 1 KB) per item, the larger of the old
and new image, at least 1; per secondary index one write of its projected entry when the item
enters or leaves it or its projected attributes change, two when its index key changes, none when
the index is untouched (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes);
everything doubled in TransactWriteItems (index writes included, by this project's choice: AWS
documents two underlying writes per transactional item, not what its index writes cost), a
ConditionCheck one transactional write of the item it reads. A write refused by its condition
still costs the existing item's size (at least 1), without index writes. Reads: ceil(size /
4 KB), at least 1, halved when eventually consistent, doubled in TransactGetItems, each item of
a BatchGetItem rounded on its own; a Query or Scan rounds the summed size of the items it
evaluated (index entries for an index) before its filter. PartiQL is counted, not priced.

    python infra/local/moto_server.py -H 127.0.0.1 -p 5050
    python infra/local/moto_server.py --self-test
"""

import argparse
import base64
import copy
import inspect
import io
import json
import math
import os
import re
import sys
import threading
import time
from urllib.parse import parse_qs

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


# ---- Requests per service and operation, DynamoDB units (GET/DELETE /_local/requests) ----

_ledger_lock = threading.Lock()
_ledger: dict = {}
_ledger_since = [time.time()]
# The DynamoDB request this thread is answering: Query and Scan add what they evaluated here.
_current = threading.local()

KB = 1024
READ_BLOCK = 4 * KB


def _number_size(text: str) -> int:
    mantissa = text.strip().lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = len(mantissa.strip("0"))
    return (digits + 1) // 2 + 1 + (1 if text.strip().startswith("-") else 0)


def _raw_size(value) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value))
    except Exception:
        return len(str(value).encode())


def _value_size(value: DynamoType) -> int:
    kind, inner = value.type, value.value
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return _raw_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in inner)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(_raw_size(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(DynamoType(v)) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(DynamoType(v)) for k, v in inner.items())
    return len(str(inner).encode())


def item_size(attrs: dict) -> int:
    """An item's size by DynamoDB's rules (attribute name -> DynamoType)."""
    return sum(len(name.encode()) + _value_size(DynamoType(value)) for name, value in attrs.items())


def _plain(value: DynamoType):
    if value.type == "L":
        return {"L": [_plain(DynamoType(v)) for v in value.value]}
    if value.type == "M":
        return {"M": {k: _plain(DynamoType(v)) for k, v in value.value.items()}}
    if value.type in ("SS", "NS", "BS"):
        return {value.type: sorted(str(v) for v in value.value)}
    return {value.type: str(value.value)}


def _indexes(table: Table) -> list:
    return list(table.global_indexes or []) + list(table.indexes or [])


def _index_entry(table: Table, index, attrs: dict):
    """(index key, projected size, projected image) of an item in `index`, or None when the
    item lacks one of the index's key attributes (a sparse index leaves it out)."""
    keys = [k["AttributeName"] for k in index.schema]
    if not all(k in attrs for k in keys):
        return None
    projection = index.projection or {}
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        projected = dict(attrs)
    else:
        names = {table.hash_key_attr, table.range_key_attr, *keys}
        if kind == "INCLUDE":
            names.update(projection.get("NonKeyAttributes", []))
        projected = {n: v for n, v in attrs.items() if n in names}
    image = json.dumps({n: _plain(DynamoType(v)) for n, v in projected.items()}, sort_keys=True)
    key = json.dumps([_plain(DynamoType(attrs[k])) for k in keys])
    return key, item_size(projected), image


def _footprint(table: Table, item):
    """What a write is priced on: the item's size and its entry in each index."""
    if item is None:
        return 0, {}
    attrs = item.attrs
    return item_size(attrs), {index.name: _index_entry(table, index, attrs) for index in _indexes(table)}


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_BLOCK))
    return float(units) if consistent else units / 2


def _index_writes(before, after) -> int:
    if before is None and after is None:
        return 0
    if before is None:
        return _write_units(after[1])
    if after is None:
        return _write_units(before[1])
    if before[0] != after[0]:
        return _write_units(before[1]) + _write_units(after[1])
    if before[2] != after[2]:
        return _write_units(max(before[1], after[1]))
    return 0


def _key_of(table: Table, attrs: dict):
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _stored(table: Table, key):
    try:
        return table.get_item(*key)
    except Exception:
        return None


def _dynamodb_backend(environ, scope):
    from moto.dynamodb.models import dynamodb_backends

    account = os.environ.get("MOTO_ACCOUNT_ID") or environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if not account:
        from moto.iam.models import get_account_id_from

        account = get_account_id_from(scope[0])
    return dynamodb_backends[account][scope[2]]


def _write_targets(backend, operation: str, request: dict) -> list:
    """(table, key, kind, transactional) for every item a write request names."""
    named = []
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        named.append((request.get("TableName"), request.get("Key") or request.get("Item"), "write", False))
    elif operation == "BatchWriteItem":
        for table_name, entries in (request.get("RequestItems") or {}).items():
            for entry in entries:
                op = entry.get("PutRequest") or entry.get("DeleteRequest") or {}
                named.append((table_name, op.get("Key") or op.get("Item"), "write", False))
    elif operation == "TransactWriteItems":
        for entry in request.get("TransactItems") or []:
            for kind, op in entry.items():
                named.append(
                    (op.get("TableName"), op.get("Key") or op.get("Item"), "check" if kind == "ConditionCheck" else "write", True)
                )
    targets = []
    for table_name, attrs, kind, transactional in named:
        try:
            table = backend.tables[table_name]
            key = _key_of(table, attrs)
        except Exception:
            continue  # moto refuses the request; nothing is written
        targets.append((table, key, kind, transactional, _footprint(table, _stored(table, key))))
    return targets


def _read_targets(backend, operation: str, request: dict) -> list:
    """(table, key, units multiplier, consistent) for every item a point read names."""
    named = []
    if operation == "GetItem":
        named.append((request.get("TableName"), request.get("Key"), 1, bool(request.get("ConsistentRead"))))
    elif operation == "BatchGetItem":
        for table_name, spec in (request.get("RequestItems") or {}).items():
            for key in spec.get("Keys") or []:
                named.append((table_name, key, 1, bool(spec.get("ConsistentRead"))))
    elif operation == "TransactGetItems":
        for entry in request.get("TransactItems") or []:
            op = entry.get("Get") or {}
            named.append((op.get("TableName"), op.get("Key"), 2, True))
    targets = []
    for table_name, attrs, times, consistent in named:
        try:
            table = backend.tables[table_name]
            targets.append((table, _key_of(table, attrs), times, consistent))
        except Exception:
            continue
    return targets


def _dynamodb_units(environ, scope, operation: str, body: bytes, run):
    """Runs the request (`run()` returns (status, body)); returns (status, body, units) where
    units maps a table to [read units, write units, of which index writes]."""
    try:
        request = json.loads(body or b"{}")
        backend = _dynamodb_backend(environ, scope)
        writes = _write_targets(backend, operation, request)
        reads = _read_targets(backend, operation, request)
    except Exception:
        request, backend, writes, reads = {}, None, [], []
    _current.evaluated = []
    try:
        status, response = run()
    finally:
        evaluated, _current.evaluated = _current.evaluated, None
    units: dict = {}

    def add(table_name, read=0.0, write=0, index=0):
        entry = units.setdefault(table_name, [0.0, 0, 0])
        entry[0] += read
        entry[1] += write + index
        entry[2] += index

    for table_name, size, consistent in evaluated:
        add(table_name, read=_read_units(size, consistent))
    ok = status.startswith("2")
    refused = False
    if not ok:
        try:
            refused = json.loads(response).get("__type", "").rpartition("#")[2] in (
                "ConditionalCheckFailedException",
                "TransactionCanceledException",
            )
        except Exception:
            refused = False
    for table, key, kind, transactional, (old_size, old_entries) in writes:
        times = 2 if transactional else 1
        if kind == "check" or not ok:
            if ok or refused:
                add(table.name, write=times * _write_units(old_size))
            continue
        new_size, new_entries = _footprint(table, _stored(table, key))
        index = sum(_index_writes(old_entries.get(n), new_entries.get(n)) for n in set(old_entries) | set(new_entries))
        add(table.name, write=times * _write_units(max(old_size, new_size)), index=times * index)
    if ok:
        for table, key, times, consistent in reads:
            item = _stored(table, key)
            add(table.name, read=times * _read_units(item_size(item.attrs) if item else 0, consistent))
    return status, response, units


def count_evaluated_reads():
    """Query and Scan note the size of the items they evaluate — after the key condition and
    the index's projection, before the filter and the ProjectionExpression — which is what
    DynamoDB bills. moto runs them with neither; the filter and projection are applied here
    exactly as moto applies them."""

    def counted(original, filter_name, projection_name):
        signature = inspect.signature(original)

        def run(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            evaluated = getattr(_current, "evaluated", None)
            if evaluated is None:
                return original(*bound.args, **bound.kwargs)
            filter_expression = bound.arguments.get(filter_name)
            projection = bound.arguments.get(projection_name)
            bound.arguments[filter_name] = None
            bound.arguments[projection_name] = None
            results, scanned, last_key = original(*bound.args, **bound.kwargs)
            consistent = bool(bound.arguments.get("consistent_read")) and not bound.arguments.get("index_name")
            evaluated.append((self.name, sum(item_size(r.attrs) for r in results), consistent))
            if filter_expression is not None:
                results = [r for r in results if filter_expression.expr(r)]
            if projection:
                results = [r.project(projection) for r in results]
            return results, scanned, last_key

        return run

    if not getattr(Table.query, "_counted", False):
        Table.query = counted(Table.query, "filter_expression", "projection_expressions")
        Table.scan = counted(Table.scan, "filter_expression", "projection_expression")
        Table.query._counted = Table.scan._counted = True


def _scope(environ):
    """(access key, date, region, service) from the SigV4 credential scope, or None."""
    match = re.search(r"Credential=([^,\s]+)", environ.get("HTTP_AUTHORIZATION", ""))
    credential = match.group(1) if match else ""
    if not credential:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    return parts[:4] if len(parts) >= 5 else None


def _caller(environ) -> str:
    agent = f'{environ.get("HTTP_USER_AGENT", "")} {environ.get("HTTP_X_AMZ_USER_AGENT", "")}'
    if "exec-env/AWS_Lambda" in agent:
        return "function"
    if environ.get("HTTP_X_AMZ_SECURITY_TOKEN"):
        return "event-source"
    return "other"


_S3_SUBRESOURCES = {
    "notification": "NotificationConfiguration",
    "versions": None,
    "uploads": None,
    "delete": None,
    "policy": "Policy",
    "tagging": "Tagging",
    "acl": "Acl",
    "cors": "Cors",
    "lifecycle": "LifecycleConfiguration",
    "versioning": "Versioning",
    "encryption": "Encryption",
    "location": "Location",
    "ownershipControls": "OwnershipControls",
    "publicAccessBlock": "PublicAccessBlock",
}


def _s3_operation(environ) -> tuple:
    """(operation, bucket) of an S3 REST request (path-style)."""
    method = environ.get("REQUEST_METHOD", "GET")
    bucket, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not bucket:
        return "ListBuckets", ""
    if key:
        copying = "HTTP_X_AMZ_COPY_SOURCE" in environ
        if "uploadId" in query:
            part = {"PUT": "UploadPartCopy" if copying else "UploadPart", "GET": "ListParts", "DELETE": "AbortMultipartUpload"}
            return part.get(method, "CompleteMultipartUpload"), bucket
        if "tagging" in query:
            return {"PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"}.get(method, "GetObjectTagging"), bucket
        by_method = {
            "PUT": "CopyObject" if copying else "PutObject",
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
            "POST": "CreateMultipartUpload" if "uploads" in query else "PostObject",
        }
        return by_method.get(method, method), bucket
    sub = next((s for s in _S3_SUBRESOURCES if s in query), None)
    if method == "GET":
        if sub == "versions":
            return "ListObjectVersions", bucket
        if sub == "uploads":
            return "ListMultipartUploads", bucket
        if sub:
            return f"GetBucket{_S3_SUBRESOURCES[sub]}", bucket
        return ("ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"), bucket
    if method == "POST" and sub == "delete":
        return "DeleteObjects", bucket
    verb = {"PUT": "Put", "DELETE": "Delete", "HEAD": "Head"}.get(method, method)
    if sub and _S3_SUBRESOURCES.get(sub):
        return f"{verb}Bucket{_S3_SUBRESOURCES[sub]}", bucket
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, method), bucket


_SESV2 = {("POST", "/v2/email/outbound-emails"): "SendEmail"}


def _read_body(environ) -> bytes:
    """The request body, put back for moto to read."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _operation(environ, service: str) -> tuple:
    """(operation, resource, request body) of a signed request."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    content_type = environ.get("CONTENT_TYPE", "")
    if service == "s3":
        operation, bucket = _s3_operation(environ)
        return operation, bucket, b""
    if target or "json" in content_type or "x-www-form-urlencoded" in content_type:
        body = _read_body(environ)
    else:
        body = b""
    fields: dict = {}
    if target:
        operation = target.rpartition(".")[2]
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            fields = {}
    else:
        form = parse_qs(body.decode("utf-8", "replace")) if "x-www-form-urlencoded" in content_type else {}
        form.update(parse_qs(environ.get("QUERY_STRING", "")))
        fields = {k: v[0] for k, v in form.items()}
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        operation = fields.get("Action") or _SESV2.get((method, path)) or f"{method} {path}"
    if service == "dynamodb":
        resource = fields.get("TableName", "")
    elif service == "sqs":
        resource = str(fields.get("QueueUrl", "")).rstrip("/").rpartition("/")[2]
    elif service == "secretsmanager":
        resource = fields.get("SecretId", "")
    else:
        resource = ""
    return operation, resource, body


def _received_nothing(body: bytes) -> bool:
    try:
        return not json.loads(body).get("Messages")
    except ValueError:
        return b"<Message>" not in body


_JOURNAL_LIMIT = 2000
_journal: list = []
_APP = re.compile(r"\bapp/([A-Za-z0-9!#$%&'*+\-.^_`|~]+)")


def _app(environ) -> str:
    """The SDK's `app/<name>` user-agent token: each function names itself (backoffice_edge::aws)."""
    agent = f'{environ.get("HTTP_USER_AGENT", "")} {environ.get("HTTP_X_AMZ_USER_AGENT", "")}'
    found = _APP.search(agent)
    return found.group(1) if found else ""


def _record(caller, service, operation, resource, status, units=None, empty=False, app="") -> None:
    with _ledger_lock:
        if not empty:
            # The last requests in order, with who made them: which call of which function to cut.
            read, write, index = (sum(u[i] for u in (units or {}).values()) for i in range(3))
            _journal.append(
                {"app": app or caller, "service": service, "operation": operation, "resource": resource,
                 "status": status.split(" ")[0], "read_units": read, "write_units": write, "index_write_units": index}
            )
            del _journal[:-_JOURNAL_LIMIT]
        row = _ledger.setdefault(
            (caller, service, operation),
            {"requests": 0, "errors": 0, "empty_receives": 0, "read_units": 0.0, "write_units": 0, "index_write_units": 0, "by_resource": {}},
        )
        row["requests"] += 1
        row["errors"] += 0 if status.startswith("2") else 1
        row["empty_receives"] += 1 if empty else 0
        per_resource = units or ({resource: [0.0, 0, 0]} if resource else {})
        for name, (read, write, index) in per_resource.items():
            row["read_units"] += read
            row["write_units"] += write
            row["index_write_units"] += index
            entry = row["by_resource"].setdefault(name, {"requests": 0, "read_units": 0.0, "write_units": 0, "index_write_units": 0})
            entry["requests"] += 1
            entry["read_units"] += read
            entry["write_units"] += write
            entry["index_write_units"] += index


def requests_report() -> dict:
    with _ledger_lock:
        rows = [
            {"caller": caller, "service": service, "operation": operation, **copy.deepcopy(row)}
            for (caller, service, operation), row in sorted(_ledger.items())
        ]
        since = _ledger_since[0]
        journal = copy.deepcopy(_journal)
    totals = {
        name: sum(r[name] for r in rows)
        for name in ("requests", "errors", "empty_receives", "read_units", "write_units", "index_write_units")
    }
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    return {"since": stamp, "totals": totals, "rows": rows, "journal": journal}


def reset_requests() -> None:
    with _ledger_lock:
        _ledger.clear()
        _journal.clear()
        _ledger_since[0] = time.time()


def count_requests(app):
    """Counts every signed request; sits inside the DynamoDB lock (see `serialize_dynamodb`)."""

    def wrapper(environ, start_response):
        scope = _scope(environ)
        if scope is None:
            return app(environ, start_response)
        service = scope[3]
        caller = _caller(environ)
        app_name = _app(environ)
        try:
            operation, resource, body = _operation(environ, service)
        except Exception:
            operation, resource, body = "?", "", b""
        seen = []

        def capture(status, headers, exc_info=None):
            seen.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        def run():
            response = b"".join(app(environ, capture))
            return (seen[-1] if seen else "500"), response

        if service == "dynamodb":
            status, response, units = _dynamodb_units(environ, scope, operation, body, run)
            _record(caller, service, operation, resource, status, units=units, app=app_name)
            return [response]
        if service == "sqs" and operation == "ReceiveMessage":
            status, response = run()
            _record(caller, service, operation, resource, status, empty=_received_nothing(response), app=app_name)
            return [response]
        result = app(environ, capture)
        _record(caller, service, operation, resource, seen[-1] if seen else "200", app=app_name)
        return result

    return wrapper


def serve_requests(app):
    def wrapper(environ, start_response):
        if environ.get("PATH_INFO") != "/_local/requests":
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "DELETE":
            reset_requests()
            body = b'{"reset": true}'
        else:
            body = json.dumps(requests_report()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapper


def self_test() -> None:
    """A failed transaction leaves no trace and a successful one writes everything, through the
    cheap rollback, checked against moto in-process; then requests are counted and priced
    through the wrapped server."""
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
    _self_test_requests()
    print(
        "moto_server.py self-test: transactions roll back through the saved items; "
        "requests are counted and DynamoDB units priced as AWS does"
    )


def _self_test_requests() -> None:
    """The units of a few requests, through the wrapped server on a free port."""
    import logging
    import urllib.request

    import boto3
    from botocore.config import Config
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    count_evaluated_reads()
    app = serve_requests(serialize_dynamodb(count_requests(DomainDispatcherApplication(create_backend_app))))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"

    def client(service, agent="", token=None):
        return boto3.client(
            service,
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token=token,
            config=Config(user_agent_extra=agent, s3={"addressing_style": "path"}),
        )

    def ledger(method="GET"):
        with urllib.request.urlopen(urllib.request.Request(f"{url}/_local/requests", method=method)) as reply:
            return json.loads(reply.read())

    def units(call):
        ledger("DELETE")
        call()
        t = ledger()["totals"]
        return t["read_units"], t["write_units"] - t["index_write_units"], t["index_write_units"]

    try:
        db = client("dynamodb", agent="exec-env/AWS_Lambda_provided.al2023")
        strings = [{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")]
        db.create_table(
            TableName="u",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=strings,
            GlobalSecondaryIndexes=[
                {"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}
            ],
            BillingMode="PAY_PER_REQUEST",
        )

        def item(pk, blob, **more):
            # Names and values: pk 2 + len(pk), sk 2 + 1, blob 4 + blob (and g 1 + 1).
            return {"pk": {"S": pk}, "sk": {"S": "1"}, "blob": {"S": "x" * blob}, **{k: {"S": v} for k, v in more.items()}}

        def key(pk):
            return {"pk": {"S": pk}, "sk": {"S": "1"}}

        def check(what, got, want):
            assert got == want, f"self-test: {what}: {got}, wanted {want}"

        assert item_size(item("a", 1500, g="x")) == 1512, "self-test: item size"
        check("a 1.5 KB PutItem in one GSI (2 + 2)", units(lambda: db.put_item(TableName="u", Item=item("a", 1500, g="x"))), (0, 2, 2))
        check(
            "the same Put in a TransactWriteItems (4 + 4)",
            units(lambda: db.transact_write_items(TransactItems=[{"Put": {"TableName": "u", "Item": item("b", 1500, g="x")}}])),
            (0, 4, 4),
        )
        check("a 1.5 KB item outside the index (2 + 0)", units(lambda: db.put_item(TableName="u", Item=item("n", 1500))), (0, 2, 0))
        check(
            "an update that moves the item in the index (2 + 2 x 2)",
            units(
                lambda: db.update_item(
                    TableName="u", Key=key("a"), UpdateExpression="SET g = :g", ExpressionAttributeValues={":g": {"S": "y"}}
                )
            ),
            (0, 2, 4),
        )
        check("deleting an absent item (1)", units(lambda: db.delete_item(TableName="u", Key=key("absent"))), (0, 1, 0))

        def refused():
            try:
                db.put_item(TableName="u", Item=item("a", 10), ConditionExpression="attribute_not_exists(pk)")
            except db.exceptions.ConditionalCheckFailedException:
                return
            raise SystemExit("self-test: the conditional put was not refused")

        check("a refused put, priced on the existing 1.5 KB item (2)", units(refused), (0, 2, 0))
        db.put_item(TableName="u", Item=item("c", 5000))
        check("an eventually consistent GetItem of 5 KB (1)", units(lambda: db.get_item(TableName="u", Key=key("c"))), (1.0, 0, 0))
        check(
            "a consistent GetItem of 5 KB (2)",
            units(lambda: db.get_item(TableName="u", Key=key("c"), ConsistentRead=True)),
            (2.0, 0, 0),
        )
        for sk in "123":
            db.put_item(TableName="u", Item={**item("q", 2000), "sk": {"S": sk}})
        check(
            "a consistent Query of 3 x 2 KB, priced before its filter (2)",
            units(
                lambda: db.query(
                    TableName="u",
                    KeyConditionExpression="pk = :q",
                    FilterExpression="attribute_exists(nothing)",
                    ExpressionAttributeValues={":q": {"S": "q"}},
                    ConsistentRead=True,
                )
            ),
            (2.0, 0, 0),
        )
        assert db.query(
            TableName="u",
            KeyConditionExpression="pk = :q",
            FilterExpression="sk = :s",
            ProjectionExpression="sk",
            ExpressionAttributeValues={":q": {"S": "q"}, ":s": {"S": "2"}},
        )["Items"] == [{"sk": {"S": "2"}}], "self-test: a counted Query still filters and projects"

        ledger("DELETE")
        sqs = client("sqs", token="session")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
        sqs.send_message(QueueUrl=queue, MessageBody="m")
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
        s3 = client("s3")
        s3.create_bucket(Bucket="recordings")
        s3.put_object(Bucket="recordings", Key="k/1.wav", Body=b"x")
        s3.head_object(Bucket="recordings", Key="k/1.wav")
        s3.list_object_versions(Bucket="recordings", Prefix="k/")
        rows = {(r["caller"], r["service"], r["operation"]): r for r in ledger()["rows"]}
        receive = rows[("event-source", "sqs", "ReceiveMessage")]
        check("receives, of which empty", (receive["requests"], receive["empty_receives"], list(receive["by_resource"])), (2, 1, ["q"]))
        for operation in ("CreateBucket", "PutObject", "HeadObject", "ListObjectVersions"):
            assert ("other", "s3", operation) in rows, f"self-test: no s3 {operation} in {sorted(rows)}"
        assert ("event-source", "sqs", "SendMessage") in rows, sorted(rows)
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--self-test", action="store_true", help="check the transaction rollback and the request accounting, and exit")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    cheap_transaction_rollback()
    count_evaluated_reads()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serve_requests(serve_sent_emails(serialize_dynamodb(count_requests(app)))),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
