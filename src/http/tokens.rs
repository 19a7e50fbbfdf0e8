//! Verified tokens, remembered for a short time so that a decision does not
//! cost a database round trip to authenticate.
//!
//! A revoked token is dropped here at once by the instance that revoked it;
//! other instances stop honouring it when their entry expires (`ttl`).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::{Principal, hash_token};
use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Entries kept at most; past this the cache starts afresh.
const CAP: usize = 10_000;

pub struct TokenCache {
    ttl_ms: i64,
    clock: Clock,
    entries: Mutex<HashMap<[u8; 32], (Principal, i64)>>,
}

impl TokenCache {
    pub fn new(ttl_ms: u64, clock: Clock) -> Self {
        Self {
            ttl_ms: ttl_ms as i64,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The live principal behind `secret`, or `None` for an unknown or
    /// revoked token.
    pub async fn authenticate(&self, store: &Store, secret: &str) -> Result<Option<Principal>, StoreError> {
        let hash = hash_token(secret);
        let now = self.clock.now_ms();
        if let Some((p, expires)) = self.entries.lock().expect("token cache lock").get(&hash)
            && *expires > now
        {
            return Ok(Some(p.clone()));
        }
        let found = store.principal_by_hash(&hash).await?;
        if let Some(p) = &found
            && self.ttl_ms > 0
        {
            let mut entries = self.entries.lock().expect("token cache lock");
            if entries.len() >= CAP {
                entries.clear();
            }
            entries.insert(hash, (p.clone(), now + self.ttl_ms));
        }
        Ok(found)
    }

    /// Forgets a token at once (after revocation).
    pub fn forget(&self, token_id: &str) {
        self.entries
            .lock()
            .expect("token cache lock")
            .retain(|_, (p, _)| p.token_id != token_id);
    }
}
