#!/usr/bin/env python3
"""Provision the data-plane subset of infra/template.yaml in an AWS emulator (moto's server).

    python infra/local/provision.py --template infra/template.yaml \
        --endpoint http://127.0.0.1:5050 --region us-east-1 --stack-name backoffice-local \
        --out .local/dev/resources.json [--parameter Stage=local ...] [--seed infra/local/seed.json]

1. Loads the template (CloudFormation short-form tags understood) and keeps the resource types
   below; functions, the HTTP API, log groups, permissions... are left to the local gateway.
2. Creates the stack in the emulator (or reuses it, when it exists with the same template and
   parameters) and waits for it; on failure prints the stack events' reasons and exits 1.
3. Applies what moto's CloudFormation accepts but ignores, each with its own API call and
   verified afterwards: bucket notifications (S3 -> SQS), versioning, public access block,
   ownership controls, bucket and queue policies, DynamoDB TTL and point-in-time recovery.
4. Seeds configuration items (--seed) into tables named by logical id.
5. Writes resources.json (atomically): physical names and attributes of every kept resource,
   so that the gateway and the tests can resolve the template's intrinsic functions.

Running it twice is fine: the stack is reused, and every configuration call is skipped when the
emulator already has that configuration. See infra/local/README.md for the contract.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

# Emulator credentials: static, and never look for instance metadata.
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
import yaml  # noqa: E402
from boto3.dynamodb.types import TypeSerializer  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402
from botocore.parsers import ResponseParserError  # noqa: E402

# Everything a call to the emulator may raise (moto answers an internal error with an HTML 500).
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)

# Resource types created in the emulator. Everything else in the template (functions, HTTP API,
# log groups, IAM, event source mappings, schedules) is played by the local gateway or has no
# local meaning. Extend this list when the template grows a type moto's CloudFormation creates
# faithfully (and, if moto ignores some of its properties, add a fix-up below).
ALLOWED_TYPES = [
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::SSM::Parameter",
    "AWS::SecretsManager::Secret",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::EmailIdentity",
]

# Types moto's CloudFormation does not implement (it skips them with a warning): provision.py
# applies them itself after the stack, through the service APIs.
APPLIED_AFTER_STACK = {
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::EmailIdentity",
    # moto's CloudFormation creates it but lists it without its logical id.
    "AWS::SecretsManager::Secret",
}

# Properties moto's CloudFormation ignores; stripped from the stack and applied after it.
STRIPPED_PROPERTIES = {
    "AWS::S3::Bucket": [
        "NotificationConfiguration",
        "VersioningConfiguration",
        "PublicAccessBlockConfiguration",
        "OwnershipControls",
        # Not emulated locally at all (moto expires nothing): kept out of the stack, not applied.
        "LifecycleConfiguration",
    ],
    "AWS::DynamoDB::Table": ["TimeToLiveSpecification", "PointInTimeRecoverySpecification"],
}

PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
GOOD_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


class ProvisionError(Exception):
    pass


def log(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Template loading: CloudFormation short-form tags -> long form
# --------------------------------------------------------------------------------------------

SHORT_FORM_FUNCTIONS = {
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue", "Join",
    "Not", "Or", "Select", "Split", "Sub", "Transform", "Length", "ToJsonString",
}


class CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's `!Tag` short forms.

    Timestamps are left as strings (CloudFormation has no date type: `Version: 2012-10-17`
    unquoted must stay the string CloudFormation sees)."""


CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt":
        if isinstance(value, str):
            resource, _, attribute = value.partition(".")
            if not attribute:
                raise yaml.constructor.ConstructorError(None, None, f"!GetAtt {value!r} is not Resource.Attribute", node.start_mark)
            value = [resource, attribute]
        return {"Fn::GetAtt": value}
    if suffix in SHORT_FORM_FUNCTIONS:
        return {f"Fn::{suffix}": value}
    raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{suffix}", node.start_mark)


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        template = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ProvisionError(f"{path}: not a CloudFormation template (no Resources)")
    return template


# --------------------------------------------------------------------------------------------
# References inside a template fragment
# --------------------------------------------------------------------------------------------

SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def sub_names(text: str) -> list[str]:
    """Names used by a Fn::Sub string: `${X}` and `${X.Attr}` (not the `${!Literal}` escape)."""
    return [m.group(1).strip() for m in SUB_VARIABLE.finditer(text)]


