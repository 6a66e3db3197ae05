//! Settings from environment variables (set by the template on AWS, by the local gateway here).

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {detail}")]
    Invalid { name: &'static str, detail: String },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An optional number with a default; a present but unparsable value is an error, not the default.
pub fn number_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            detail: e.to_string(),
        }),
    }
}

/// Table names every HTTP function of the pre-sale context uses.
#[derive(Debug, Clone)]
pub struct Tables {
    pub presales: String,
    pub config: String,
    pub idempotency: String,
}

impl Tables {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            presales: required("PRESALES_TABLE")?,
            config: required("CONFIG_TABLE")?,
            idempotency: required("IDEMPOTENCY_TABLE")?,
        })
    }
}

/// How long a warm instance keeps the configuration it read (`CONFIG_CACHE_SECONDS`, default
/// 60; 0 reads it every time): see `DynamoCampaignDirectory::cached_for`.
pub fn config_cache_ttl() -> Result<std::time::Duration, ConfigError> {
    number_or("CONFIG_CACHE_SECONDS", 60u64).map(std::time::Duration::from_secs)
}
