#!/usr/bin/env python3
"""Structural checks of infra/template.yaml that cfn-lint does not make.

    python infra/local/check_template.py infra/template.yaml

(a) every queue used as an SQS event source has VisibilityTimeout >= 6 x the consumer's
    Timeout (+ its batching window), Globals considered;
(b) every bucket with a QueueConfiguration DependsOn a QueuePolicy that lets S3 send to that
    queue (from that bucket, when the policy names a source);
(c) every RedrivePolicy points to a queue of the template, whose retention is not shorter than
    the source queue's (a message keeps its original enqueue time when moved);
(d) every function is built by rust-cargolambda from the workspace root, and its
    BuildProperties.Binary is a binary of a crate under functions/;
(e) every HttpApi route appears in docs/openapi.yaml (skipped while that file does not exist);
(f) every function has explicit Policies, no SAM *CrudPolicy / *FullAccess shortcut, and no
    dynamodb/s3/sqs action on Resource "*";
(g) DynamoDB item-level least privilege: every statement with a dynamodb action names item
    actions only (no Scan, PartiQL or wildcard), tables or named indexes of this template (no
    `index/*`), never both in one statement, Query only on indexes, and carries
    `ForAllValues:StringLike|StringEquals` `dynamodb:LeadingKeys` with real prefixes (not "*");
    no write may reach a protected partition (ConfigTable `CLIENT#`: clients' billing profiles
    are operations' data) unless `dynamodb:Attributes` limits it to what the API may change
    there (a client's contract and its revision);
(h) nothing dies silently: every dead-letter queue has an alarm on
    ApproximateNumberOfMessagesVisible > 0, every log metric filter has an alarm on its metric,
    every field value a filter matches (`$.message = "…"`, `$.error_kind = "…"`) is still
    written by the Rust sources, and every alarm notifies an SNS topic of the template;
(i) HTTP API edge: CORS names its origins (no "*", literal or parameter default, and a
    parameter's AllowedPattern refuses "*"), DefaultRouteSettings throttles, every RouteSettings
    key is a route of the API with both limits, and every route without an authorizer (the
    courier webhook) has its own limits.

Prints one line per check, then `N passed, M failed`; exits 1 if any failed.

    python infra/local/check_template.py --self-test

runs (g), (h) and (i) on a small good template (no failure expected) and on broken variants of
it (each must fail the check it breaks): the checker's own test.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provision import load_template  # noqa: E402  (same loader: short-form tags understood)

import yaml  # noqa: E402

DEFAULT_FUNCTION_TIMEOUT = 3  # Lambda's default, when neither the function nor Globals set one
DEFAULT_VISIBILITY_TIMEOUT = 30
DEFAULT_RETENTION = 345600
CHECKED_SERVICES = ("dynamodb:", "s3:", "sqs:")


class Report:
    def __init__(self, quiet: bool = False) -> None:
        self.passed = 0
        self.failed = 0
        self.quiet = quiet
        self.failures: list[str] = []

    def check(self, ok: bool, label: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(f"{label}: {detail}")
        if not self.quiet:
            print(f"{'PASS' if ok else 'FAIL'}  {label}{': ' + detail if detail else ''}")

    def skip(self, label: str, why: str) -> None:
        if not self.quiet:
            print(f"SKIP  {label}: {why}")

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"NOTE  {text}")


# --------------------------------------------------------------------------------------------


class Template:
    def __init__(self, path: Path):
        self.path = path
        self.data = load_template(path)
        self.resources: dict[str, dict[str, Any]] = self.data["Resources"]
        self.parameters: dict[str, Any] = self.data.get("Parameters") or {}
        self.globals_fn: dict[str, Any] = ((self.data.get("Globals") or {}).get("Function")) or {}

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if isinstance(res, dict) and res.get("Type") == rtype}

    def props(self, name: str) -> dict[str, Any]:
        return self.resources[name].get("Properties") or {}

    def value(self, node: Any) -> Any:
        """A literal, or a Ref to a parameter resolved to its Default; None otherwise."""
        if isinstance(node, dict) and set(node) == {"Ref"}:
            param = self.parameters.get(node["Ref"])
            return param.get("Default") if isinstance(param, dict) else None
        if isinstance(node, (dict, list)):
            return None
        return node

    def function_setting(self, name: str, key: str, default: Any) -> Any:
        props = self.props(name)
        raw = props[key] if key in props else self.globals_fn.get(key, default)
        return self.value(raw)


def getatt_target(node: Any, attribute: str) -> str | None:
    """X when node is !GetAtt X.<attribute>."""
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        value = node["Fn::GetAtt"]
        if isinstance(value, str):
            value = value.split(".", 1)
        if isinstance(value, list) and len(value) == 2 and value[1] == attribute:
            return value[0]
    return None


def ref_target(node: Any) -> str | None:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return node["Ref"]
    return None


def as_list(node: Any) -> list[Any]:
    if node is None:
        return []
    return node if isinstance(node, list) else [node]


def sub_text(node: Any) -> str | None:
    """The template string of a !Sub (or a plain string)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Sub" in node:
        value = node["Fn::Sub"]
        return value if isinstance(value, str) else value[0]
    return None