def references(node: Any) -> tuple[set[str], set[str]]:
    """(entity names referenced with Ref/GetAtt/Sub, condition names referenced)."""
    names: set[str] = set()
    conditions: set[str] = set()

    def walk(n: Any, local_vars: frozenset[str] = frozenset()) -> None:
        if isinstance(n, list):
            for item in n:
                walk(item, local_vars)
        elif isinstance(n, dict):
            if len(n) == 1:
                (key, value), = n.items()
                if key == "Ref" and isinstance(value, str):
                    names.add(value)
                    return
                if key == "Condition" and isinstance(value, str):
                    conditions.add(value)
                    return
                if key == "Fn::GetAtt":
                    if isinstance(value, list) and value and isinstance(value[0], str):
                        names.add(value[0])
                        walk(value[1:], local_vars)
                    elif isinstance(value, str):
                        names.add(value.split(".", 1)[0])
                    return
                if key == "Fn::Sub":
                    if isinstance(value, str):
                        text, variables = value, {}
                    else:
                        text, variables = value[0], (value[1] if len(value) > 1 else {})
                        walk(variables, local_vars)
                    for name in sub_names(text):
                        base = name.split(".", 1)[0]
                        if name not in variables and base not in variables:
                            names.add(base)
                    return
                if key == "Fn::If" and isinstance(value, list) and value:
                    conditions.add(value[0])
                    walk(value[1:], local_vars)
                    return
            for value in n.values():
                walk(value, local_vars)

    walk(node)
    return names - PSEUDO_PARAMETERS, conditions


# --------------------------------------------------------------------------------------------
# Template -> the stack's template
# --------------------------------------------------------------------------------------------


