//! Secrets read at run time from Secrets Manager and cached for a while: never copied into the
//! function's environment (where every reader of the configuration sees them, and a rotation
//! needs a redeploy). A rotated secret is picked up when the cache expires, or sooner when the
//! caller asks for a fresh read (e.g. after a signature did not verify), at most once per
//! [`CachedSecret::min_refresh`].

use async_trait::async_trait;
use backoffice_domain::Clock;
use backoffice_store::sdk::SdkClient;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("secret {id} unavailable: {detail}")]
pub struct SecretError {
    pub id: String,
    pub detail: String,
}

/// Where secret strings come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret_string(&self, id: &str) -> Result<String, SecretError>;
}

pub struct SecretsManagerSource {
    client: SdkClient<aws_sdk_secretsmanager::Client>,
}

impl SecretsManagerSource {
    pub fn new(client: impl Into<SdkClient<aws_sdk_secretsmanager::Client>>) -> Self {
        Self { client: client.into() }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError {
                id: id.to_owned(),
                detail: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            })?;
        output.secret_string.ok_or_else(|| SecretError {
            id: id.to_owned(),
            detail: "the secret has no string value".into(),
        })
    }
}

/// One secret, read on first use and cached for `ttl`.
pub struct CachedSecret<S, K> {
    source: S,
    clock: K,
    id: String,
    ttl: Duration,
    min_refresh: Duration,
    cached: Mutex<Option<(OffsetDateTime, String)>>,
}

impl<S: SecretSource, K: Clock> CachedSecret<S, K> {
    /// Cached five minutes; a fresh read forced at most every 30 seconds.
    pub fn new(source: S, clock: K, id: impl Into<String>) -> Self {
        Self {
            source,
            clock,
            id: id.into(),
            ttl: Duration::minutes(5),
            min_refresh: Duration::seconds(30),
            cached: Mutex::new(None),
        }
    }

    /// The clock the cache ages by (tests move it).
    pub fn clock(&self) -> &K {
        &self.clock
    }

    /// How often a caller may force a fresh read.
    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    /// The secret, from the cache while it is younger than the TTL; with `fresh`, re-read
    /// unless the cached value is younger than [`Self::min_refresh`].
    pub async fn get(&self, fresh: bool) -> Result<String, SecretError> {
        let now = self.clock.now();
        let mut cached = self.cached.lock().await;
        if let Some((read_at, value)) = cached.as_ref() {
            let age = now - *read_at;
            if age < self.min_refresh || (!fresh && age < self.ttl) {
                return Ok(value.clone());
            }
        }
        match self.source.secret_string(&self.id).await {
            Ok(value) => {
                *cached = Some((now, value.clone()));
                Ok(value)
            }
            // A stale value beats none while Secrets Manager is unreachable.
            Err(e) => match cached.as_ref() {
                Some((_, value)) => {
                    tracing::warn!(error = %e, "secret refresh failed; the cached value stays in use");
                    Ok(value.clone())
                }
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};

    use backoffice_domain::testing::FixedClock;
    use time::macros::datetime;

    use super::*;

    #[derive(Clone, Default)]
    struct Source {
        value: Arc<StdMutex<Option<String>>>,
        reads: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl SecretSource for Source {
        async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.value
                .lock()
                .map_err(|_| SecretError {
                    id: id.into(),
                    detail: "poisoned".into(),
                })?
                .clone()
                .ok_or_else(|| SecretError {
                    id: id.into(),
                    detail: "unreachable".into(),
                })
        }
    }

    fn set(source: &Source, value: Option<&str>) {
        *source.value.lock().expect("lock") = value.map(str::to_owned);
    }

    #[tokio::test]
    async fn cached_until_the_ttl_refreshed_on_demand_at_most_every_30_seconds() {
        let source = Source::default();
        set(&source, Some("v1"));
        let secret = CachedSecret::new(
            source.clone(),
            FixedClock::at(datetime!(2026-11-30 12:00 UTC)),
            "couriers",
        );
        let clock = &secret.clock;
        assert_eq!(secret.get(false).await.expect("v1"), "v1");
        set(&source, Some("v2"));
        clock.advance(Duration::minutes(4));
        assert_eq!(secret.get(false).await.expect("cached"), "v1", "within the TTL");
        assert_eq!(
            secret.get(true).await.expect("fresh"),
            "v2",
            "a fresh read after a rotation"
        );
        set(&source, Some("v3"));
        assert_eq!(
            secret.get(true).await.expect("not again"),
            "v2",
            "no second read within 30 s"
        );
        clock.advance(Duration::minutes(6));
        assert_eq!(secret.get(false).await.expect("expired"), "v3", "past the TTL");
        assert_eq!(source.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_source_keeps_the_last_value_and_fails_without_one() {
        let source = Source::default();
        let secret = CachedSecret::new(
            source.clone(),
            FixedClock::at(datetime!(2026-11-30 12:00 UTC)),
            "couriers",
        );
        let clock = &secret.clock;
        assert!(secret.get(false).await.is_err(), "nothing read yet");
        set(&source, Some("v1"));
        assert_eq!(secret.get(false).await.expect("v1"), "v1");
        set(&source, None);
        clock.advance(Duration::minutes(10));
        assert_eq!(secret.get(false).await.expect("stale"), "v1");
    }
}
