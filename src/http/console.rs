//! The web console: its page and assets at `/ui`, and its sessions at
//! `/ui/session` (sign in with a token, read the session, sign out).
//!
//! The page and its assets hold no data and are served to anyone (like
//! `/health`); everything they show comes from the API, called with the
//! session cookie, so the roles of the token behind the session decide what
//! each page may read and do.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::Whoami;
use super::extract::{ApiJson, live, session_caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::{Principal, new_id};
use crate::clock::rfc3339_ms;
use crate::console::{self, Asset, session};
use crate::store::SessionRow;
use crate::tenancy;

/// Live sessions one token may hold: a browser per person and a few more;
/// past it a sign-in is refused until one ends (it would otherwise let a
/// token holder grow the sessions table without bound).
pub const MAX_SESSIONS_PER_TOKEN: i64 = 20;

/// The longest token text a sign-in reads (tokens are 47 characters; a
/// bootstrap token chosen by the operator may be longer).
const MAX_TOKEN_LEN: usize = 512;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/session", get(current).post(sign_in).delete(sign_out))
}

fn serve(a: &'static Asset, cache: &'static str) -> Response {
    let mut res = a.body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(console::CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

async fn index() -> Response {
    serve(&console::INDEX, "no-store")
}

async fn asset(Path(file): Path<String>) -> Result<Response, Problem> {
    let a = console::asset(&file)
        .ok_or_else(|| Problem::not_found("not_found", format!("the console has no asset {file:?}; open /ui")))?;
    // Assets change with the binary; a short cache keeps an upgrade visible.
    Ok(serve(a, "private, max-age=300"))
}

/// A console sign-in: the token to act as.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub token: String,
}

/// A console session: who it acts as, until when, and the CSRF token every
/// change made with it must carry in `X-Warden-CSRF`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub expires_at: String,
    pub csrf_token: String,
    pub whoami: Whoami,
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.console.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Exchanges a token for a session cookie (HttpOnly, SameSite=Strict,
/// Secure over TLS). The session acts as the token: it ends when the token
/// is revoked or expires, after `console.session_ttl_secs`, or when signed
/// out. Recorded in the ledger as `console.sign_in`.
#[utoipa::path(post, path = "/ui/session", tag = "console", request_body = SignIn,
    responses((status = 201, body = SessionView), (status = "4XX", body = ProblemBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, Problem> {
    let token = body.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Problem::bad_request(
            "invalid_field",
            format!("field `token`: give the Warden token to sign in with (1 to {MAX_TOKEN_LEN} characters)"),
        ));
    }
    let principal = state.tokens.authenticate(&state.store, token).await?;
    let who = live(
        principal,
        &state,
        "the token is unknown or revoked; ask an admin for a valid token",
    )?;
    let now = state.clock.now_ms();
    if state.store.live_sessions_of(&who.token_id, now).await? >= MAX_SESSIONS_PER_TOKEN {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too_many_sessions",
            format!(
                "this token has {MAX_SESSIONS_PER_TOKEN} live console sessions; sign out of one, or wait until one expires"
            ),
        ));
    }
    let ttl_ms = state.config.console.session_ttl_secs as i64 * 1000;
    let expires_at = who.expires_at.map_or(now + ttl_ms, |t| t.min(now + ttl_ms));
    let minted = session::mint_secret();
    let row = SessionRow {
        id: new_id("ses", now),
        tenant_id: who.tenant_id.clone(),
        token_id: who.token_id.clone(),
        created_at: now,
        expires_at,
    };
    if !tenancy::start_session(&state.ledger, &who, row.clone(), minted.hash).await? {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token was revoked while signing in; ask an admin for a valid token",
        ));
    }
    tracing::info!(session = %row.id, tenant = %who.tenant_id, by = %who.actor(), "console session started");
    let cookie = session::set_cookie(&minted.secret, (expires_at - now) / 1000, secure(&state, &headers));
    let view = SessionView::of(row.id, expires_at, &minted.secret, who);
    Ok(with_cookie(StatusCode::CREATED, Json(view).into_response(), &cookie))
}

impl SessionView {
    fn of(session_id: String, expires_at: i64, secret: &str, who: Principal) -> Self {
        SessionView {
            session_id,
            expires_at: rfc3339_ms(expires_at),
            csrf_token: session::csrf_token(secret),
            whoami: Whoami::of(who),
        }
    }
}

/// A session's answers are never cached: they carry its CSRF token.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn with_cookie(status: StatusCode, mut res: Response, cookie: &str) -> Response {
    *res.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    no_store(res)
}

async fn session_of<'p>(parts: &'p Parts, state: &AppState) -> Result<(session::Session, &'p str), Problem> {
    let secret = session::cookie_secret(&parts.headers).ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no console session: sign in with POST /ui/session",
        )
    })?;
    let s = session_caller(parts, state, secret).await?;
    Ok((s, secret))
}

/// The session of the request's cookie, with its CSRF token.
#[utoipa::path(get, path = "/ui/session", tag = "console",
    responses((status = 200, body = SessionView), (status = "4XX", body = ProblemBody)))]
pub async fn current(State(state): State<AppState>, parts: Parts) -> Result<Response, Problem> {
    let (s, secret) = session_of(&parts, &state).await?;
    let view = SessionView::of(s.id, s.expires_at, secret, s.principal);
    Ok(no_store(Json(view).into_response()))
}

/// Signs out: the session ends on every instance (at once on this one,
/// within `auth.cache_ttl_ms` on others) and the cookie is cleared.
/// Needs the CSRF token. Recorded in the ledger as `console.sign_out`.
#[utoipa::path(delete, path = "/ui/session", tag = "console",
    responses((status = 204), (status = "4XX", body = ProblemBody)))]
pub async fn sign_out(State(state): State<AppState>, parts: Parts) -> Result<Response, Problem> {
    let (s, _) = session_of(&parts, &state).await?;
    // Ended meanwhile (another tab, another instance): nothing to record.
    tenancy::end_session(&state.ledger, &s.principal, &s.id, state.clock.now_ms()).await?;
    state.sessions.forget_session(&s.id);
    tracing::info!(session = %s.id, tenant = %s.principal.tenant_id, "console session ended");
    let cookie = session::clear_cookie(secure(&state, &parts.headers));
    Ok(with_cookie(StatusCode::NO_CONTENT, ().into_response(), &cookie))
}
