//! The provider's signing keys, cached. A token whose key the cached set
//! lacks (the provider rotated its keys) fetches the set again, at most once
//! per [`KeyCache::min_refetch`], so tokens naming unknown keys cannot make
//! us hammer the provider. The fetch itself is a parameter (the provider's
//! HTTP call in production, a counter in tests).

use super::jose::{self, Algorithm, JoseError, JwkSet};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Token(#[from] JoseError),
    #[error("cannot fetch the provider's keys: {0}")]
    Fetch(String),
}

pub struct KeyCache {
    min_refetch: Duration,
    state: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    keys: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
}

impl KeyCache {
    pub fn new(min_refetch: Duration) -> KeyCache {
        KeyCache {
            min_refetch,
            state: Mutex::new(Cached::default()),
        }
    }

    pub fn min_refetch(&self) -> Duration {
        self.min_refetch
    }

    /// Verifies `token`'s signature and returns its claims (not yet
    /// checked: see `jose::check_claims`).
    pub async fn verify<F, Fut>(
        &self,
        token: &str,
        allowed: &[Algorithm],
        fetch: F,
    ) -> Result<Map<String, Value>, VerifyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<JwkSet, String>>,
    {
        let keys = self.current(&fetch).await?;
        match jose::verify(token, &keys, allowed) {
            Err(JoseError::UnknownKey(kid)) => {
                let Some(fresh) = self.refetched(&keys, &fetch).await? else {
                    tracing::debug!(
                        ?kid,
                        "unknown signing key; the key set was fetched too recently to fetch again"
                    );
                    return Err(JoseError::UnknownKey(kid).into());
                };
                Ok(jose::verify(token, &fresh, allowed)?)
            }
            outcome => Ok(outcome?),
        }
    }

    /// The cached set, fetched first if there is none.
    async fn current<F, Fut>(&self, fetch: &F) -> Result<Arc<JwkSet>, VerifyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<JwkSet, String>>,
    {
        let mut state = self.state.lock().await;
        if let Some(keys) = &state.keys {
            return Ok(Arc::clone(keys));
        }
        let keys = Arc::new(fetch().await.map_err(VerifyError::Fetch)?);
        state.keys = Some(Arc::clone(&keys));
        state.fetched_at = Some(Instant::now());
        Ok(keys)
    }

    /// A fresh set, unless one was fetched within `min_refetch` (then
    /// `None`, or the set another request fetched meanwhile).
    async fn refetched<F, Fut>(
        &self,
        seen: &Arc<JwkSet>,
        fetch: &F,
    ) -> Result<Option<Arc<JwkSet>>, VerifyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<JwkSet, String>>,
    {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.keys
            && !Arc::ptr_eq(current, seen)
        {
            return Ok(Some(Arc::clone(current)));
        }
        if state
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.min_refetch)
        {
            return Ok(None);
        }
        // Counted as a fetch even when it fails, so a provider that is down
        // is not asked again on every sign-in.
        state.fetched_at = Some(Instant::now());
        let keys = Arc::new(fetch().await.map_err(VerifyError::Fetch)?);
        state.keys = Some(Arc::clone(&keys));
        Ok(Some(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::super::jose::testing::{Signer, set};
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn rotation_is_followed_and_refetches_are_rate_limited() {
        let old = Signer::rsa();
        let new = Signer::ec();
        let published = std::sync::Mutex::new(set(&[old.jwk("old")]));
        let fetches = AtomicUsize::new(0);
        let fetch = || {
            fetches.fetch_add(1, Ordering::SeqCst);
            let keys = published.lock().unwrap().clone();
            async move { Ok::<_, String>(keys) }
        };
        let cache = KeyCache::new(Duration::from_secs(30));
        let claims = json!({"sub": "u"});
        let verify = |token: String| {
            let cache = &cache;
            let fetch = &fetch;
            async move { cache.verify(&token, &Algorithm::ALL, fetch).await }
        };
        assert!(verify(old.token("old", &claims)).await.is_ok());
        assert!(verify(old.token("old", &claims)).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");

        // The provider rotates; a token under the new key arrives at once:
        // too soon after the first fetch to fetch again.
        *published.lock().unwrap() = set(&[old.jwk("old"), new.jwk("new")]);
        let refused = verify(new.token("new", &claims)).await.unwrap_err();
        assert!(matches!(
            refused,
            VerifyError::Token(JoseError::UnknownKey(_))
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(verify(new.token("new", &claims)).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "refetched once");
        // A kid nobody publishes is refused without another fetch.
        assert!(verify(new.token("bogus", &claims)).await.is_err());
        assert!(verify(new.token("bogus", &claims)).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A bad signature never refetches.
        tokio::time::advance(Duration::from_secs(31)).await;
        let forged = Signer::other_rsa().token("old", &claims);
        assert!(matches!(
            verify(forged).await.unwrap_err(),
            VerifyError::Token(JoseError::BadSignature)
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_an_error_and_is_retried_later() {
        let cache = KeyCache::new(Duration::from_secs(30));
        let failing = || async { Err::<JwkSet, _>("connection refused".to_string()) };
        let token = Signer::rsa().token("k", &json!({}));
        let error = cache
            .verify(&token, &Algorithm::ALL, failing)
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::Fetch(_)), "{error}");
        // Nothing was cached: the next sign-in fetches again.
        let signer = Signer::rsa();
        let keys = set(&[signer.jwk("k")]);
        let working = || {
            let keys = keys.clone();
            async move { Ok::<_, String>(keys) }
        };
        assert!(cache.verify(&token, &Algorithm::ALL, working).await.is_ok());
    }
}