def events_of(template: Template, fn: str, event_type: str) -> list[tuple[str, dict[str, Any]]]:
    events = template.props(fn).get("Events") or {}
    return [(name, ev.get("Properties") or {}) for name, ev in events.items() if isinstance(ev, dict) and ev.get("Type") == event_type]


# --------------------------------------------------------------------------------------------
# (a) visibility timeout >= 6 x consumer timeout
# --------------------------------------------------------------------------------------------


def check_visibility(t: Template, r: Report) -> None:
    label = "(a) queue visibility >= 6 x consumer timeout"
    functions = t.of_type("AWS::Serverless::Function")
    found = False
    for fn in functions:
        for event, props in events_of(t, fn, "SQS"):
            found = True
            queue = getatt_target(props.get("Queue"), "Arn")
            where = f"{fn}.{event}"
            if queue is None or queue not in t.of_type("AWS::SQS::Queue"):
                r.check(False, label, f"{where}: Queue must be !GetAtt <a queue of this template>.Arn")
                continue
            timeout = t.function_setting(fn, "Timeout", DEFAULT_FUNCTION_TIMEOUT)
            window = t.value(props.get("MaximumBatchingWindowInSeconds", 0)) or 0
            visibility = t.value(t.props(queue).get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT))
            try:
                timeout, window, visibility = int(timeout), int(window), int(visibility)
            except (TypeError, ValueError):
                r.check(False, label, f"{where}: cannot read Timeout / VisibilityTimeout as numbers")
                continue
            needed = 6 * timeout + window
            r.check(visibility >= needed, label,
                    f"{queue} VisibilityTimeout {visibility} vs {fn} Timeout {timeout} (x6{f' + window {window}' if window else ''} = {needed})")
    if not found:
        r.skip(label, "no SQS event sources in the template yet")


# --------------------------------------------------------------------------------------------
# (b) bucket -> queue notifications wait for the queue policy
# --------------------------------------------------------------------------------------------


def arn_suffix(text: str) -> str:
    """`arn:${AWS::Partition}:s3:::NAME` / `arn:aws:s3:::NAME` -> NAME."""
    return re.sub(r"^arn:(\$\{AWS::Partition\}|aws[a-z-]*):s3:::", "", text)


def policy_allows_s3(t: Template, policy: str, queue: str, bucket: str) -> tuple[bool, str]:
    props = t.props(policy)
    queues = [ref_target(q) for q in as_list(props.get("Queues"))]
    if queue not in queues:
        return False, f"{policy} does not list {queue} in Queues"
    statements = as_list((props.get("PolicyDocument") or {}).get("Statement"))
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal") or {}
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if "s3.amazonaws.com" not in services:
            continue
        actions = [a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)]
        if not any(a in ("sqs:sendmessage", "sqs:*", "*") for a in actions):
            continue
        resources = as_list(st.get("Resource"))
        if not any(getatt_target(res, "Arn") == queue or res == "*" for res in resources):
            continue
        # A source condition, when present, must name this bucket.
        bucket_name = sub_text(t.props(bucket).get("BucketName"))
        for operator in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
            source = ((st.get("Condition") or {}).get(operator) or {}).get("aws:SourceArn")
            if source is None:
                continue
            pattern = sub_text(source)
            if pattern is None:
                if getatt_target(source, "Arn") == bucket:
                    return False, f"{policy}'s aws:SourceArn uses !GetAtt {bucket}.Arn: a circular reference (name the bucket with !Sub)"
                continue
            if bucket_name is None:
                return False, f"{bucket} has no literal/!Sub BucketName, so {policy}'s aws:SourceArn cannot be checked"
            wanted = arn_suffix(pattern)
            if not (wanted == bucket_name or fnmatch.fnmatchcase(bucket_name, wanted)):
                return False, f"{policy}'s aws:SourceArn {pattern!r} does not match {bucket} ({bucket_name!r})"
        return True, f"{bucket} -> {queue} allowed by {policy}"
    return False, f"{policy} has no Allow statement for s3.amazonaws.com sqs:SendMessage on {queue}"


def check_bucket_notifications(t: Template, r: Report) -> None:
    label = "(b) bucket notification waits for its queue policy"
    found = False
    policies = t.of_type("AWS::SQS::QueuePolicy")
    for bucket, res in t.of_type("AWS::S3::Bucket").items():
        configs = ((t.props(bucket).get("NotificationConfiguration") or {}).get("QueueConfigurations")) or []
        depends = as_list(res.get("DependsOn"))
        for config in configs:
            found = True
            queue = getatt_target(config.get("Queue"), "Arn")
            if queue is None:
                r.check(False, label, f"{bucket}: Queue must be !GetAtt <queue>.Arn")
                continue
            candidates = [d for d in depends if d in policies]
            if not candidates:
                r.check(False, label, f"{bucket} -> {queue}: {bucket} has no DependsOn on an AWS::SQS::QueuePolicy")
                continue
            results = [policy_allows_s3(t, p, queue, bucket) for p in candidates]
            good = [detail for ok, detail in results if ok]
            r.check(bool(good), label, good[0] if good else "; ".join(detail for _, detail in results))
    if not found:
        r.skip(label, "no bucket sends notifications to a queue")


# --------------------------------------------------------------------------------------------
# (c) redrive targets exist
# --------------------------------------------------------------------------------------------