def stack_template(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """The template moto's CloudFormation gets, the kept resources (full definitions, for the
    fix-ups), and notes about what was left out."""
    parameters = template.get("Parameters") or {}
    resources: dict[str, Any] = template["Resources"]
    notes: list[str] = []

    kept = {name: copy.deepcopy(res) for name, res in resources.items() if isinstance(res, dict) and res.get("Type") in ALLOWED_TYPES}

    # Conditions: a condition may only use parameters and other conditions; drop any that
    # names something else (a dropped resource), and then the conditions that use those.
    conditions = copy.deepcopy(template.get("Conditions") or {})
    changed = True
    while changed:
        changed = False
        for cname, expr in list(conditions.items()):
            names, used_conditions = references(expr)
            if any(n not in parameters for n in names) or any(c not in conditions for c in used_conditions):
                del conditions[cname]
                notes.append(f"condition {cname} left out (it references something not provisioned)")
                changed = True

    # A kept resource that needs a left-out one (e.g. a parameter storing a function's ARN) is
    # left out too, transitively. Stripped properties are resolved after the stack, so they do
    # not count here.
    changed = True
    while changed:
        changed = False
        for name, res in list(kept.items()):
            props = {k: v for k, v in (res.get("Properties") or {}).items() if k not in STRIPPED_PROPERTIES.get(res["Type"], [])}
            names, used_conditions = references(props)
            missing = sorted(n for n in names if n not in parameters and n not in kept)
            if res.get("Condition") and res["Condition"] not in conditions:
                missing.append(f"condition {res['Condition']}")
            if any(c not in conditions for c in used_conditions):
                missing.append("a left-out condition")
            if missing:
                del kept[name]
                notes.append(f"{name} ({res['Type']}) left out: it references {', '.join(missing)}")
                changed = True

    stack_resources: dict[str, Any] = {}
    for name, res in kept.items():
        if res["Type"] in APPLIED_AFTER_STACK:
            continue
        res = copy.deepcopy(res)
        props = res.get("Properties") or {}
        for prop in STRIPPED_PROPERTIES.get(res["Type"], []):
            props.pop(prop, None)
        depends = res.get("DependsOn")
        if depends is not None:
            depends_list = [depends] if isinstance(depends, str) else list(depends)
            depends_list = [d for d in depends_list if d in kept and kept[d]["Type"] not in APPLIED_AFTER_STACK]
            if depends_list:
                res["DependsOn"] = depends_list
            else:
                res.pop("DependsOn")
        stack_resources[name] = res

    if not stack_resources:
        raise ProvisionError("the template has no resource of the provisioned types")

    body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Description": "backoffice local data plane (infra/local/provision.py)"}
    if parameters:
        body["Parameters"] = parameters
    if template.get("Mappings"):
        body["Mappings"] = template["Mappings"]
    if conditions:
        body["Conditions"] = conditions
    body["Resources"] = stack_resources
    return body, kept, notes


# --------------------------------------------------------------------------------------------
# Intrinsic functions, resolved against the provisioned stack
# --------------------------------------------------------------------------------------------

NO_VALUE = object()


class Resolver:
    def __init__(self, *, parameters: dict[str, Any], pseudo: dict[str, Any], resources: dict[str, dict[str, Any]],
                 conditions: dict[str, Any], mappings: dict[str, Any]):
        self.parameters = parameters
        self.pseudo = pseudo
        self.resources = resources
        self.conditions = conditions
        self.mappings = mappings
        self._condition_values: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name]["ref"]
        raise ProvisionError(f"cannot resolve Ref {name}")

    def get_att(self, resource: str, attribute: str) -> Any:
        entry = self.resources.get(resource)
        if entry is None:
            raise ProvisionError(f"cannot resolve GetAtt {resource}.{attribute}: {resource} is not provisioned")
        if attribute not in entry["attributes"]:
            raise ProvisionError(f"cannot resolve GetAtt {resource}.{attribute}: known attributes {sorted(entry['attributes'])}")
        return entry["attributes"][attribute]

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise ProvisionError(f"unknown condition {name}")
            self._condition_values[name] = bool(self.resolve(self.conditions[name]))
        return self._condition_values[name]

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            name = inner.strip()
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(item) for item in node]
            return [item for item in out if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, value)
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    # One method per intrinsic function; `value` is the function's (unresolved) argument.
    def _fn_ref(self, value: Any) -> Any:
        return self.ref(self.resolve(value))

    def _fn_get_att(self, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(".", 1)
        resource, attribute = value[0], self.resolve(value[1])
        return self.get_att(resource, attribute)

    def _fn_sub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.sub(value, {})
        return self.sub(value[0], value[1] if len(value) > 1 else {})

    def _fn_join(self, value: Any) -> Any:
        delimiter, items = value
        return str(self.resolve(delimiter)).join(str(i) for i in self.resolve(items))

    def _fn_select(self, value: Any) -> Any:
        index, items = value
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, value: Any) -> Any:
        delimiter, text = value
        return str(self.resolve(text)).split(self.resolve(delimiter))

    def _fn_if(self, value: Any) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, value: Any) -> Any:
        left, right = (self.resolve(v) for v in value)
        return str(left) == str(right)

    def _fn_not(self, value: Any) -> Any:
        return not self.resolve(value[0])

    def _fn_and(self, value: Any) -> Any:
        return all(self.resolve(v) for v in value)

    def _fn_or(self, value: Any) -> Any:
        return any(self.resolve(v) for v in value)

    def _fn_condition(self, value: Any) -> Any:
        return self.condition(value)

    def _fn_find_in_map(self, value: Any) -> Any:
        name, first, second = (self.resolve(v) for v in value[:3])
        return self.mappings[name][first][second]

    def _fn_base64(self, value: Any) -> Any:
        import base64

        return base64.b64encode(str(self.resolve(value)).encode()).decode()

    def _fn_get_azs(self, value: Any) -> Any:
        region = self.resolve(value) or self.pseudo["AWS::Region"]
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_import_value(self, value: Any) -> Any:
        raise ProvisionError(f"Fn::ImportValue {self.resolve(value)!r} cannot be resolved locally")

    _FUNCTIONS: dict[str, Callable[["Resolver", Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Base64": _fn_base64,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::ImportValue": _fn_import_value,
    }


# --------------------------------------------------------------------------------------------
# AWS helpers
# --------------------------------------------------------------------------------------------


def partition_of(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


class Clients:
    def __init__(self, endpoint: str, region: str):
        config = Config(
            region_name=region,
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path"},
        )
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        self._make = lambda service: session.client(service, endpoint_url=endpoint, config=config)
        self._cache: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._cache:
            self._cache[service] = self._make(service)
        return self._cache[service]


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err) or error_code(err) in ("ValidationError", "StackNotFound"):
            return None
        raise
    live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
    return live[0] if live else None


def wait_for_stack(cfn: Any, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = describe_stack(cfn, name)
        if stack is None:
            raise ProvisionError(f"stack {name} disappeared")
        status = stack["StackStatus"]
        if not status.endswith(IN_PROGRESS_SUFFIX):
            return stack
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {name} still {status} after {timeout:.0f}s")
        time.sleep(0.5)


def print_stack_failure(cfn: Any, name: str, stack: dict[str, Any]) -> None:
    log(f"stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}".rstrip(": "))
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError as err:
        log(f"  (cannot read the stack events: {err})")
        return
    failed = [e for e in events if "FAILED" in e.get("ResourceStatus", "") or e.get("ResourceStatusReason")]
    for event in reversed(failed or events):
        log(f"  {event.get('LogicalResourceId')} ({event.get('ResourceType')}): {event.get('ResourceStatus')} "
            f"{event.get('ResourceStatusReason') or ''}".rstrip())


def short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def report_call_failure(cfn: Any, name: str) -> None:
    """After a failed create/update call (moto creates synchronously and may answer a 500),
    print whatever the stack's events say."""
    try:
        stack = describe_stack(cfn, name)
        if stack is not None:
            print_stack_failure(cfn, name, stack)
    except AWS_ERRORS:
        pass


def ensure_stack(cfn: Any, name: str, body: dict[str, Any], overrides: dict[str, str], timeout: float) -> dict[str, Any]:
    body_text = json.dumps(body, sort_keys=True, indent=1)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(overrides.items())]
    stack = describe_stack(cfn, name)
    if stack is not None:
        if stack["StackStatus"].endswith(IN_PROGRESS_SUFFIX):
            # moto works synchronously: a stack still in progress is one whose creation failed.
            try:
                stack = wait_for_stack(cfn, name, min(timeout, 10.0))
            except ProvisionError as err:
                raise ProvisionError(f"{err}: an earlier attempt failed; restart the emulator (infra/local/down, then up)") from err
        if stack["StackStatus"] not in GOOD_STATUSES:
            print_stack_failure(cfn, name, stack)
            raise ProvisionError(f"stack {name} exists in state {stack['StackStatus']}; restart the emulator (infra/local/down, then up)")
        current_body = cfn.get_template(StackName=name).get("TemplateBody")
        if isinstance(current_body, dict):
            current_body = json.dumps(current_body, sort_keys=True, indent=1)
        current_params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters") or []}
        same_params = all(current_params.get(k) == v for k, v in overrides.items())
        if current_body == body_text and same_params:
            log(f"stack {name} exists ({stack['StackStatus']}), reusing it")
            return stack
        log(f"stack {name} exists with another template or parameters: updating it")
        try:
            cfn.update_stack(StackName=name, TemplateBody=body_text, Parameters=parameters)
        except AWS_ERRORS as err:
            if "No updates are to be performed" in str(err):
                return stack
            report_call_failure(cfn, name)
            raise ProvisionError(f"cannot update stack {name}: {short(err)}; restart the emulator (infra/local/down, then up)") from err
    else:
        log(f"creating stack {name}")
        try:
            cfn.create_stack(StackName=name, TemplateBody=body_text, Parameters=parameters)
        except AWS_ERRORS as err:
            report_call_failure(cfn, name)
            raise ProvisionError(f"the emulator could not create stack {name}: {short(err)} (its log has the reason)") from err
    stack = wait_for_stack(cfn, name, timeout)
    if stack["StackStatus"] not in GOOD_STATUSES:
        print_stack_failure(cfn, name, stack)
        raise ProvisionError(f"stack {name} failed ({stack['StackStatus']})")
    return stack


# --------------------------------------------------------------------------------------------
# Describing what was provisioned
# --------------------------------------------------------------------------------------------


def describe_resource(clients: Clients, rtype: str, physical_id: str, region: str, partition: str, url_suffix: str) -> tuple[str, dict[str, Any]]:
    """(ref, attributes) of a provisioned resource, as CloudFormation's Ref/GetAtt return them."""
    if rtype == "AWS::DynamoDB::Table":
        table = clients.dynamodb.describe_table(TableName=physical_id)["Table"]
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return table["TableName"], attributes
    if rtype == "AWS::SQS::Queue":
        queue_name = physical_id.rstrip("/").rsplit("/", 1)[-1]
        url = clients.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": queue_name, "QueueUrl": url}
    if rtype == "AWS::S3::Bucket":
        name = physical_id
        clients.s3.head_bucket(Bucket=name)
        return name, {
            "Arn": f"arn:{partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{url_suffix}",
            "RegionalDomainName": f"{name}.s3.{region}.{url_suffix}",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.{url_suffix}",
            "WebsiteURL": f"http://{name}.s3-website.{region}.{url_suffix}",
        }
    if rtype == "AWS::SSM::Parameter":
        parameter = clients.ssm.get_parameter(Name=physical_id)["Parameter"]
        return parameter["Name"], {"Type": parameter["Type"], "Value": parameter["Value"]}
    return physical_id, {}


# --------------------------------------------------------------------------------------------
# Fix-ups: what moto's CloudFormation ignores, applied and verified through the service APIs
# --------------------------------------------------------------------------------------------


def notification_to_api(config: dict[str, Any], bucket: str, notes: list[str]) -> dict[str, Any]:
    """A bucket's CloudFormation NotificationConfiguration (resolved) in the S3 API's shape."""

    def filter_to_api(cfn_filter: dict[str, Any] | None) -> dict[str, Any] | None:
        rules = ((cfn_filter or {}).get("S3Key") or {}).get("Rules") or []
        if not rules:
            return None
        return {"Key": {"FilterRules": [{"Name": r["Name"].lower(), "Value": r["Value"]} for r in rules]}}

    api: dict[str, Any] = {}
    for cfn_key, api_key, target_key, api_target in (
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        items = []
        for entry in config.get(cfn_key) or []:
            item: dict[str, Any] = {api_target: entry[target_key], "Events": [entry["Event"]]}
            api_filter = filter_to_api(entry.get("Filter"))
            if api_filter:
                item["Filter"] = api_filter
            items.append(item)
        if items:
            api[api_key] = items
    if config.get("LambdaConfigurations"):
        notes.append(f"{bucket}: LambdaConfigurations not applied locally (no Lambda in the emulator; route S3 events through a queue)")
    if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    return api


def normalise_notifications(config: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for key, target in (("QueueConfigurations", "QueueArn"), ("TopicConfigurations", "TopicArn"), ("LambdaFunctionConfigurations", "LambdaFunctionArn")):
        for item in config.get(key) or []:
            rules = tuple(sorted((r["Name"].lower(), r["Value"]) for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []))
            out.append((key, item[target], tuple(sorted(item["Events"])), rules))
    if "EventBridgeConfiguration" in config:
        out.append(("EventBridgeConfiguration",))
    return sorted(out)


def apply_bucket(clients: Clients, bucket: str, props: dict[str, Any], notes: list[str]) -> None:
    s3 = clients.s3

    versioning = props.get("VersioningConfiguration")
    if versioning:
        wanted = versioning["Status"]
        if s3.get_bucket_versioning(Bucket=bucket).get("Status") != wanted:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": wanted})
        got = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if got != wanted:
            raise ProvisionError(f"bucket {bucket}: versioning is {got!r}, wanted {wanted!r}")

    lock = props.get("ObjectLockConfiguration")
    if lock:
        # moto's CloudFormation creates the bucket without Object Lock; S3 allows enabling it on
        # a versioned bucket, default retention included, so the emulator enforces it too.
        rule = (lock.get("Rule") or {}).get("DefaultRetention") or {}
        wanted_lock: dict[str, Any] = {"ObjectLockEnabled": lock.get("ObjectLockEnabled", "Enabled")}
        if rule:
            wanted_lock["Rule"] = {"DefaultRetention": {k: (int(v) if k in ("Days", "Years") else v) for k, v in rule.items()}}
        def read_lock() -> dict[str, Any]:
            try:
                got = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
            except ClientError:
                return {}
            # moto answers the unset one of Days/Years as 0.
            retention = (got.get("Rule") or {}).get("DefaultRetention")
            if retention:
                got["Rule"]["DefaultRetention"] = {k: v for k, v in retention.items() if v != 0}
            return got

        current_lock = read_lock()
        if current_lock != wanted_lock:
            s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=wanted_lock)
            current_lock = read_lock()
        if current_lock != wanted_lock:
            raise ProvisionError(f"bucket {bucket}: object lock is {current_lock!r}, wanted {wanted_lock!r}")

    block = props.get("PublicAccessBlockConfiguration")
    if block:
        wanted_block = {k: bool(v) for k, v in block.items()}
        try:
            current = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError:
            current = {}
        if {k: current.get(k) for k in wanted_block} != wanted_block:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=wanted_block)

    ownership = props.get("OwnershipControls")
    if ownership:
        wanted_rules = [{"ObjectOwnership": r["ObjectOwnership"]} for r in ownership.get("Rules") or []]
        try:
            current_rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        except ClientError:
            current_rules = []
        if current_rules != wanted_rules:
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": wanted_rules})

    # Notifications: applied last (S3 tests the destinations when they are configured, and
    # sends an s3:TestEvent to each queue). Skipped when already in place, so a second run does
    # not send a second test event.
    wanted_notifications = notification_to_api(props.get("NotificationConfiguration") or {}, bucket, notes)
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    if normalise_notifications(current) != normalise_notifications(wanted_notifications):
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wanted_notifications)
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        if normalise_notifications(current) != normalise_notifications(wanted_notifications):
            raise ProvisionError(f"bucket {bucket}: notification configuration not applied: got {current}, wanted {wanted_notifications}")
        log(f"bucket {bucket}: notifications applied ({len(normalise_notifications(wanted_notifications))} target(s))")


def apply_table(clients: Clients, table: str, props: dict[str, Any]) -> None:
    ddb = clients.dynamodb
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled") in (True, "true", "True"):
        described = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription") or {}
        if described.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or described.get("AttributeName") != ttl["AttributeName"]:
            ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]})
        described = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription") or {}
        if described.get("AttributeName") != ttl["AttributeName"]:
            raise ProvisionError(f"table {table}: TTL not applied: {described}")
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled") in (True, "true", "True"):
        try:
            ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        except AWS_ERRORS as err:  # not essential locally
            log(f"table {table}: point-in-time recovery not applied ({error_code(err)})")


