//! Absolute `http://` and `https://` URLs that Airlock sends requests to: checked where they
//! enter (config, a remote agent's card) with `http::Uri`, the parser the gateway builds its
//! requests with, so a URL that passes here can never fail, or panic, when a request is built.

use http::Uri;
use http::uri::Authority;

/// Why a text is not a URL Airlock can send requests to. Each renders as the end of a
/// sentence that starts with the URL's config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadUrl {
    NotAUrl,
    Scheme,
    NoHost,
    Port,
    Fragment,
    Query,
}

impl std::fmt::Display for BadUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadUrl::NotAUrl => "is not a valid URL (spaces, control or non-ASCII characters?)",
            BadUrl::Scheme => "must start with http:// or https://",
            BadUrl::NoHost => "names no host",
            BadUrl::Port => "has a port that is not a number from 1 to 65535",
            BadUrl::Fragment => "must not have a fragment (#…)",
            BadUrl::Query => "must not have a query (?…): paths are appended to it",
        })
    }
}

/// Parses an absolute http(s) URL with a host and, if one is written, a usable port.
pub fn parse(text: &str) -> Result<Uri, BadUrl> {
    // `Uri` drops a fragment without a word; a URL that has one was not meant as written.
    if text.contains('#') {
        return Err(BadUrl::Fragment);
    }
    let uri: Uri = text.parse().map_err(|_| BadUrl::NotAUrl)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(BadUrl::Scheme);
    }
    let authority = uri.authority().ok_or(BadUrl::NoHost)?;
    if authority.host().is_empty() {
        return Err(BadUrl::NoHost);
    }
    written_port(authority)?;
    Ok(uri)
}

/// The port written in `authority`, `None` if there is none. `Uri` keeps a port it cannot
/// read as a u16 (`:99999`, `:8a`, `:`) and reports none, which a caller would take for
/// the scheme's default: anything written after the host must be a port from 1 to 65535.
pub fn written_port(authority: &Authority) -> Result<Option<u16>, BadUrl> {
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    if host_port.len() == authority.host().len() {
        return Ok(None);
    }
    match authority.port_u16() {
        Some(port) if port != 0 => Ok(Some(port)),
        _ => Err(BadUrl::Port),
    }
}

/// A base URL that paths are appended to: as [`parse`], and without a query.
pub fn parse_base(text: &str) -> Result<Uri, BadUrl> {
    let uri = parse(text)?;
    if uri.query().is_some() {
        return Err(BadUrl::Query);
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_urls_parse() {
        for ok in [
            "http://127.0.0.1:9100",
            "https://api.openai.com/v1",
            "HTTP://Example.COM/a",
            "http://[::1]:9/rpc",
            "https://user:pw@x.io:8443/p?q=1",
            "http://a/caf\u{e9}",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        for (bad, why) in [
            ("http://a b/", BadUrl::NotAUrl),
            ("http://a/\u{1b}[2J", BadUrl::NotAUrl),
            ("http://caf\u{e9}.com/", BadUrl::NotAUrl),
            ("http://[::1", BadUrl::NotAUrl),
            ("http://", BadUrl::NotAUrl),
            ("", BadUrl::NotAUrl),
            ("ftp://x", BadUrl::Scheme),
            ("127.0.0.1:80", BadUrl::Scheme),
            ("/relative", BadUrl::Scheme),
            ("http://:80", BadUrl::NoHost),
            ("http://x:99999", BadUrl::Port),
            ("http://x:0", BadUrl::Port),
            ("http://x:8a/", BadUrl::Port),
            ("http://x:/", BadUrl::Port),
            ("http://u@x:70000", BadUrl::Port),
            ("http://x/#top", BadUrl::Fragment),
        ] {
            assert_eq!(parse(bad), Err(why), "{bad:?}");
        }
        assert_eq!(parse_base("http://x/v1?a=1"), Err(BadUrl::Query));
        assert!(parse_base("http://x/v1").is_ok());
    }
}