def check_redrive(t: Template, r: Report) -> None:
    label = "(c) redrive policy targets a queue of the template"
    queues = t.of_type("AWS::SQS::Queue")
    found = False
    for queue in queues:
        policy = t.props(queue).get("RedrivePolicy")
        if not policy:
            continue
        found = True
        target = getatt_target(policy.get("deadLetterTargetArn"), "Arn")
        if target is None or target not in queues:
            r.check(False, label, f"{queue}: deadLetterTargetArn must be !GetAtt <a queue of this template>.Arn")
            continue
        if target == queue:
            r.check(False, label, f"{queue} redrives to itself")
            continue
        count = t.value(policy.get("maxReceiveCount"))
        if count is None:
            r.check(False, label, f"{queue}: RedrivePolicy has no maxReceiveCount")
            continue
        r.check(True, label, f"{queue} -> {target} after {count} receives")
        source_retention = int(t.value(t.props(queue).get("MessageRetentionPeriod", DEFAULT_RETENTION)) or DEFAULT_RETENTION)
        dlq_retention = int(t.value(t.props(target).get("MessageRetentionPeriod", DEFAULT_RETENTION)) or DEFAULT_RETENTION)
        r.check(dlq_retention >= source_retention, "(c) dead-letter retention >= source retention",
                f"{target} {dlq_retention}s vs {queue} {source_retention}s")
    if not found:
        r.skip(label, "no queue has a RedrivePolicy")


# --------------------------------------------------------------------------------------------
# (d) build metadata
# --------------------------------------------------------------------------------------------


def workspace_root(template_path: Path) -> Path:
    for directory in template_path.resolve().parents:
        manifest = directory / "Cargo.toml"
        if manifest.is_file():
            try:
                if "workspace" in tomllib.loads(manifest.read_text(encoding="utf-8")):
                    return directory
            except tomllib.TOMLDecodeError:
                pass
    return template_path.resolve().parent.parent


def function_binaries(root: Path) -> dict[str, Path]:
    """Binary name -> Cargo.toml, for every crate under functions/ ([[bin]] entries, or the
    package's implicit binary when it has src/main.rs)."""
    binaries: dict[str, Path] = {}
    for manifest in sorted((root / "functions").rglob("Cargo.toml")):
        if "target" in manifest.relative_to(root).parts:
            continue
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            print(f"NOTE  {manifest.relative_to(root)} is not valid TOML: {err}")
            continue
        bins = data.get("bin") or []
        for entry in bins:
            if entry.get("name"):
                binaries[entry["name"]] = manifest
        package = (data.get("package") or {}).get("name")
        if package and (manifest.parent / "src" / "main.rs").is_file() and (data.get("package") or {}).get("autobins", True):
            binaries.setdefault(package, manifest)
    return binaries


