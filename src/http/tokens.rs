//! Verified tokens, remembered for a short time so that a decision does not
//! cost a database round trip to authenticate.
//!
//! A revoked token is dropped here at once by the instance that revoked it;
//! other instances stop honouring it when their entry expires (`ttl`).

use crate::auth::remembered::Remembered;
use crate::auth::{Principal, hash_token};
use crate::clock::Clock;
use crate::store::{Store, StoreError};

pub struct TokenCache(Remembered<Principal>);

impl TokenCache {
    pub fn new(ttl_ms: u64, clock: Clock) -> Self {
        Self(Remembered::new(ttl_ms, clock))
    }

    /// The live principal behind `secret`, or `None` for an unknown or
    /// revoked token.
    pub async fn authenticate(&self, store: &Store, secret: &str) -> Result<Option<Principal>, StoreError> {
        let hash = hash_token(secret);
        self.0.get_or_load(hash, || store.principal_by_hash(&hash)).await
    }

    /// Forgets a token at once (after revocation).
    pub fn forget(&self, token_id: &str) {
        self.0.forget(|p| p.token_id == token_id);
    }
}