def local_bucket_policy(document: dict[str, Any], name: str, notes: list[str]) -> dict[str, Any] | None:
    """The bucket policy as applied locally: moto evaluates bucket policies, and the emulator
    speaks plain HTTP, so statements about aws:SecureTransport (deny non-TLS) would refuse every
    local request. They are left out; None when nothing is left."""
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if "aws:securetransport" not in json.dumps(s.get("Condition") or {}).lower()]
    if len(kept) != len(statements):
        notes.append(f"{name}: {len(statements) - len(kept)} aws:SecureTransport statement(s) not applied (the emulator is plain HTTP)")
    if not kept:
        return None
    return {**document, "Statement": kept}


# Queue policies before bucket notifications: S3 checks that it may send to a destination when
# the notification is configured (what the template's DependsOn orders on AWS).
FIXUP_ORDER = [
    "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::DynamoDB::Table", "AWS::S3::Bucket",
    # The identity names its configuration set.
    "AWS::SES::ConfigurationSet", "AWS::SES::EmailIdentity",
]


def apply_fixups(clients: Clients, kept: dict[str, dict[str, Any]], resolver: Resolver, notes: list[str]) -> None:
    ordered = sorted(kept.items(), key=lambda item: FIXUP_ORDER.index(item[1]["Type"]) if item[1]["Type"] in FIXUP_ORDER else len(FIXUP_ORDER))
    for name, res in ordered:
        rtype = res["Type"]
        if rtype not in STRIPPED_PROPERTIES and rtype not in APPLIED_AFTER_STACK:
            continue
        props = resolver.resolve(res.get("Properties") or {})
        if rtype == "AWS::SQS::QueuePolicy":
            policy = json.dumps(props["PolicyDocument"])
            for url in props.get("Queues") or []:
                attrs = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes") or {}
                if json.loads(attrs.get("Policy") or "null") != props["PolicyDocument"]:
                    clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        elif rtype == "AWS::S3::BucketPolicy":
            bucket = props["Bucket"]
            document = local_bucket_policy(props["PolicyDocument"], name, notes)
            try:
                current = json.loads(clients.s3.get_bucket_policy(Bucket=bucket)["Policy"])
            except ClientError:
                current = None
            if document is None:
                if current is not None:
                    clients.s3.delete_bucket_policy(Bucket=bucket)
            elif current != document:
                clients.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
        elif rtype == "AWS::S3::Bucket":
            apply_bucket(clients, resolver.resources[name]["ref"], props, notes)
        elif rtype == "AWS::DynamoDB::Table":
            apply_table(clients, resolver.resources[name]["ref"], props)
        elif rtype == "AWS::SES::ConfigurationSet":
            apply_configuration_set(clients, props)
        elif rtype == "AWS::SES::EmailIdentity":
            apply_email_identity(clients, props)
        elif rtype == "AWS::SecretsManager::Secret":
            apply_secret(clients, props)


