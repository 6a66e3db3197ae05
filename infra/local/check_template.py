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
    dynamodb/s3/sqs action on Resource "*".

Prints one line per check, then `N passed, M failed`; exits 1 if any failed.
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
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, label: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {label}{': ' + detail if detail else ''}")

    def skip(self, label: str, why: str) -> None:
        print(f"SKIP  {label}: {why}")

    def note(self, text: str) -> None:
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
        if not policies:
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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} <template>", file=sys.stderr)
        return 2
    path = Path(argv[1])
    try:
        template = Template(path)
    except Exception as err:  # noqa: BLE001 - report any load problem as one failed check
        print(f"FAIL  load {path}: {err}")
        print("0 passed, 1 failed")
        return 1
    report = Report()
    for check in (check_visibility, check_bucket_notifications, check_redrive, check_build, check_routes, check_policies):
        try:
            check(template, report)
        except Exception as err:  # noqa: BLE001 - a crash in one check is that check failing
            report.check(False, check.__name__, f"crashed: {type(err).__name__}: {err}")
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