def check_build(t: Template, r: Report) -> None:
    label = "(d) function built by rust-cargolambda from a functions/ binary"
    functions = t.of_type("AWS::Serverless::Function")
    if not functions:
        r.skip(label, "no functions")
        return
    root = workspace_root(t.path)
    binaries = function_binaries(root)
    template_dir = t.path.resolve().parent
    for fn, res in functions.items():
        metadata = res.get("Metadata") or {}
        problems = []
        if metadata.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"Metadata.BuildMethod is {metadata.get('BuildMethod')!r}, not 'rust-cargolambda'")
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if not binary:
            problems.append("no Metadata.BuildProperties.Binary")
        elif binary not in binaries:
            problems.append(f"Binary {binary!r} is not a binary of any crate under functions/ (known: {', '.join(sorted(binaries)) or 'none'})")
        code_uri = t.function_setting(fn, "CodeUri", None)
        if not isinstance(code_uri, str):
            problems.append("CodeUri is not a local path")
        elif (template_dir / code_uri).resolve() != root:
            problems.append(f"CodeUri {code_uri!r} is not the workspace root (cargo-lambda takes target/lambda/<Binary>/bootstrap under CodeUri)")
        where = f"{fn} -> {binary} ({binaries[binary].parent.relative_to(root)})" if binary in binaries else fn
        r.check(not problems, label, where if not problems else f"{fn}: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# (e) routes documented
# --------------------------------------------------------------------------------------------

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def normalise_path(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def check_routes(t: Template, r: Report) -> None:
    label = "(e) route documented in docs/openapi.yaml"
    root = workspace_root(t.path)
    doc_path = root / "docs" / "openapi.yaml"
    routes = []
    for fn in t.of_type("AWS::Serverless::Function"):
        for event, props in events_of(t, fn, "HttpApi"):
            routes.append((fn, event, str(props.get("Method", "ANY")).lower(), str(props.get("Path", "/$default"))))
    if not routes:
        r.skip(label, "no HttpApi routes")
        return
    if not doc_path.is_file():
        r.skip(label, f"{doc_path.relative_to(root)} does not exist yet")
        return
    try:
        doc = yaml.safe_load(doc_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        r.check(False, label, f"{doc_path.relative_to(root)} is not YAML: {err}")
        return
    documented: dict[str, set[str]] = {}
    for path, item in (doc.get("paths") or {}).items():
        if isinstance(item, dict):
            documented.setdefault(normalise_path(path), set()).update(m for m in item if m in HTTP_METHODS)
    in_template = set()
    for fn, event, method, path in routes:
        key = normalise_path(path)
        in_template.add((method, key))
        methods = documented.get(key, set())
        ok = bool(methods) if method in ("any", "x-amazon-apigateway-any-method") else method in methods
        r.check(ok, label, f"{method.upper()} {path} ({fn}.{event})" + ("" if ok else " is not in the document"))
    for path, methods in sorted(documented.items()):
        for method in sorted(methods):
            if (method, path) not in in_template and ("any", path) not in in_template:
                r.note(f"{method.upper()} {path} is documented but no function of the template serves it")


# --------------------------------------------------------------------------------------------
# (f) least privilege
# --------------------------------------------------------------------------------------------


def check_policies(t: Template, r: Report) -> None:
    label = "(f) function has explicit least-privilege policies"
    functions = t.of_type("AWS::Serverless::Function")
    if not functions:
        r.skip(label, "no functions")
        return
    for fn in functions:
        policies = t.props(fn).get("Policies")
        problems = []
        statements = []
        # `Policies: []` says it outright: the function calls no AWS service (basic execution only).
        if policies is None or (not policies and policies != []):
            problems.append("no Policies")
        for policy in as_list(policies):
            if isinstance(policy, str):
                if policy.endswith("FullAccess") or policy.startswith("arn:") and policy.endswith("FullAccess"):
                    problems.append(f"managed policy {policy}")
                continue
            if not isinstance(policy, dict):
                continue
            if "Statement" in policy:
                statements.extend(as_list(policy["Statement"]))
                continue
            for name in policy:
                if name.endswith("CrudPolicy") or name.endswith("FullAccessPolicy"):
                    problems.append(f"SAM policy template {name} (write the statements)")
        for st in statements:
            if st.get("Effect", "Allow") != "Allow":
                continue
            actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
            resources = as_list(st.get("Resource"))
            if "*" in actions:
                problems.append(f"statement {st.get('Sid', '?')}: Action '*'")
            if "*" in resources and any(a == "*" or a.lower().startswith(CHECKED_SERVICES) for a in actions):
                problems.append(f"statement {st.get('Sid', '?')}: {', '.join(actions)} on Resource '*'")
            if st.get("NotResource") is not None or st.get("NotAction") is not None:
                problems.append(f"statement {st.get('Sid', '?')}: NotAction/NotResource")
            # Sending mail: only from the configured identity, and only with its From address.
            if any(a.lower().startswith("ses:send") for a in actions):
                from_address = ((st.get("Condition") or {}).get("StringEquals") or {}).get("ses:FromAddress")
                if "*" in resources or from_address is None:
                    problems.append(f"statement {st.get('Sid', '?')}: SES send needs identity resources and a ses:FromAddress condition")
            # Writing objects: under a prefix of the bucket, never the whole bucket.
            if "s3:PutObject" in actions:
                for res in resources:
                    text = json.dumps(res)
                    if text.rstrip('"}]').endswith("/*") and not re.search(r"\}/[^*\"]+/\*", text):
                        problems.append(f"statement {st.get('Sid', '?')}: s3:PutObject on a whole bucket ({text})")
        r.check(not problems, label, f"{fn} ({len(statements)} statement(s))" if not problems else f"{fn}: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# (g) DynamoDB item-level least privilege
# --------------------------------------------------------------------------------------------

DYNAMODB_READS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
DYNAMODB_WRITES = {
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
}
# Partitions no function may write, whatever its statement says: (table, key prefix, why, the
# attributes a write may still touch when its statement limits it to them with
# dynamodb:Attributes: a client's contract is the admins' through the API, its billing profile
# operations').
PROTECTED_PARTITIONS = [
    (
        "ConfigTable",
        "CLIENT#",
        "clients' billing profiles (CLIENT#) are operations' data",
        {"pk", "sk", "contract", "contract_revision"},
    ),
]


def limited_attributes(st: dict[str, Any]) -> set[str] | None:
    """The attributes a statement's dynamodb:Attributes condition limits it to, if any."""
    condition = st.get("Condition") or {}
    for operator in LEADING_KEYS_OPERATORS:
        values = (condition.get(operator) or {}).get("dynamodb:Attributes")
        if values is not None and all(isinstance(v, str) and "*" not in v for v in as_list(values)):
            return set(as_list(values))
    return None
LEADING_KEYS_OPERATORS = ("ForAllValues:StringLike", "ForAllValues:StringEquals")


def function_statements(t: Template, fn: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The function's inline statements, and the names of SAM policy templates it uses."""
    statements: list[dict[str, Any]] = []
    templates: list[str] = []
    for policy in as_list(t.props(fn).get("Policies")):
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(st for st in as_list(policy["Statement"]) if isinstance(st, dict))
        elif isinstance(policy, dict):
            templates.extend(policy)
        elif isinstance(policy, str):
            templates.append(policy)
    return statements, templates


def table_indexes(t: Template, table: str) -> set[str]:
    props = t.props(table)
    indexes = as_list(props.get("GlobalSecondaryIndexes")) + as_list(props.get("LocalSecondaryIndexes"))
    return {ix.get("IndexName") for ix in indexes if isinstance(ix, dict)}


def dynamodb_resource(t: Template, node: Any) -> tuple[str, str | None] | str:
    """(table, index or None) for `!GetAtt T.Arn` or `!Sub "${T.Arn}/index/<name>"`; else why not."""
    tables = t.of_type("AWS::DynamoDB::Table")
    target = getatt_target(node, "Arn")
    if target is not None:
        return (target, None) if target in tables else f"{target} is not a table of this template"
    text = sub_text(node) if isinstance(node, dict) else None
    if text is not None:
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([A-Za-z0-9_.-]+)", text)
        if match is None:
            return f"{text!r}: name one index (`${{Table.Arn}}/index/<name>`, no wildcard)"
        table, index = match.groups()
        if table not in tables:
            return f"{table} is not a table of this template"
        if index not in table_indexes(t, table):
            return f"{table} has no index {index!r}"
        return table, index
    return f"{json.dumps(node)}: a table (!GetAtt T.Arn) or a named index of one"


def leading_keys(st: dict[str, Any]) -> tuple[list[str] | None, str]:
    """The statement's dynamodb:LeadingKeys patterns, or None and why they are missing/wrong."""
    condition = st.get("Condition") or {}
    for operator, keys in condition.items():
        if isinstance(keys, dict) and "dynamodb:LeadingKeys" in keys and operator not in LEADING_KEYS_OPERATORS:
            return None, f"dynamodb:LeadingKeys under {operator} (must be one of {', '.join(LEADING_KEYS_OPERATORS)})"
    for operator in LEADING_KEYS_OPERATORS:
        values = (condition.get(operator) or {}).get("dynamodb:LeadingKeys")
        if values is None:
            continue
        values = as_list(values)
        if not values or not all(isinstance(v, str) and v for v in values):
            return None, "dynamodb:LeadingKeys must list literal key patterns"
        if any(v.strip("*?") == "" for v in values):
            return None, "a dynamodb:LeadingKeys pattern of wildcards only reaches every item"
        return values, ""
    return None, "no dynamodb:LeadingKeys condition"


def check_dynamodb_scope(t: Template, r: Report) -> None:
    label = "(g) DynamoDB statements scoped by LeadingKeys"
    functions = t.of_type("AWS::Serverless::Function")
    found = False
    for fn in functions:
        statements, templates = function_statements(t, fn)
        problems = []
        for name in templates:
            if name.startswith("DynamoDB"):
                problems.append(f"SAM policy template {name} (write statements with LeadingKeys)")
        for st in statements:
            if st.get("Effect", "Allow") != "Allow":
                continue
            actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
            dynamo = [a for a in actions if a.lower().startswith("dynamodb:")]
            if not dynamo:
                continue
            found = True
            sid = st.get("Sid", "?")
            unknown = [a for a in dynamo if a not in DYNAMODB_READS | DYNAMODB_WRITES]
            if unknown:
                problems.append(f"{sid}: {', '.join(unknown)} (item actions only: no Scan, PartiQL or wildcard)")
            targets = [dynamodb_resource(t, res) for res in as_list(st.get("Resource"))]
            bad = [x for x in targets if isinstance(x, str)]
            problems.extend(f"{sid}: {why}" for why in bad)
            good = [x for x in targets if not isinstance(x, str)]
            on_index = {x[1] is not None for x in good}
            if len(on_index) > 1:
                problems.append(f"{sid}: tables and indexes in one statement (their leading keys differ)")
            if True in on_index and set(dynamo) != {"dynamodb:Query"}:
                problems.append(f"{sid}: only dynamodb:Query on an index")
            keys, why = leading_keys(st)
            if keys is None:
                problems.append(f"{sid}: {why}")
                continue
            writes = [a for a in dynamo if a in DYNAMODB_WRITES]
            for table, _ in good:
                for protected_table, prefix, reason, writable in PROTECTED_PARTITIONS:
                    if table != protected_table or not writes:
                        continue
                    limited = limited_attributes(st)
                    if limited is not None and limited <= writable:
                        continue
                    probe = f"{prefix}any-id"
                    reaching = [k for k in keys if fnmatch.fnmatchcase(probe, k)]
                    if reaching:
                        problems.append(f"{sid}: {', '.join(writes)} on {table} {reaching} reaches {prefix}*: {reason}")
        r.check(not problems, label, f"{fn}" if not problems else f"{fn}: " + "; ".join(problems))
    if not found:
        r.skip(label, "no function touches DynamoDB")


# --------------------------------------------------------------------------------------------
# (h) nothing dies silently: alarms
# --------------------------------------------------------------------------------------------

FILTER_FIELD = re.compile(r'\$\.(\w+)\s*=\s*"([^"]+)"')


def alarm_actions_ok(t: Template, alarm: str) -> str | None:
    """Why the alarm does not notify a topic of the template, or None."""
    actions = as_list(t.props(alarm).get("AlarmActions"))
    if not actions:
        return f"{alarm} has no AlarmActions"
    topics = t.of_type("AWS::SNS::Topic")
    for action in actions:
        target = ref_target(action)
        if target not in topics and not (target in t.parameters):
            return f"{alarm}: AlarmActions must !Ref an SNS topic of the template (or a parameter)"
    return None


def rust_sources_text(root: Path) -> str:
    texts = []
    for folder in ("shared", "functions"):
        for path in sorted((root / folder).rglob("*.rs")):
            if "target" not in path.relative_to(root).parts:
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def check_alarms(t: Template, r: Report) -> None:
    label = "(h) nothing dies silently"
    alarms = t.of_type("AWS::CloudWatch::Alarm")
    queues = t.of_type("AWS::SQS::Queue")
    dlqs = sorted({
        getatt_target((t.props(q).get("RedrivePolicy") or {}).get("deadLetterTargetArn"), "Arn")
        for q in queues if t.props(q).get("RedrivePolicy")
    } - {None})
    for dlq in dlqs:
        watching = []
        for alarm in alarms:
            props = t.props(alarm)
            dims = {d.get("Name"): d.get("Value") for d in as_list(props.get("Dimensions")) if isinstance(d, dict)}
            if (props.get("Namespace") == "AWS/SQS" and props.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                    and getatt_target(dims.get("QueueName"), "QueueName") == dlq):
                watching.append(alarm)
        if not watching:
            r.check(False, label, f"dead-letter queue {dlq} has no ApproximateNumberOfMessagesVisible alarm")
            continue
        alarm = watching[0]
        props = t.props(alarm)
        threshold = t.value(props.get("Threshold"))
        operator = props.get("ComparisonOperator")
        fires_on_one = (operator == "GreaterThanThreshold" and threshold in (0, "0", 0.0)) or (
            operator == "GreaterThanOrEqualToThreshold" and threshold in (1, "1", 1.0))
        why = alarm_actions_ok(t, alarm)
        r.check(fires_on_one and why is None, label,
                f"{dlq} watched by {alarm}" if fires_on_one and why is None
                else f"{alarm}: {why or f'fires on {operator} {threshold}, not on one message'}")
    root = workspace_root(t.path)
    sources = None
    for name, res in t.of_type("AWS::Logs::MetricFilter").items():
        props = t.props(name)
        pattern = props.get("FilterPattern")
        if not isinstance(pattern, str) or not pattern.strip():
            r.check(False, label, f"{name}: no literal FilterPattern")
            continue
        matched = []
        for field, value in FILTER_FIELD.findall(pattern):
            if field == "level":
                continue
            if sources is None:
                sources = rust_sources_text(root)
            if value not in sources:
                matched.append(f'{field} "{value}" is written by no Rust source under shared/ or functions/')
        metrics = {(json.dumps(m.get("MetricNamespace")), m.get("MetricName"))
                   for m in as_list(props.get("MetricTransformations")) if isinstance(m, dict)}
        watchers = [a for a in alarms
                    if (json.dumps(t.props(a).get("Namespace")), t.props(a).get("MetricName")) in metrics]
        if not watchers:
            matched.append("no alarm watches its metric")
        r.check(not matched, label, f"{name} -> {', '.join(watchers)}" if not matched else f"{name}: " + "; ".join(matched))
    for alarm in alarms:
        why = alarm_actions_ok(t, alarm)
        if why is not None:
            r.check(False, label, why)
    if not dlqs and not alarms:
        r.skip(label, "no dead-letter queues and no alarms")


# --------------------------------------------------------------------------------------------
# (i) HTTP API edge: CORS origins and throttling
# --------------------------------------------------------------------------------------------


def number_setting(t: Template, node: Any) -> float | None:
    value = t.value(node)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def origins_problem(t: Template, node: Any) -> str | None:
    """Why AllowOrigins may let any origin in, or None."""
    if isinstance(node, dict) and "Fn::Split" in node:
        delimiter, source = (node["Fn::Split"] + [None, None])[:2]
        param = ref_target(source)
        if param is None or param not in t.parameters:
            return "AllowOrigins: !Split must split a parameter"
        spec = t.parameters[param] or {}
        default = str(spec.get("Default", ""))
        if any(o.strip() in ("", "*") or "*" in o for o in default.split(delimiter)):
            return f"parameter {param}'s default {default!r} has an empty or wildcard origin"
        pattern = spec.get("AllowedPattern")
        if not pattern or re.fullmatch(pattern, "*") or re.fullmatch(pattern, f"{default}{delimiter}*"):
            return f"parameter {param} needs an AllowedPattern that refuses \"*\""
        return None
    origins = []
    for item in as_list(node):
        param = ref_target(item)
        if param is not None:
            spec = t.parameters.get(param) or {}
            pattern = spec.get("AllowedPattern")
            if not pattern or re.fullmatch(pattern, "*"):
                return f"parameter {param} needs an AllowedPattern that refuses \"*\""
            origins.append(str(spec.get("Default", "")))
        elif isinstance(item, str):
            origins.append(item)
        else:
            return f"AllowOrigins item {json.dumps(item)} cannot be checked"
    if not origins or any("*" in o or not o for o in origins):
        return f"AllowOrigins {origins} must name origins, never \"*\""
    return None


def check_api_edge(t: Template, r: Report) -> None:
    label = "(i) HTTP API edge: CORS origins and throttling"
    apis = t.of_type("AWS::Serverless::HttpApi")
    if not apis:
        r.skip(label, "no HttpApi")
        return
    routes: dict[str, list[tuple[str, bool]]] = {api: [] for api in apis}
    for fn in t.of_type("AWS::Serverless::Function"):
        for event, props in events_of(t, fn, "HttpApi"):
            api = ref_target(props.get("ApiId")) or (next(iter(apis)) if len(apis) == 1 else None)
            if api not in routes:
                continue
            key = f"{str(props.get('Method', 'ANY')).upper()} {props.get('Path', '/$default')}"
            open_route = ((props.get("Auth") or {}).get("Authorizer")) == "NONE"
            routes[api].append((key, open_route))
    for api in apis:
        props = t.props(api)
        problems = []
        cors = props.get("CorsConfiguration")
        if cors is True:
            problems.append("CorsConfiguration: true allows every origin")
        elif isinstance(cors, dict):
            why = origins_problem(t, cors.get("AllowOrigins"))
            if why:
                problems.append(why)
        defaults = props.get("DefaultRouteSettings") or {}
        for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            value = number_setting(t, defaults.get(limit))
            if value is None or value <= 0:
                problems.append(f"DefaultRouteSettings.{limit} missing or not positive")
        settings = props.get("RouteSettings") or {}
        known = {key for key, _ in routes[api]}
        for key, entry in settings.items():
            if key not in known:
                problems.append(f"RouteSettings {key!r} is not a route of {api} (deploying fails)")
            for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
                value = number_setting(t, (entry or {}).get(limit))
                if value is None or value <= 0:
                    problems.append(f"RouteSettings {key!r}: {limit} missing or not positive")
        for key, open_route in routes[api]:
            if open_route and key not in settings:
                problems.append(f"{key} has no authorizer and no RouteSettings of its own")
        throttled = sum(1 for key, _ in routes[api] if key in settings)
        r.check(not problems, label,
                f"{api}: {throttled}/{len(routes[api])} routes with their own limits, the rest at the default" if not problems
                else f"{api}: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# --self-test: the new checks on a good template and on broken variants of it
# --------------------------------------------------------------------------------------------


def self_test_template() -> dict[str, Any]:
    leading = lambda *keys: {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(keys)}}  # noqa: E731
    alarm = lambda ns, metric, dims=None: {"Type": "AWS::CloudWatch::Alarm", "Properties": {  # noqa: E731
        "Namespace": ns, "MetricName": metric, **({"Dimensions": dims} if dims else {}), "Statistic": "Sum",
        "Period": 300, "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": [{"Ref": "Topic"}]}}
    key_schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    return {
        "Parameters": {"Origins": {"Type": "String", "Default": "https://app.example.com",
                                   "AllowedPattern": "^https://[a-z.]+(,https://[a-z.]+)*$"}},
        "Resources": {
            "Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {
                "CorsConfiguration": {"AllowOrigins": {"Fn::Split": [",", {"Ref": "Origins"}]}},
                "DefaultRouteSettings": {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20},
                "RouteSettings": {"POST /hooks/{id}": {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 2}}}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": key_schema, "GlobalSecondaryIndexes": [
                {"IndexName": "by-x", "KeySchema": key_schema, "Projection": {"ProjectionType": "ALL"}}]}},
            "ConfigTable": {"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": key_schema}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DLQ", "Arn"]}, "maxReceiveCount": 5}}},
            "DLQ": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "DLQAlarm": alarm("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                              [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DLQ", "QueueName"]}}]),
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
                "Events": {
                    "Hook": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Api"}, "Method": "POST",
                                                               "Path": "/hooks/{id}", "Auth": {"Authorizer": "NONE"}}},
                    "Read": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "Api"}, "Method": "GET", "Path": "/things"}}},
                "Policies": [{"Version": "2012-10-17", "Statement": [
                    {"Sid": "Write", "Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                     "Resource": {"Fn::GetAtt": ["Table", "Arn"]}, "Condition": leading("THING#*")},
                    {"Sid": "Index", "Effect": "Allow", "Action": "dynamodb:Query",
                     "Resource": {"Fn::Sub": "${Table.Arn}/index/by-x"}, "Condition": leading("X#*")},
                    {"Sid": "Campaigns", "Effect": "Allow", "Action": "dynamodb:PutItem",
                     "Resource": {"Fn::GetAtt": ["ConfigTable", "Arn"]}, "Condition": leading("CAMPAIGN#*")},
                ]}]}},
            "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
            "Filter": {"Type": "AWS::Logs::MetricFilter", "Properties": {
                "LogGroupName": {"Ref": "LogGroup"},
                "FilterPattern": '{ $.level = "ERROR" && $.message = "self-test: given up" }',
                "MetricTransformations": [{"MetricNamespace": "Test", "MetricName": "GivenUp", "MetricValue": "1"}]}},
            "FilterAlarm": alarm("Test", "GivenUp"),
        },
    }


