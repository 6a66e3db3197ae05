//! An AWS SDK client built the first time an adapter uses it, not at init.
//!
//! Building a client costs a few hundred microseconds: each service's configuration parses its
//! endpoint partitions and compiles their region patterns. Built at init, every client a
//! function might need delayed every cold start, although most invocations use one or two of
//! them (a review's GET never publishes, a sweep that finds nothing never e-mails). Built on
//! first use, a client costs its first request only, and an instance that never needs it never
//! builds it (issue 14, ADR 0033).

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

type Build<C> = Box<dyn FnOnce() -> C + Send>;

/// A client shared by clones, built once by the first `Deref` (the adapters call it as if it
/// were the client). `From<C>` wraps a client already built (tests, tools).
pub struct SdkClient<C>(Arc<LazyLock<C, Build<C>>>);

impl<C> SdkClient<C> {
    /// A client that `build` makes when it is first used.
    pub fn lazy(build: impl FnOnce() -> C + Send + 'static) -> Self {
        SdkClient(Arc::new(LazyLock::new(Box::new(build))))
    }
}

impl<C: Send + 'static> From<C> for SdkClient<C> {
    fn from(client: C) -> Self {
        SdkClient::lazy(move || client)
    }
}

impl<C> Deref for SdkClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C> Clone for SdkClient<C> {
    fn clone(&self) -> Self {
        SdkClient(Arc::clone(&self.0))
    }
}

impl<C> fmt::Debug for SdkClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Formatting must not build it.
        f.write_str("SdkClient")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn built_once_on_first_use_and_shared_by_clones() {
        static BUILT: AtomicUsize = AtomicUsize::new(0);
        let client = SdkClient::lazy(|| {
            BUILT.fetch_add(1, Ordering::SeqCst);
            String::from("client")
        });
        let clone = client.clone();
        assert_eq!(format!("{client:?}"), "SdkClient");
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            0,
            "not built by creating, cloning or formatting it"
        );
        assert_eq!(clone.len(), 6);
        assert_eq!(client.as_str(), "client");
        assert_eq!(BUILT.load(Ordering::SeqCst), 1, "built once for both");
    }

    #[test]
    fn a_client_built_before_is_used_as_it_is() {
        let client: SdkClient<Vec<u8>> = vec![1, 2].into();
        assert_eq!(client.len(), 2);
    }
}