def apply_secret(clients: Clients, props: dict[str, Any]) -> None:
    """Created once with the template's placeholder; a value put since (by up) is kept."""
    name = props["Name"]
    try:
        clients.secretsmanager.describe_secret(SecretId=name)
        return
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
    kwargs: dict[str, Any] = {"Name": name, "Description": props.get("Description", "")}
    if "SecretString" in props:
        kwargs["SecretString"] = props["SecretString"]
    clients.secretsmanager.create_secret(**kwargs)
    log(f"secret {name} created")


def apply_configuration_set(clients: Clients, props: dict[str, Any]) -> None:
    name = props["Name"]
    try:
        clients.sesv2.get_configuration_set(ConfigurationSetName=name)
        return
    except ClientError as err:
        if error_code(err) != "NotFoundException":
            raise
    clients.sesv2.create_configuration_set(ConfigurationSetName=name)
    clients.sesv2.get_configuration_set(ConfigurationSetName=name)
    log(f"SES configuration set {name} created")


def apply_email_identity(clients: Clients, props: dict[str, Any]) -> None:
    """The emulator treats a created identity as verified; on AWS the domain's DKIM records do."""
    identity = props["EmailIdentity"]
    existing = {i["IdentityName"] for i in clients.sesv2.list_email_identities().get("EmailIdentities") or []}
    if identity in existing:
        return
    kwargs: dict[str, Any] = {"EmailIdentity": identity}
    config_set = (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
    if config_set:
        kwargs["ConfigurationSetName"] = config_set
    clients.sesv2.create_email_identity(**kwargs)
    log(f"SES identity {identity} created")


def after_stack_ref(rtype: str, name: str, props: dict[str, Any], stack_name: str) -> str:
    """Ref of a resource provision.py applies itself (CloudFormation returns a generated id)."""
    if rtype == "AWS::S3::BucketPolicy":
        return str(props.get("Bucket", name))
    if rtype == "AWS::SES::ConfigurationSet":
        return str(props.get("Name", name))
    if rtype == "AWS::SES::EmailIdentity":
        return str(props.get("EmailIdentity", name))
    if rtype == "AWS::SecretsManager::Secret":
        # On AWS, Ref is the ARN; the name reaches the same secret through every API call.
        return str(props.get("Name", f"{stack_name}-{name}"))
    return f"{stack_name}-{name}"


# --------------------------------------------------------------------------------------------
# Seed
# --------------------------------------------------------------------------------------------


def seed_tables(clients: Clients, seed_path: Path, resources: dict[str, dict[str, Any]]) -> None:
    try:
        with seed_path.open(encoding="utf-8") as f:
            seed = json.load(f, parse_float=Decimal)
    except json.JSONDecodeError as err:
        raise ProvisionError(f"{seed_path}: not JSON: {err}") from err
    if not isinstance(seed, dict):
        raise ProvisionError(f"{seed_path}: expected an object keyed by logical table id")
    serializer = TypeSerializer()
    for logical_id, items in seed.items():
        if logical_id.startswith("$") or logical_id.startswith("_"):
            continue  # comments / schema
        entry = resources.get(logical_id)
        if entry is None or entry["type"] != "AWS::DynamoDB::Table":
            raise ProvisionError(f"{seed_path}: {logical_id} is not a provisioned DynamoDB table")
        for item in items:
            if not isinstance(item, dict):
                raise ProvisionError(f"{seed_path}: {logical_id}: items must be objects")
            clients.dynamodb.put_item(TableName=entry["ref"], Item={k: serializer.serialize(v) for k, v in item.items()})
        log(f"seeded {len(items)} item(s) into {logical_id}")


# --------------------------------------------------------------------------------------------


def write_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_parameters(values: list[str], declared: dict[str, Any]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise ProvisionError(f"--parameter {raw!r}: expected Name=Value")
        if key not in declared:
            raise ProvisionError(f"--parameter {key}: the template declares no such parameter (it has {', '.join(sorted(declared))})")
        overrides[key] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", required=True, type=Path)
    parser.add_argument("--endpoint", required=True, help="the emulator's URL, e.g. http://127.0.0.1:5050")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", default="backoffice-local")
    parser.add_argument("--out", required=True, type=Path, help="where to write resources.json")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE", help="template parameter override (repeatable)")
    parser.add_argument("--seed", type=Path, help="JSON file of items to put, keyed by logical table id")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the stack")
    args = parser.parse_args(argv)

    try:
        template = load_template(args.template)
        declared = template.get("Parameters") or {}
        overrides = parse_parameters(args.parameter, declared)
        body, kept, notes = stack_template(template)

        clients = Clients(args.endpoint, args.region)
        account_id = clients.sts.get_caller_identity()["Account"]
        partition, url_suffix = partition_of(args.region)

        stack = ensure_stack(clients.cloudformation, args.stack_name, body, overrides, args.timeout)
        stack_id = stack.get("StackId", args.stack_name)

        parameters = {name: str(spec.get("Default", "")) for name, spec in declared.items() if isinstance(spec, dict)}
        for p in stack.get("Parameters") or []:
            if p["ParameterKey"] in parameters and p.get("ParameterValue") is not None:
                parameters[p["ParameterKey"]] = p["ParameterValue"]
        parameters.update(overrides)

        stack_resources = clients.cloudformation.describe_stack_resources(StackName=args.stack_name)["StackResources"]
        physical = {r["LogicalResourceId"]: r for r in stack_resources}
        resources: dict[str, dict[str, Any]] = {}
        for name, res in body["Resources"].items():
            entry = physical.get(name)
            if entry is None or not entry.get("PhysicalResourceId"):
                raise ProvisionError(f"{name} ({res['Type']}) is not in the stack's resources")
            ref, attributes = describe_resource(clients, res["Type"], entry["PhysicalResourceId"], args.region, partition, url_suffix)
            resources[name] = {"type": res["Type"], "ref": ref, "attributes": attributes}

        pseudo = {
            "AWS::AccountId": account_id,
            "AWS::Partition": partition,
            "AWS::Region": args.region,
            "AWS::StackId": stack_id,
            "AWS::StackName": args.stack_name,
            "AWS::URLSuffix": url_suffix,
            "AWS::NotificationARNs": [],
        }
        resolver = Resolver(parameters=parameters, pseudo=pseudo, resources=resources,
                            conditions=body.get("Conditions") or {}, mappings=template.get("Mappings") or {})
        for name, res in kept.items():
            if res["Type"] in APPLIED_AFTER_STACK:
                props = resolver.resolve(res.get("Properties") or {})
                resources[name] = {"type": res["Type"], "ref": after_stack_ref(res["Type"], name, props, args.stack_name), "attributes": {}}

        apply_fixups(clients, kept, resolver, notes)

        if args.seed:
            seed_tables(clients, args.seed, resources)

        for note in notes:
            log(f"note: {note}")

        write_atomically(args.out, {
            "stack_name": args.stack_name,
            "stack_id": stack_id,
            "region": args.region,
            "account_id": account_id,
            "partition": partition,
            "url_suffix": url_suffix,
            "endpoint_url": args.endpoint,
            "parameters": parameters,
            "resources": dict(sorted(resources.items())),
        })
        log(f"{len(resources)} resources in stack {args.stack_name}; wrote {args.out}")
        return 0
    except ProvisionError as err:
        log(f"error: {err}")
        return 1
    except AWS_ERRORS as err:
        log(f"error: talking to the emulator at {args.endpoint}: {short(err)}")
        return 1
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as err:
        log(f"error: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
