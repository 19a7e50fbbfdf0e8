//! The web console served at `/ui`: its assets, embedded in the binary
//! (the project's own HTML, CSS and JavaScript, nothing fetched at run
//! time), and its sessions. The console holds no data of its own and
//! bypasses nothing: its pages call the same API, with a session cookie
//! standing for the token it was opened with, so every page and action is
//! checked by the same roles as the API. The HTTP side is
//! `crate::http::console`.

pub mod session;

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The page (served at `/ui`) and what it loads (at `/ui/assets/<path>`).
pub const INDEX: Asset = Asset {
    path: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
    Asset {
        path: "verify.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/verify.js"),
    },
];

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// What the browser may do with the console's pages: run and style only
/// what Warden served, talk only to Warden, never be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