def self_test() -> int:
    """Each broken variant must fail the check it breaks; the good template must fail none."""
    import copy as _copy
    import tempfile

    def statement(tpl: dict[str, Any], sid: str) -> dict[str, Any]:
        return next(st for st in tpl["Resources"]["Fn"]["Properties"]["Policies"][0]["Statement"] if st["Sid"] == sid)

    res = lambda tpl: tpl["Resources"]  # noqa: E731
    variants = [
        ("a write without LeadingKeys", "(g)", "no dynamodb:LeadingKeys",
         (lambda tpl: statement(tpl, "Write").pop("Condition"))),
        ("LeadingKeys of wildcards only", "(g)", "wildcards only",
         (lambda tpl: statement(tpl, "Write").update(
             Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*"]}}))),
        ("LeadingKeys under ForAnyValue", "(g)", "ForAnyValue",
         (lambda tpl: statement(tpl, "Write").update(
             Condition={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["THING#*"]}}))),
        ("every index of a table", "(g)", "no wildcard",
         (lambda tpl: statement(tpl, "Index").update(Resource={"Fn::Sub": "${Table.Arn}/index/*"}))),
        ("an index the table does not have", "(g)", "has no index",
         (lambda tpl: statement(tpl, "Index").update(Resource={"Fn::Sub": "${Table.Arn}/index/by-y"}))),
        ("a Scan", "(g)", "dynamodb:Scan",
         (lambda tpl: statement(tpl, "Index").update(Action=["dynamodb:Scan"]))),
        ("a write on a client's billing profile", "(g)", "reaches CLIENT#",
         (lambda tpl: statement(tpl, "Campaigns")["Condition"]["ForAllValues:StringLike"].update(
             {"dynamodb:LeadingKeys": ["CAMPAIGN#*", "C*"]}))),
        ("a write on a client's billing profile, beside its contract", "(g)", "reaches CLIENT#",
         (lambda tpl: statement(tpl, "Campaigns")["Condition"]["ForAllValues:StringLike"].update(
             {"dynamodb:LeadingKeys": ["CLIENT#*"], "dynamodb:Attributes": ["pk", "sk", "contract", "billing"]}))),
        ("a dead-letter queue without an alarm", "(h)", "has no ApproximateNumberOfMessagesVisible alarm",
         (lambda tpl: res(tpl).pop("DLQAlarm"))),
        ("an alarm that notifies nobody", "(h)", "has no AlarmActions",
         (lambda tpl: res(tpl)["FilterAlarm"]["Properties"].pop("AlarmActions"))),
        ("a filter on a message no code writes", "(h)", "written by no Rust source",
         (lambda tpl: res(tpl)["Filter"]["Properties"].update(
             FilterPattern='{ $.message = "self-test: a message nobody writes" }'))),
        ("a filter nobody watches", "(h)", "no alarm watches its metric",
         (lambda tpl: res(tpl).pop("FilterAlarm"))),
        ("CORS from anywhere", "(i)", "never \"*\"",
         (lambda tpl: res(tpl)["Api"]["Properties"]["CorsConfiguration"].update(AllowOrigins=["*"]))),
        ("an origins parameter that lets \"*\" in", "(i)", "AllowedPattern",
         (lambda tpl: tpl["Parameters"]["Origins"].pop("AllowedPattern"))),
        ("no default throttling", "(i)", "DefaultRouteSettings",
         (lambda tpl: res(tpl)["Api"]["Properties"].pop("DefaultRouteSettings"))),
        ("an open route without its own limits", "(i)", "no authorizer and no RouteSettings",
         (lambda tpl: res(tpl)["Api"]["Properties"].update(RouteSettings={}))),
        ("limits for a route that does not exist", "(i)", "is not a route",
         (lambda tpl: res(tpl)["Api"]["Properties"]["RouteSettings"].update(
             {"GET /nowhere": {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1}}))),
    ]
    checks = {"(g)": check_dynamodb_scope, "(h)": check_alarms, "(i)": check_api_edge}
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "Cargo.toml").write_text("[workspace]\n", encoding="utf-8")
        (root / "shared").mkdir()
        (root / "shared" / "lib.rs").write_text('tracing::error!("self-test: given up");\n', encoding="utf-8")
        (root / "infra").mkdir()
        path = root / "infra" / "template.yaml"

        def run(tpl: dict[str, Any]) -> Report:
            path.write_text(json.dumps(tpl), encoding="utf-8")
            report = Report(quiet=True)
            template = Template(path)
            for check in checks.values():
                check(template, report)
            return report

        good = run(self_test_template())
        ok = good.failed == 0 and good.passed > 0
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  self-test: the good template passes (g), (h), (i)"
              + ("" if ok else ": " + "; ".join(good.failures)))
        for what, check, expected, change in variants:
            tpl = _copy.deepcopy(self_test_template())
            change(tpl)
            report = run(tpl)
            hit = [f for f in report.failures if f.startswith(check) and expected in f]
            failures += not hit
            print(f"{'PASS' if hit else 'FAIL'}  self-test: {what} fails {check}"
                  + ("" if hit else f" (expected {expected!r}; failures: {report.failures or 'none'})"))
    print(f"self-test: {len(variants) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(f"usage: {argv[0]} <template> | --self-test", file=sys.stderr)
        return 2
    path = Path(argv[1])
    try:
        template = Template(path)
    except Exception as err:  # noqa: BLE001 - report any load problem as one failed check
        print(f"FAIL  load {path}: {err}")
        print("0 passed, 1 failed")
        return 1
    report = Report()
    for check in (check_visibility, check_bucket_notifications, check_redrive, check_build, check_routes, check_policies,
                  check_dynamodb_scope, check_alarms, check_api_edge):
        try:
            check(template, report)
        except Exception as err:  # noqa: BLE001 - a crash in one check is that check failing
            report.check(False, check.__name__, f"crashed: {type(err).__name__}: {err}")
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
