//! The web console's sessions: a token exchanged for a cookie that acts as
//! the token, and nothing more; CSRF on every change; the session ends with
//! sign-out, its token's revocation or expiry, and its own expiry; on every
//! instance sharing the database. And the page itself: served with headers
//! that keep it from being framed or fed foreign scripts.

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    sign_in_acts_as_the_token_and_changes_need_csrf,
    a_session_ends_with_sign_out_and_with_its_token,
    a_session_expires_with_its_token_or_its_own_term,
    a_session_holds_on_every_instance_and_ends_on_every_instance,
);

/// A signed-in browser: its cookie and the CSRF token it was given.
struct Browser {
    cookie: String,
    csrf: String,
    body: Value,
}

fn set_cookie(headers: &HeaderMap) -> String {
    headers
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string()
}

async fn sign_in_with(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}/ui/session", app.base))
        .json(&json!({ "token": token }));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn sign_in(app: &TestApp, token: &str) -> Browser {
    let (status, headers, body) = sign_in_with(app, token, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = set_cookie(&headers);
    let pair = cookie.split(';').next().unwrap().to_string();
    Browser {
        cookie: pair,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        body,
    }
}

/// A request as the console's page makes it: the cookie, and the CSRF
/// token when given.
/// `GET /v1/whoami` with a session cookie, as a browser sends it.
async fn whoami(app: &TestApp, cookie: &str) -> Reply {
    as_browser(app, Method::GET, "/v1/whoami", cookie, None, None).await
}

async fn as_browser(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("cookie", cookie);
    if let Some(c) = csrf {
        req = req.header("x-warden-csrf", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_reply(req.send().await.unwrap()).await
}

fn kinds_in_export(export: &[u8]) -> Vec<Value> {
    export
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<Value>(l).unwrap())
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("console.")))
        .collect()
}

