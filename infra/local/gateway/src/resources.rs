//! `resources.json` (written by `infra/local/provision.py`) and the resolution of the template's
//! intrinsic functions against it.
//!
//! `!Ref X` resolves to `resources.X.ref`, a parameter (`parameters.X`, else the template's
//! `Default`), or a pseudo parameter; `!GetAtt X.Attr` to `resources.X.attributes.Attr`; `!Sub`,
//! `!Join`, `!Select`, `!Split`, `!Base64` and `!FindInMap` are expanded from those. Resources the
//! gateway itself plays are resolved locally: an `AWS::Serverless::HttpApi` missing from
//! resources.json is the id [`LOCAL_API_ID`], a function is `<stack_name>-<LogicalId>`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use yaml_serde::{Mapping, Value};

/// The API id of the (only) HTTP API the gateway plays.
pub const LOCAL_API_ID: &str = "local";

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid resources.json: {source}")]
    Parse { path: String, source: serde_json::Error },
}

/// A JSON scalar (string, number or bool) read as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Scalar(s)),
            serde_json::Value::Number(n) => Ok(Scalar(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Scalar(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or bool, found {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceEntry {
    #[serde(rename = "type", default)]
    pub resource_type: String,
    #[serde(rename = "ref")]
    pub reference: Scalar,
    #[serde(default)]
    pub attributes: BTreeMap<String, Scalar>,
}

fn default_partition() -> String {
    "aws".to_owned()
}

/// The contents of resources.json.
#[derive(Debug, Clone, Deserialize)]
pub struct Resources {
    pub stack_name: String,
    pub region: String,
    pub account_id: String,
    #[serde(default = "default_partition")]
    pub partition: String,
    /// The emulator's endpoint (`AWS_ENDPOINT_URL` of every function, the SQS pollers' endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceEntry>,
}

impl Resources {
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ResourcesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ResourcesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|source| ResourcesError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// `AWS::URLSuffix` of the partition.
    pub fn url_suffix(&self) -> &'static str {
        match self.partition.as_str() {
            "aws-cn" => "amazonaws.com.cn",
            _ => "amazonaws.com",
        }
    }

    /// The deployed name of a function of the stack: `<stack_name>-<LogicalId>`.
    pub fn function_name(&self, logical_id: &str) -> String {
        format!("{}-{logical_id}", self.stack_name)
    }

    pub fn function_arn(&self, logical_id: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition,
            self.region,
            self.account_id,
            self.function_name(logical_id)
        )
    }

    /// The queue URL of the queue with this ARN (its `QueueUrl` attribute, else its `ref`).
    pub fn queue_url_for_arn(&self, arn: &str) -> Option<String> {
        self.resources
            .values()
            .find(|r| r.attributes.get("Arn").is_some_and(|a| a.0 == arn))
            .map(|r| {
                r.attributes
                    .get("QueueUrl")
                    .map(|u| u.0.clone())
                    .unwrap_or_else(|| r.reference.0.clone())
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("!Ref {0}: not a parameter, pseudo parameter or resource in resources.json (is the stack provisioned?)")]
    UnknownRef(String),
    #[error("!GetAtt {resource}.{attribute}: resources.json has no such attribute")]
    UnknownAttribute { resource: String, attribute: String },
    #[error("{0} is not supported by the local gateway")]
    Unsupported(String),
    #[error("malformed {function}: {detail}")]
    Malformed { function: String, detail: String },
    #[error("{0} does not resolve to a scalar")]
    NotScalar(String),
}

/// Resolves intrinsic functions of one template against resources.json.
pub struct Resolver<'a> {
    resources: &'a Resources,
    /// Template parameters' `Default`s (used when resources.json has no value).
    parameter_defaults: BTreeMap<String, String>,
    /// Logical id -> `Type` of every template resource.
    resource_types: BTreeMap<String, String>,
    mappings: Mapping,
}

fn malformed(function: &str, detail: impl Into<String>) -> ResolveError {
    ResolveError::Malformed {
        function: function.to_owned(),
        detail: detail.into(),
    }
}

/// Text of a plain (already resolved) scalar value.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// `Some((name, args))` when `value` is an intrinsic function call, in short (`!Ref x`) or long
/// (`{"Ref": x}`, `{"Fn::Sub": ...}`) form; the name is normalised to the long form.
pub fn as_intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = if name == "Ref" || name == "Condition" {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            Some((name, &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, args) = map.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_owned(), args))
        }
        _ => None,
    }
}

