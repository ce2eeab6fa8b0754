//! The dashboard's files, embedded in the binary and served on the admin listener. The
//! page holds no data of its own: everything it shows comes from `/api/...` once signed in.

use http::{HeaderValue, Response, StatusCode, header};

use crate::http::{Body, full};

/// Path, content type and body of each file.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "",
        "text/html; charset=utf-8",
        include_str!("../../../../dashboard/index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../dashboard/app.js"),
    ),
    (
        "/ui/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../../dashboard/style.css"),
    ),
];

/// The file at `path` (`""` is the page itself), or `None`.
pub fn serve(path: &str) -> Option<Response<Body>> {
    let (_, content_type, body) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let mut res = Response::new(full(*body));
    *res.status_mut() = StatusCode::OK;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Script and styles come only from these files: no inline code, no other origin, and
    // the page can't be framed by another site (clickjacking the suspend button).
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new binary may bring new files: the browser asks again each time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(res)
}