async fn sign_in_acts_as_the_token_and_changes_need_csrf(backend: Backend) {
    let app = spawn_app(backend).await;

    // The page: no data, served to anyone, never framed, scripts only its own.
    let page = app.client.get(format!("{}/ui", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("src=\"/ui/assets/app.js\""), "{html}");
    let js = app
        .client
        .get(format!("{}/ui/assets/app.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(js.text().await.unwrap().contains("X-Warden-CSRF"));
    let missing = app.call(Method::GET, "/ui/assets/evil.js", None, None).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));

    // Sign-in refusals, each with its code.
    let (status, _, body) = sign_in_with(&app, "wdn_not-a-token", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, _, body) = sign_in_with(&app, "  ", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, _, body) = sign_in_with(&app, &"x".repeat(513), &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let r = app
        .call(
            Method::POST,
            "/ui/session",
            None,
            Some(json!({"token": app.admin, "as": "root"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_field"));
    let r = app.call(Method::GET, "/ui/session", None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // A reviewer signs in: the cookie is HttpOnly, SameSite=Strict, for
    // the whole API, and not Secure over plain HTTP.
    let reviewer = app.token(&app.admin, &["reviewer"]).await;
    let (status, headers, body) = sign_in_with(&app, &reviewer, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = set_cookie(&headers);
    assert!(cookie.starts_with("warden_session="), "{cookie}");
    for attr in ["; Path=/", "; HttpOnly", "; SameSite=Strict", "; Max-Age=28800"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["whoami"]["roles"], json!(["reviewer"]));
    let csrf = body["csrf_token"].as_str().unwrap();
    assert_eq!(csrf.len(), 64);
    // The secret is only in the cookie, never in the body.
    let secret = cookie.split(';').next().unwrap().trim_start_matches("warden_session=");
    assert!(!body.to_string().contains(secret));
    let rev = Browser {
        cookie: format!("warden_session={secret}"),
        csrf: csrf.to_string(),
        body,
    };

    // Behind a TLS-terminating proxy the cookie is Secure.
    let (_, headers, _) = sign_in_with(&app, &reviewer, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(&headers).ends_with("; Secure"));

    // The cookie acts as the token: what the reviewer may read, it reads;
    // what it may not, it is refused exactly as the token is.
    let me = whoami(&app, &rev.cookie).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["token_id"], rev.body["whoami"]["token_id"]);
    let queue = as_browser(&app, Method::GET, "/v0/approvals", &rev.cookie, None, None).await;
    assert_eq!((queue.status, &queue.body["waiting"]), (StatusCode::OK, &json!([])));
    let tokens = as_browser(&app, Method::GET, "/v1/tokens", &rev.cookie, None, None).await;
    assert_eq!((tokens.status, tokens.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let again = as_browser(&app, Method::GET, "/ui/session", &rev.cookie, None, None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (&again.body["csrf_token"], &again.body["session_id"]),
        (&json!(rev.csrf), &rev.body["session_id"])
    );

    // An admin's session: a change needs this session's CSRF token.
    let adm = sign_in(&app, &app.admin).await;
    let mint = json!({"name": "via-console", "roles": ["auditor"]});
    let r = as_browser(&app, Method::POST, "/v1/tokens", &adm.cookie, None, Some(mint.clone())).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let r = as_browser(
        &app,
        Method::POST,
        "/v1/tokens",
        &adm.cookie,
        Some(&rev.csrf),
        Some(mint.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "csrf_failed"),
        "another session's token"
    );
    let r = as_browser(
        &app,
        Method::POST,
        "/v1/tokens",
        &adm.cookie,
        Some("zz"),
        Some(mint.clone()),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let r = as_browser(
        &app,
        Method::POST,
        "/v1/tokens",
        &adm.cookie,
        Some(&adm.csrf),
        Some(mint),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The reviewer's session may not do what the reviewer's token may not,
    // CSRF or not.
    let r = as_browser(
        &app,
        Method::POST,
        "/v1/tokens",
        &rev.cookie,
        Some(&rev.csrf),
        Some(json!({"name": "x", "roles": ["admin"]})),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));

    // A bearer token, when sent, is what counts: a bad one is refused even
    // beside a live cookie.
    let r = app
        .client
        .get(format!("{}/v1/whoami", app.base))
        .header("cookie", &adm.cookie)
        .bearer_auth("wdn_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(into_reply(r).await.code(), "invalid_token");

    // Another tenant's admin, signed in, sees its own tenant only.
    let other_admin = app.tenant("console-other").await;
    let other = sign_in(&app, &other_admin).await;
    let theirs = as_browser(&app, Method::GET, "/v1/tokens", &other.cookie, None, None).await;
    assert_eq!(theirs.status, StatusCode::OK);
    let ids: Vec<&str> = theirs
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(!ids.contains(&rev.body["whoami"]["token_id"].as_str().unwrap()));

    // Each sign-in is in the ledger, named by its session, never its secret.
    let export = app.call(Method::GET, "/v1/ledger/export", Some(&app.admin), None).await;
    let signins = kinds_in_export(&export.bytes);
    assert_eq!(signins.len(), 3, "reviewer twice, admin once: {signins:?}");
    assert!(signins.iter().all(|e| e["kind"] == "console.sign_in"));
    assert_eq!(signins[0]["payload"]["session_id"], rev.body["session_id"]);
    assert!(!String::from_utf8_lossy(&export.bytes).contains(secret));
}

async fn a_session_ends_with_sign_out_and_with_its_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let reviewer = app.token(&app.admin, &["reviewer"]).await;
    let a = sign_in(&app, &reviewer).await;
    let b = sign_in(&app, &reviewer).await;

    // Signing out needs the CSRF token too (a page elsewhere must not sign
    // a reviewer out, either).
    let r = as_browser(&app, Method::DELETE, "/ui/session", &a.cookie, None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let res = app
        .client
        .delete(format!("{}/ui/session", app.base))
        .header("cookie", &a.cookie)
        .header("x-warden-csrf", &a.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(res.headers()).starts_with("warden_session=; Path=/; Max-Age=0;"));
    for path in ["/v1/whoami", "/ui/session"] {
        let r = as_browser(&app, Method::GET, path, &a.cookie, None, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "session_ended"),
            "{path}"
        );
    }
    let r = as_browser(&app, Method::DELETE, "/ui/session", &a.cookie, Some(&a.csrf), None).await;
    assert_eq!(r.code(), "session_ended");
    // The other session of the same token goes on.
    let r = whoami(&app, &b.cookie).await;
    assert_eq!(r.status, StatusCode::OK);

    // Revoking the token ends every session of it, at once.
    let token_id = b.body["whoami"]["token_id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{token_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = as_browser(&app, Method::GET, "/v0/approvals", &b.cookie, None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "session_ended"));
    // And a revoked token cannot sign in.
    let (status, _, body) = sign_in_with(&app, &reviewer, &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    let export = app.call(Method::GET, "/v1/ledger/export", Some(&app.admin), None).await;
    let kinds: Vec<String> = kinds_in_export(&export.bytes)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["payload"]["session_id"].as_str().unwrap()
            )
        })
        .collect();
    let (sa, sb) = (
        a.body["session_id"].as_str().unwrap(),
        b.body["session_id"].as_str().unwrap(),
    );
    assert_eq!(
        kinds,
        [
            format!("console.sign_in {sa}"),
            format!("console.sign_in {sb}"),
            format!("console.sign_out {sa}")
        ]
    );
}

async fn a_session_expires_with_its_token_or_its_own_term(backend: Backend) {
    let clock = Clock::fixed(1_800_000_000_000_000_000);
    let app = spawn_with(backend, |c| c.console.session_ttl_secs = 600, clock.clone()).await;
    // A token that expires in 300 s: the session ends with it, not later.
    let short = app
        .token_with(
            &app.admin,
            json!({"name": "short", "roles": ["auditor"], "ttl_seconds": 300}),
        )
        .await;
    let (status, headers, body) = sign_in_with(&app, &short, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(set_cookie(&headers).contains("; Max-Age=300;"));
    assert_eq!(body["expires_at"], body["whoami"]["expires_at"]);
    let short_cookie = set_cookie(&headers).split(';').next().unwrap().to_string();
    // A token without expiry: the session lasts console.session_ttl_secs.
    let long = app.token(&app.admin, &["auditor"]).await;
    let l = sign_in(&app, &long).await;
    assert_eq!(whoami(&app, &l.cookie).await.status, StatusCode::OK);

    clock.advance_ns(301 * 1_000_000_000);
    let r = whoami(&app, &short_cookie).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "session_ended"));
    assert_eq!(whoami(&app, &l.cookie).await.status, StatusCode::OK);

    clock.advance_ns(300 * 1_000_000_000);
    let r = whoami(&app, &l.cookie).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "session_ended"));
    // One token holds at most 20 live sessions: the 21st sign-in is
    // refused until one ends.
    let many = app.token(&app.admin, &["auditor"]).await;
    let mut first = None;
    for _ in 0..20 {
        let b = sign_in(&app, &many).await;
        first.get_or_insert(b);
    }
    let (status, _, body) = sign_in_with(&app, &many, &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_sessions")),
        "{body}"
    );
    let first = first.unwrap();
    let r = as_browser(
        &app,
        Method::DELETE,
        "/ui/session",
        &first.cookie,
        Some(&first.csrf),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    sign_in(&app, &many).await;

    // The token itself lives on: a new sign-in works, and the sessions of
    // the token that have ended are gone from the store.
    let token_id = l.body["whoami"]["token_id"].as_str().unwrap().to_string();
    assert_eq!(stored_sessions(&app, &token_id).await, 1);
    sign_in(&app, &long).await;
    assert_eq!(stored_sessions(&app, &token_id).await, 1, "the expired one was pruned");
}

/// Rows in `console_sessions` for a token, read from the database itself.
async fn stored_sessions(app: &TestApp, token_id: &str) -> i64 {
    let url = app.state.config.database_url();
    let sql = "SELECT COUNT(*) FROM console_sessions WHERE token_id = $1";
    if url.starts_with("postgres") {
        let db = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).bind(token_id).fetch_one(&db).await.unwrap()
    } else {
        let db = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).bind(token_id).fetch_one(&db).await.unwrap()
    }
}

async fn a_session_holds_on_every_instance_and_ends_on_every_instance(backend: Backend) {
    // No cache between the store and a request here, so that what one
    // instance ends, the other refuses at once.
    let app = spawn_with(backend, |c| c.auth.cache_ttl_ms = 0, Clock::system()).await;
    let other = app.second_instance().await;
    let reviewer = app.token(&app.admin, &["reviewer"]).await;
    let s = sign_in(&app, &reviewer).await;
    // Signed in on one instance, the page may be served by the other.
    let r = as_browser(&other, Method::GET, "/ui/session", &s.cookie, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["csrf_token"], s.body["csrf_token"]);
    // Signed out on the second, refused on the first.
    let r = as_browser(&other, Method::DELETE, "/ui/session", &s.cookie, Some(&s.csrf), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = as_browser(&app, Method::GET, "/v0/approvals", &s.cookie, None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "session_ended"));
    other.stop().await;
}
