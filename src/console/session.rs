//! Console sessions: a Warden token exchanged for an HttpOnly cookie.
//!
//! The cookie carries 32 random bytes; the store keeps only their blake3
//! hash, next to the token the session acts as. A session is honoured only
//! while its token is: revoking or expiring the token ends it, as does its
//! own expiry or signing out. Every change made with a session carries the
//! session's CSRF token in the `X-Warden-CSRF` header: it is derived from
//! the cookie's secret, so only the server and a page that asked the server
//! for it (`GET /ui/session`, same origin) know it.

use axum::http::HeaderMap;
use base64::Engine as _;

use crate::auth::Principal;
use crate::auth::remembered::Remembered;
use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "warden_session";
/// The header a change made with a session must carry.
pub const CSRF_HEADER: &str = "x-warden-csrf";
/// The longest cookie value read (a session's is 43 characters).
const MAX_SECRET_LEN: usize = 64;

/// A live session, as a request made with its cookie sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub id: String,
    /// When the session stops being honoured (epoch ms).
    pub expires_at: i64,
}

/// A fresh session secret: the cookie's value, and the hash kept.
pub struct NewSecret {
    pub secret: String,
    pub hash: [u8; 32],
}

pub fn mint_secret() -> NewSecret {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("operating system random source");
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = hash_secret(&secret);
    NewSecret { secret, hash }
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

/// The CSRF token of the session whose cookie holds `secret` (64 hex digits).
pub fn csrf_token(secret: &str) -> String {
    blake3::Hash::from(blake3::derive_key("warden console csrf v1", secret.as_bytes()))
        .to_hex()
        .to_string()
}

/// Whether `header` is the CSRF token of `secret`; compared in constant time.
pub fn csrf_matches(secret: &str, header: &str) -> bool {
    match blake3::Hash::from_hex(header.trim()) {
        Ok(given) => given == blake3::derive_key("warden console csrf v1", secret.as_bytes()),
        Err(_) => false,
    }
}

/// The session secret in the request's cookies, if there is one of a
/// plausible shape (never longer than [`MAX_SECRET_LEN`]).
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= MAX_SECRET_LEN)
}

/// The `Set-Cookie` value that gives the browser `secret` for `max_age_secs`.
pub fn set_cookie(secret: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={secret}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age_secs.max(0),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// Sessions verified recently, so that a page's requests do not each cost a
/// database round trip. Signing out or revoking a token drops its entries
/// here at once; other instances stop honouring them when their entry
/// expires (`auth.cache_ttl_ms`, as for tokens).
pub struct SessionCache(Remembered<Session>);

impl SessionCache {
    pub fn new(ttl_ms: u64, clock: Clock) -> Self {
        Self(Remembered::new(ttl_ms, clock))
    }

    /// The live session behind `secret`, or `None` when it is unknown,
    /// signed out, or its token revoked. Expiry is the caller's to check.
    pub async fn authenticate(&self, store: &Store, secret: &str) -> Result<Option<Session>, StoreError> {
        let hash = hash_secret(secret);
        let load = || async {
            Ok(store
                .session_by_hash(&hash)
                .await?
                .map(|(principal, id, expires_at)| Session {
                    principal,
                    id,
                    expires_at,
                }))
        };
        self.0.get_or_load(hash, load).await
    }

    /// Forgets one session at once (signed out).
    pub fn forget_session(&self, session_id: &str) {
        self.0.forget(|s| s.id == session_id);
    }

    /// Forgets every session of a token at once (revoked).
    pub fn forget_token(&self, token_id: &str) {
        self.0.forget(|s| s.principal.token_id == token_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_belongs_to_its_session_only() {
        let a = mint_secret();
        let b = mint_secret();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 43);
        let token = csrf_token(&a.secret);
        assert_eq!(token.len(), 64);
        assert!(csrf_matches(&a.secret, &token));
        assert!(csrf_matches(&a.secret, &token.to_ascii_uppercase()));
        assert!(!csrf_matches(&b.secret, &token));
        assert!(!csrf_matches(&a.secret, ""));
        assert!(!csrf_matches(&a.secret, &token[..63]));
        // Not the hash the store keeps: knowing the CSRF token does not
        // name the session's row.
        assert_ne!(token, blake3::Hash::from(a.hash).to_hex().to_string());
    }

    #[test]
    fn cookie_is_found_among_others_and_bounded() {
        let mut h = HeaderMap::new();
        h.append("cookie", "theme=dark; warden_session=abc; other=1".parse().unwrap());
        assert_eq!(cookie_secret(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1".parse().unwrap());
        h.append("cookie", "warden_session=xyz".parse().unwrap());
        assert_eq!(cookie_secret(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.append("cookie", format!("warden_session={}", "x".repeat(65)).parse().unwrap());
        assert_eq!(cookie_secret(&h), None);
        let mut h = HeaderMap::new();
        h.append("cookie", "warden_session_x=abc; warden_session=".parse().unwrap());
        assert_eq!(cookie_secret(&h), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie("s3cret", 600, false),
            "warden_session=s3cret; Path=/; Max-Age=600; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("s", 1, true).ends_with("; Secure"));
        assert!(clear_cookie(false).starts_with("warden_session=; Path=/; Max-Age=0;"));
    }
}