impl<'a> Resolver<'a> {
    /// `template` is the whole parsed template (for `Parameters`, `Resources` types, `Mappings`).
    pub fn new(resources: &'a Resources, template: &Value) -> Self {
        let mut parameter_defaults = BTreeMap::new();
        if let Some(params) = template.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                if let (Some(name), Some(default)) = (name.as_str(), spec.get("Default").and_then(scalar_text)) {
                    parameter_defaults.insert(name.to_owned(), default);
                }
            }
        }
        let mut resource_types = BTreeMap::new();
        if let Some(res) = template.get("Resources").and_then(Value::as_mapping) {
            for (name, spec) in res {
                if let (Some(name), Some(kind)) = (name.as_str(), spec.get("Type").and_then(Value::as_str)) {
                    resource_types.insert(name.to_owned(), kind.to_owned());
                }
            }
        }
        let mappings = template
            .get("Mappings")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Resolver {
            resources,
            parameter_defaults,
            resource_types,
            mappings,
        }
    }

    pub fn resources(&self) -> &Resources {
        self.resources
    }

    /// Resolves every intrinsic inside `value`; the result has no tags and no intrinsic maps.
    pub fn resolve(&self, value: &Value) -> Result<Value, ResolveError> {
        if let Some((name, args)) = as_intrinsic(value) {
            return self.call(&name, args);
        }
        match value {
            Value::Sequence(items) => items
                .iter()
                .map(|v| self.resolve(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Sequence),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.resolve(v)?);
                }
                Ok(Value::Mapping(out))
            }
            Value::Tagged(t) => self.resolve(&t.value),
            other => Ok(other.clone()),
        }
    }

    /// Resolves `value` to a scalar's text (numbers and bools as their text).
    pub fn resolve_string(&self, value: &Value) -> Result<String, ResolveError> {
        let resolved = self.resolve(value)?;
        scalar_text(&resolved).ok_or_else(|| ResolveError::NotScalar(short(&resolved)))
    }

    fn call(&self, name: &str, args: &Value) -> Result<Value, ResolveError> {
        match name {
            "Ref" => {
                let target = self
                    .resolve_string(args)
                    .map_err(|_| malformed("!Ref", "expects a logical id"))?;
                self.reference(&target).map(Value::String)
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match self.resolve(args)? {
                    Value::String(s) => match s.split_once('.') {
                        Some((r, a)) => (r.to_owned(), a.to_owned()),
                        None => {
                            return Err(malformed("!GetAtt", format!("{s:?} is not Resource.Attribute")));
                        }
                    },
                    Value::Sequence(items) if items.len() == 2 => {
                        match (scalar_text(&items[0]), scalar_text(&items[1])) {
                            (Some(r), Some(a)) => (r, a),
                            _ => return Err(malformed("!GetAtt", "expects [Resource, Attribute]")),
                        }
                    }
                    other => {
                        return Err(malformed(
                            "!GetAtt",
                            format!("expects Resource.Attribute, found {}", short(&other)),
                        ));
                    }
                };
                self.attribute(&resource, &attribute).map(Value::String)
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Value::Sequence(items) if items.len() == 2 => {
                        let text = self.resolve_string(&items[0])?;
                        let mut vars = BTreeMap::new();
                        let map = items[1]
                            .as_mapping()
                            .ok_or_else(|| malformed("!Sub", "the second element must be a map of variables"))?;
                        for (k, v) in map {
                            let key = k
                                .as_str()
                                .ok_or_else(|| malformed("!Sub", "variable names must be strings"))?;
                            vars.insert(key.to_owned(), self.resolve_string(v)?);
                        }
                        (text, vars)
                    }
                    other => (
                        self.resolve_string(other)
                            .map_err(|_| malformed("!Sub", "expects a string or [string, {vars}]"))?,
                        BTreeMap::new(),
                    ),
                };
                self.substitute(&text, &vars).map(Value::String)
            }
            "Fn::Join" => {
                let Value::Sequence(items) = args else {
                    return Err(malformed("!Join", "expects [delimiter, [values]]"));
                };
                let [delimiter, list] = items.as_slice() else {
                    return Err(malformed("!Join", "expects [delimiter, [values]]"));
                };
                let delimiter = self.resolve_string(delimiter)?;
                let Value::Sequence(values) = self.resolve(list)? else {
                    return Err(malformed("!Join", "the second element must be a list"));
                };
                let parts = values
                    .iter()
                    .map(|v| scalar_text(v).ok_or_else(|| ResolveError::NotScalar(short(v))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::String(parts.join(&delimiter)))
            }
            "Fn::Select" => {
                let Value::Sequence(items) = args else {
                    return Err(malformed("!Select", "expects [index, [values]]"));
                };
                let [index, list] = items.as_slice() else {
                    return Err(malformed("!Select", "expects [index, [values]]"));
                };
                let index: usize = self
                    .resolve_string(index)?
                    .parse()
                    .map_err(|_| malformed("!Select", "the index must be a non-negative integer"))?;
                let Value::Sequence(values) = self.resolve(list)? else {
                    return Err(malformed("!Select", "the second element must be a list"));
                };
                values
                    .get(index)
                    .cloned()
                    .ok_or_else(|| malformed("!Select", format!("index {index} out of a list of {}", values.len())))
            }
            "Fn::Split" => {
                let Value::Sequence(items) = args else {
                    return Err(malformed("!Split", "expects [delimiter, string]"));
                };
                let [delimiter, source] = items.as_slice() else {
                    return Err(malformed("!Split", "expects [delimiter, string]"));
                };
                let delimiter = self.resolve_string(delimiter)?;
                if delimiter.is_empty() {
                    return Err(malformed("!Split", "empty delimiter"));
                }
                let source = self.resolve_string(source)?;
                Ok(Value::Sequence(
                    source
                        .split(delimiter.as_str())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            }
            "Fn::Base64" => {
                let text = self.resolve_string(args)?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(text)))
            }
            "Fn::FindInMap" => {
                let Value::Sequence(items) = args else {
                    return Err(malformed("!FindInMap", "expects [Map, TopKey, SecondKey]"));
                };
                let [map, top, second] = items.as_slice() else {
                    return Err(malformed("!FindInMap", "expects [Map, TopKey, SecondKey]"));
                };
                let (map, top, second) = (
                    self.resolve_string(map)?,
                    self.resolve_string(top)?,
                    self.resolve_string(second)?,
                );
                self.mappings
                    .get(map.as_str())
                    .and_then(|m| m.get(top.as_str()))
                    .and_then(|m| m.get(second.as_str()))
                    .map(|v| self.resolve(v))
                    .unwrap_or_else(|| Err(malformed("!FindInMap", format!("no {map}.{top}.{second} in Mappings"))))
            }
            other => Err(ResolveError::Unsupported(other.replacen("Fn::", "!", 1))),
        }
    }

    /// `!Ref name`.
    pub fn reference(&self, name: &str) -> Result<String, ResolveError> {
        let res = self.resources;
        let pseudo = match name {
            "AWS::Region" => Some(res.region.clone()),
            "AWS::AccountId" => Some(res.account_id.clone()),
            "AWS::Partition" => Some(res.partition.clone()),
            "AWS::StackName" => Some(res.stack_name.clone()),
            "AWS::URLSuffix" => Some(res.url_suffix().to_owned()),
            "AWS::StackId" => Some(format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
                res.partition, res.region, res.account_id, res.stack_name
            )),
            _ if name.starts_with("AWS::") => {
                return Err(ResolveError::Unsupported(format!("pseudo parameter {name}")));
            }
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(value);
        }
        if let Some(value) = res.parameters.get(name) {
            return Ok(value.0.clone());
        }
        if let Some(value) = self.parameter_defaults.get(name) {
            return Ok(value.clone());
        }
        if let Some(entry) = res.resources.get(name) {
            return Ok(entry.reference.0.clone());
        }
        match self.resource_types.get(name).map(String::as_str) {
            Some("AWS::Serverless::HttpApi" | "AWS::ApiGatewayV2::Api") => Ok(LOCAL_API_ID.to_owned()),
            Some("AWS::Serverless::Function" | "AWS::Lambda::Function") => Ok(res.function_name(name)),
            _ => Err(ResolveError::UnknownRef(name.to_owned())),
        }
    }

    /// `!GetAtt resource.attribute`.
    pub fn attribute(&self, resource: &str, attribute: &str) -> Result<String, ResolveError> {
        if let Some(value) = self
            .resources
            .resources
            .get(resource)
            .and_then(|r| r.attributes.get(attribute))
        {
            return Ok(value.0.clone());
        }
        match (self.resource_types.get(resource).map(String::as_str), attribute) {
            (Some("AWS::Serverless::Function" | "AWS::Lambda::Function"), "Arn") => {
                Ok(self.resources.function_arn(resource))
            }
            _ => Err(ResolveError::UnknownAttribute {
                resource: resource.to_owned(),
                attribute: attribute.to_owned(),
            }),
        }
    }

    /// Expands `${Name}`, `${Resource.Attr}` and `${!Literal}` in a `!Sub` string.
    pub fn substitute(&self, text: &str, vars: &BTreeMap<String, String>) -> Result<String, ResolveError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| malformed("!Sub", format!("unterminated ${{ in {text:?}")))?;
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(value);
            } else if name.starts_with("AWS::") || !name.contains('.') {
                out.push_str(&self.reference(name)?);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn short(value: &Value) -> String {
    let text = yaml_serde::to_string(value).unwrap_or_default();
    let text = text.trim();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RESOURCES: &str = r#"{
      "stack_name": "backoffice-local", "region": "us-east-1", "account_id": "123456789012", "partition": "aws",
      "endpoint_url": "http://127.0.0.1:5051",
      "parameters": { "Stage": "local", "Retries": 3 },
      "resources": {
        "PresalesTable": { "type": "AWS::DynamoDB::Table", "ref": "presales-local",
                           "attributes": { "Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/presales-local" } },
        "SalesQueue": { "type": "AWS::SQS::Queue", "ref": "http://127.0.0.1:5051/123456789012/sales",
                        "attributes": { "Arn": "arn:aws:sqs:us-east-1:123456789012:sales", "QueueName": "sales" } }
      }
    }"#;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  JwtAudience: {Type: String, Default: backoffice-api}
Mappings:
  Sizes:
    local: {Memory: 512}
Resources:
  HttpApi: {Type: AWS::Serverless::HttpApi}
  OtherFunction: {Type: AWS::Serverless::Function}
  PresalesTable: {Type: AWS::DynamoDB::Table}
  SalesQueue: {Type: AWS::SQS::Queue}
"#;

    fn with<T>(f: impl FnOnce(&Resolver) -> T) -> T {
        let resources = Resources::from_json(RESOURCES).expect("fixture");
        let template: Value = yaml_serde::from_str(TEMPLATE).expect("fixture");
        let resolver = Resolver::new(&resources, &template);
        f(&resolver)
    }

    fn yaml(text: &str) -> Value {
        yaml_serde::from_str(text).expect("test yaml")
    }

    fn resolve(text: &str) -> Result<String, ResolveError> {
        with(|r| r.resolve_string(&yaml(text)))
    }

    #[test]
    fn refs_short_and_long() {
        assert_eq!(resolve("!Ref PresalesTable").as_deref(), Ok("presales-local"));
        assert_eq!(resolve("{Ref: PresalesTable}").as_deref(), Ok("presales-local"));
        assert_eq!(resolve("!Ref HttpApi").as_deref(), Ok("local"));
        assert_eq!(
            resolve("!Ref OtherFunction").as_deref(),
            Ok("backoffice-local-OtherFunction")
        );
        assert_eq!(resolve("!Ref Missing"), Err(ResolveError::UnknownRef("Missing".into())));
    }

    #[test]
    fn parameters_from_resources_then_defaults() {
        assert_eq!(
            resolve("!Ref Stage").as_deref(),
            Ok("local"),
            "resources.json wins over Default"
        );
        assert_eq!(resolve("!Ref JwtAudience").as_deref(), Ok("backoffice-api"), "Default");
        assert_eq!(resolve("!Ref Retries").as_deref(), Ok("3"), "numbers as text");
    }

    #[test]
    fn pseudo_parameters() {
        assert_eq!(resolve("!Ref AWS::Region").as_deref(), Ok("us-east-1"));
        assert_eq!(resolve("!Ref AWS::AccountId").as_deref(), Ok("123456789012"));
        assert_eq!(resolve("!Ref AWS::Partition").as_deref(), Ok("aws"));
        assert_eq!(resolve("!Ref AWS::StackName").as_deref(), Ok("backoffice-local"));
        assert_eq!(resolve("!Ref AWS::URLSuffix").as_deref(), Ok("amazonaws.com"));
        assert!(matches!(
            resolve("!Ref AWS::NotificationARNs"),
            Err(ResolveError::Unsupported(_))
        ));
    }

    #[test]
    fn get_att_forms() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:sales";
        assert_eq!(resolve("!GetAtt SalesQueue.Arn").as_deref(), Ok(arn));
        assert_eq!(resolve("!GetAtt [SalesQueue, Arn]").as_deref(), Ok(arn));
        assert_eq!(resolve("{'Fn::GetAtt': [SalesQueue, Arn]}").as_deref(), Ok(arn));
        assert_eq!(resolve("{'Fn::GetAtt': SalesQueue.Arn}").as_deref(), Ok(arn));
        assert_eq!(
            resolve("!GetAtt OtherFunction.Arn").as_deref(),
            Ok("arn:aws:lambda:us-east-1:123456789012:function:backoffice-local-OtherFunction")
        );
        assert_eq!(
            resolve("!GetAtt SalesQueue.Nope"),
            Err(ResolveError::UnknownAttribute {
                resource: "SalesQueue".into(),
                attribute: "Nope".into()
            })
        );
    }

    #[test]
    fn sub_forms() {
        assert_eq!(
            resolve(r#"!Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}""#).as_deref(),
            Ok("https://local.execute-api.us-east-1.amazonaws.com")
        );
        assert_eq!(
            resolve(r#"!Sub "${SalesQueue.QueueName}-${Stage}-${!Literal}""#).as_deref(),
            Ok("sales-local-${Literal}")
        );
        assert_eq!(
            resolve(r#"!Sub ["${Name}/${Table}", {Name: x, Table: !Ref PresalesTable}]"#).as_deref(),
            Ok("x/presales-local")
        );
        assert_eq!(
            resolve(r#"{"Fn::Sub": "${AWS::StackName}-x"}"#).as_deref(),
            Ok("backoffice-local-x")
        );
        assert_eq!(
            resolve(r#"!Sub "${Nope}""#),
            Err(ResolveError::UnknownRef("Nope".into()))
        );
        assert!(matches!(
            resolve(r#"!Sub "${Open""#),
            Err(ResolveError::Malformed { .. })
        ));
    }

    #[test]
    fn join_select_split_base64_findinmap() {
        assert_eq!(
            resolve(r#"!Join [":", [a, !Ref Stage, !GetAtt SalesQueue.QueueName]]"#).as_deref(),
            Ok("a:local:sales")
        );
        assert_eq!(resolve(r#"{"Fn::Join": ["", [x, y]]}"#).as_deref(), Ok("xy"));
        assert_eq!(resolve(r#"!Select [1, [a, b, c]]"#).as_deref(), Ok("b"));
        assert!(resolve(r#"!Select [5, [a]]"#).is_err());
        assert_eq!(
            resolve(r#"!Select [5, !Split [":", !GetAtt SalesQueue.Arn]]"#).as_deref(),
            Ok("sales")
        );
        assert_eq!(resolve("!Base64 hi").as_deref(), Ok("aGk="));
        assert_eq!(resolve("!FindInMap [Sizes, !Ref Stage, Memory]").as_deref(), Ok("512"));
        assert!(matches!(resolve("!If [C, a, b]"), Err(ResolveError::Unsupported(_))));
    }

    #[test]
    fn queue_url_by_arn() {
        let resources = Resources::from_json(RESOURCES).expect("fixture");
        assert_eq!(
            resources
                .queue_url_for_arn("arn:aws:sqs:us-east-1:123456789012:sales")
                .as_deref(),
            Some("http://127.0.0.1:5051/123456789012/sales")
        );
        assert_eq!(resources.queue_url_for_arn("arn:nope"), None);
    }
}
