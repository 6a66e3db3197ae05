//! The local stack the benchmark runs against (`infra/local/up` writes its `stack.json`), the
//! template read through the gateway's parser, and the tokens its authorizer accepts.

use std::path::{Path, PathBuf};

use local_gateway::resources::Resources;
use local_gateway::template::{AuthConfig, Template};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a stack description: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error(transparent)]
    Template(#[from] local_gateway::template::TemplateError),
    #[error("the template's HTTP API has no JWT authorizer")]
    NoAuthorizer,
    #[error("cannot mint a token: {0}")]
    Token(#[from] local_gateway::jwt::JwtError),
    #[error("resources.json has no {0}")]
    NoResource(String),
}

/// What the benchmark reads of `stack.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub api_url: String,
    pub endpoint_url: String,
    pub region: String,
    pub resources_file: PathBuf,
    pub template: PathBuf,
    pub jwt_secret: String,
}

pub struct Stack {
    pub info: StackInfo,
    pub template: Template,
    pub resources: Resources,
    pub auth: AuthConfig,
}

/// Who calls the API in the benchmark (one tenant, the demo client of `infra/local/seed.json`).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub sub: &'static str,
    pub role: &'static str,
}

pub const CLIENT: &str = "acme";
pub const CAMPAIGN: &str = "acme-fibra";
pub const AGENT: Caller = Caller {
    sub: "agent-coldstart",
    role: "agent",
};
pub const VALIDATOR: Caller = Caller {
    sub: "val-coldstart",
    role: "validator",
};
pub const SUPERVISOR: Caller = Caller {
    sub: "sup-coldstart",
    role: "supervisor",
};
pub const FINANCE: Caller = Caller {
    sub: "fin-coldstart",
    role: "finance",
};

impl Stack {
    pub fn load(path: &Path) -> Result<Stack, StackError> {
        let text = std::fs::read_to_string(path).map_err(|source| StackError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let info: StackInfo = serde_json::from_str(&text).map_err(|source| StackError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        let (template, resources) = local_gateway::template::load(&info.template, &info.resources_file)?;
        let auth = template.auth.clone().ok_or(StackError::NoAuthorizer)?;
        Ok(Stack {
            info,
            template,
            resources,
            auth,
        })
    }

    pub fn token(&self, who: Caller) -> Result<String, StackError> {
        let clients = [CLIENT.to_owned()];
        Ok(local_gateway::jwt::mint(
            &self.info.jwt_secret,
            &self.auth,
            who.sub,
            who.role,
            &clients,
            3600,
        )?)
    }

    /// A resource's physical id (table name, queue URL, bucket name).
    pub fn reference(&self, logical_id: &str) -> Result<String, StackError> {
        self.resources
            .resources
            .get(logical_id)
            .map(|r| r.reference.0.clone())
            .ok_or_else(|| StackError::NoResource(logical_id.to_owned()))
    }

    pub fn attribute(&self, logical_id: &str, attribute: &str) -> Result<String, StackError> {
        self.resources
            .resources
            .get(logical_id)
            .and_then(|r| r.attributes.get(attribute))
            .map(|a| a.0.clone())
            .ok_or_else(|| StackError::NoResource(format!("{logical_id}.{attribute}")))
    }
}
