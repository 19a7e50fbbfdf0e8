//! Extractors: the authenticated caller, and JSON bodies whose every
//! rejection is a problem document.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::Problem;
use crate::auth::{Action, Principal};
use crate::console::session::{self, Session};

/// The caller, authenticated by its bearer token (or by the console
/// session cookie standing for one, when there is no `Authorization`).
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses the request unless the caller's roles allow `action`.
    pub fn require(&self, action: Action) -> Result<&Principal, Problem> {
        if self.0.may(action) {
            return Ok(&self.0);
        }
        let needs: Vec<&str> = std::iter::once("admin")
            .chain(action.roles().iter().map(|r| r.as_str()))
            .collect();
        let detail = if action == Action::ManageTenants {
            "only admins of the platform tenant may manage tenants".to_string()
        } else {
            format!(
                "this token's roles ({}) do not allow this; it needs one of: {}",
                self.0.roles.to_csv(),
                needs.join(", ")
            )
        };
        Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", detail))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // The console's pages call the API with their session cookie.
            if let Some(secret) = session::cookie_secret(&parts.headers) {
                return session_caller(parts, state, secret).await.map(|s| Caller(s.principal));
            }
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send a bearer token: Authorization: Bearer <token>",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the Authorization header must be \"Bearer <token>\"",
                )
            })?;
        let principal = state.tokens.authenticate(&state.store, token).await?;
        live(
            principal,
            state,
            "the bearer token is unknown or revoked; ask an admin for a valid token",
        )
        .map(Caller)
    }
}

/// A token's principal if it is still honoured: unknown or revoked is
/// `invalid_token` (with `unknown`), past its expiry `token_expired`.
pub fn live(principal: Option<Principal>, state: &AppState, unknown: &'static str) -> Result<Principal, Problem> {
    match principal {
        Some(p) if p.expired(state.clock.now_ms()) => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            format!(
                "the token expired at {}; ask an admin for a new one",
                crate::clock::rfc3339_ms(p.expires_at.unwrap_or_default())
            ),
        )),
        Some(p) => Ok(p),
        None => Err(Problem::new(StatusCode::UNAUTHORIZED, "invalid_token", unknown)),
    }
}

/// The live console session of the request's cookie `secret`. A request
/// that may change something (any method but GET, HEAD and OPTIONS) must
/// also carry the session's CSRF token, or it is refused with 403
/// `csrf_failed` before the route runs.
pub async fn session_caller(parts: &Parts, state: &AppState, secret: &str) -> Result<Session, Problem> {
    let ended = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "session_ended",
            "the console session has ended (signed out, expired, or its token revoked); sign in again",
        )
    };
    let found = state
        .sessions
        .authenticate(&state.store, secret)
        .await?
        .ok_or_else(ended)?;
    let Session {
        principal,
        id,
        expires_at,
    } = found;
    if expires_at <= state.clock.now_ms() {
        return Err(ended());
    }
    // Its token's expiry ends it too.
    let principal = live(Some(principal), state, "")?;
    if !parts.method.is_safe() {
        let csrf = parts.headers.get(session::CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf.is_some_and(|c| session::csrf_matches(secret, c)) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "a change made with a console session must carry the session's CSRF token in the X-Warden-CSRF header (GET /ui/session gives it)",
            ));
        }
    }
    Ok(Session {
        principal,
        id,
        expires_at,
    })
}

/// A JSON body, bounded in size and depth, parsed with the failing field named.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let max_depth = state.config.limits.max_json_depth;
        let bytes = read_body(req, state).await?;
        parse_json(&bytes, max_depth).map(ApiJson)
    }
}

/// The most bytes a route reads of a request body, and the setting that
/// says so: `limits.max_body_bytes`, unless the route sets another
/// (bundles: `limits.max_bundle_bytes`). A layer of
/// `Extension(BodyLimit { .. })`; the innermost wins.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub setting: &'static str,
}

/// Of a body over its limit, how much is read and thrown away before the
/// `413` is answered. A client still sending when a server answers and
/// closes gets a reset connection instead of the answer; reading the rest
/// (as web servers' "lingering close" does) lets it read why. Past either
/// bound the connection is closed.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the body within the route's [`BodyLimit`]; a body over it is a
/// `body_too_large` problem, answered once the client has sent it.
pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, Problem> {
    let limit = req.extensions().get::<BodyLimit>().copied().unwrap_or(BodyLimit {
        bytes: state.config.limits.max_body_bytes,
        setting: "limits.max_body_bytes",
    });
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body().into_data_stream();
    if declared.is_some_and(|n| n > limit.bytes as u64) {
        drain(body).await;
        return Err(too_large(limit));
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| Problem::bad_request("body_unreadable", format!("the request body could not be read: {e}")))?;
        len += chunk.len();
        if len > limit.bytes {
            drain(body).await;
            return Err(too_large(limit));
        }
        chunks.push(chunk);
    }
    // One chunk (the usual case) is kept as it came, uncopied.
    Ok(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

fn too_large(limit: BodyLimit) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body is larger than this route accepts: at most {} bytes ({}); send less, or raise the setting",
            limit.bytes, limit.setting
        ),
    )
}

/// Reads and drops what is left of a body, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`].
async fn drain(mut body: axum::body::BodyDataStream) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len();
            if seen > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request(
            "malformed_json",
            "the request body is empty; send a JSON object",
        ));
    }
    // Numbers, duplicate members, Unicode, reserved names and depth, before
    // anything reads the body.
    crate::strict_json::check(bytes, max_depth)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let at = if path == "." {
                    String::new()
                } else {
                    format!("field `{path}`: ")
                };
                Problem::bad_request("invalid_field", format!("{at}{inner}"))
            }
            _ => Problem::bad_request("malformed_json", format!("the request body is not valid JSON: {inner}")),
        }
    })
}

/// A document that may be YAML or JSON (workflow definitions, skill
/// manifests): when it is JSON (its first non-blank byte is `{`), the same
/// check as every JSON body, so that a duplicate or an out-of-range number
/// is refused with 400 and its pointer.
pub fn check_if_json(bytes: &[u8], max_depth: usize) -> Result<(), Problem> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && let Err(f) = crate::strict_json::check(body, max_depth)
        && f.kind != crate::strict_json::FaultKind::Syntax
    {
        // Syntax errors are the document's own faults (422, with line and
        // column), reported by its reader.
        return Err(f.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        a: bool,
        b: Option<Vec<u8>>,
    }

    #[test]
    fn untrusted_json_is_refused_with_its_code_and_pointer() {
        let err = parse_json::<serde_json::Value>(br#"{"a": [1, {"b": 1, "b": 2}]}"#, 8).unwrap_err();
        assert_eq!((err.code, err.pointer.as_deref()), ("duplicate_member", Some("/a/1/b")));
        assert_eq!(
            parse_json::<serde_json::Value>(b"[[[1]]]", 2).unwrap_err().code,
            "json_too_deep"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_json::<T>(br#"{"a": true, "b": [1, "x"]}"#, 8).unwrap_err();
        assert_eq!(err.code, "invalid_field");
        assert!(err.detail.contains("b[1]"), "{}", err.detail);
        let err = parse_json::<T>(br#"{"a": tru"#, 8).unwrap_err();
        assert_eq!(err.code, "malformed_json");
    }
}
