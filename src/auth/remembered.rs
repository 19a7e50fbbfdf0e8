//! Identities verified against the store, remembered for a short time by
//! the blake3 hash of the secret that proved them (a bearer token's, a
//! console session's), so that a request does not cost a database round
//! trip to authenticate.
//!
//! Whoever ends an identity (a revocation, a sign-out) forgets it here at
//! once; other instances stop honouring it when their entry expires (`ttl`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::clock::Clock;

/// Entries kept at most; past this the cache starts afresh.
const CAP: usize = 10_000;

pub struct Remembered<V> {
    ttl_ms: i64,
    clock: Clock,
    entries: Mutex<HashMap<[u8; 32], (V, i64)>>,
}

impl<V: Clone> Remembered<V> {
    pub fn new(ttl_ms: u64, clock: Clock) -> Self {
        Self {
            ttl_ms: ttl_ms as i64,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// What `hash` proved, remembered, or else what `load` finds (then
    /// remembered for the ttl; nothing found is never remembered). `load`
    /// is only called on a miss.
    pub async fn get_or_load<E, F: Future<Output = Result<Option<V>, E>>>(
        &self,
        hash: [u8; 32],
        load: impl FnOnce() -> F,
    ) -> Result<Option<V>, E> {
        let now = self.clock.now_ms();
        if let Some((v, until)) = self.entries.lock().expect("remembered identities lock").get(&hash)
            && *until > now
        {
            return Ok(Some(v.clone()));
        }
        let found = load().await?;
        if let Some(v) = &found
            && self.ttl_ms > 0
        {
            let mut entries = self.entries.lock().expect("remembered identities lock");
            if entries.len() >= CAP {
                entries.clear();
            }
            entries.insert(hash, (v.clone(), now + self.ttl_ms));
        }
        Ok(found)
    }

    /// Forgets at once every identity `ended` says has ended.
    pub fn forget(&self, ended: impl Fn(&V) -> bool) {
        self.entries
            .lock()
            .expect("remembered identities lock")
            .retain(|_, (v, _)| !ended(v));
    }
}
