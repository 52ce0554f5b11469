//! Finding the tokens in a request, and taking them out again (`forward: false`).
//!
//! Every location a provider reads is looked at, and every token found there must verify,
//! as in jwt_authn: a good token beside a bad one must not pass, or the upstream may read
//! the bad one as if it had been checked. The first one found — headers as listed, then
//! cookies, then query parameters — is the one whose claims become identity headers.

/// Where a provider looks for its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A header (lowercase name); with a prefix such as `Bearer `, only values that start
    /// with it (ASCII case-insensitively, as RFC 6750 schemes are) carry a token.
    Header {
        name: String,
        prefix: Option<String>,
    },
    Cookie(String),
    Param(String),
}

impl Location {
    /// The request header this location reads (`cookie` for a cookie); none for a parameter.
    pub fn header(&self) -> Option<&str> {
        match self {
            Location::Header { name, .. } => Some(name),
            Location::Cookie(_) => Some("cookie"),
            Location::Param(_) => None,
        }
    }
}

/// Read access to the request the core needs; names are lowercase, pseudo-headers included
/// (`:path`, `:method`, `:authority`, `:scheme`).
pub trait RequestView {
    /// The first value, as text: bytes that are not UTF-8 are replaced.
    fn header(&self, name: &str) -> Option<String>;

    /// The first value as sent, for rewriting a header without loss (Envoy lets a value
    /// carry bytes that are not UTF-8, such as Latin-1 in another cookie).
    fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.header(name).map(String::into_bytes)
    }
}

/// A token and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub location: Location,
}

/// Every token present at `locations`, in order: the first value of a header, and every
/// non-empty cookie or query parameter of the name (a repeated one is a second token, which
/// an upstream may read).
pub fn extract_all(locations: &[Location], req: &dyn RequestView) -> Vec<Found> {
    let mut found = Vec::new();
    for loc in locations {
        let mut add = |token: String| found.push(Found { token, location: loc.clone() });
        match loc {
            Location::Header { name, prefix } => {
                if let Some(token) = req.header(name).and_then(|v| from_header_value(&v, prefix.as_deref())) {
                    add(token);
                }
            }
            Location::Cookie(name) => req.header("cookie").iter().flat_map(|c| cookie_values(c, name)).for_each(add),
            Location::Param(name) => req.header(":path").iter().flat_map(|p| query_params(p, name)).for_each(add),
        }
    }
    found
}

fn from_header_value(value: &str, prefix: Option<&str>) -> Option<String> {
    let rest = match prefix {
        None => value,
        Some(p) => match value.get(..p.len()) {
            Some(head) if head.eq_ignore_ascii_case(p) => value.get(p.len()..)?,
            // The whole value, as a token that will not parse: refused, not passed on.
            _ => return names_scheme_later(value, p).then(|| value.to_owned()),
        },
    };
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    (!token.is_empty()).then(|| token.to_owned())
}

/// A value that does not start with the prefix but names its scheme further on as an
/// auth-scheme (RFC 7235: at the start or after a comma or blank, followed by a blank) with
/// something after it: `Basic x, Bearer <t>`, `Token Bearer <t>`, `Bearer\t<t>`. jwt_authn
/// reads a token after its prefix wherever it stands, and an upstream splitting the value on
/// commas or blanks may take one from there; on a route that lets a missing token through,
/// such a value would reach it unchecked. The scheme inside a word or a parameter
/// (`x-bearer-token`, `username="bearer"`, `Bearer, Basic x`) is not one.
fn names_scheme_later(value: &str, prefix: &str) -> bool {
    let scheme = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).as_bytes();
    let v = value.as_bytes();
    if scheme.is_empty() {
        return false;
    }
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    v.windows(scheme.len()).enumerate().any(|(at, w)| {
        let end = at.saturating_add(scheme.len());
        let before = at.checked_sub(1).and_then(|i| v.get(i));
        w.eq_ignore_ascii_case(scheme)
            && before.map_or(true, |b| blank(b) || *b == b',')
            && v.get(end).is_some_and(blank)
            && v.get(end..).is_some_and(|rest| rest.iter().any(|b| !blank(b) && *b != b','))
    })
}

/// Values of cookie `name` in a `Cookie` header (`a=1; b=2`), the non-empty ones, by the same
/// name rule [`remove_cookie`] removes them with.
pub fn cookie_values(header: &str, name: &str) -> Vec<String> {
    header
        .split(';')
        .filter_map(|pair| {
            let (_, v) = pair.split_once('=')?;
            is_cookie(pair.as_bytes(), name)
                .then(|| v.trim_matches([' ', '\t']).trim_matches('"'))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

/// Values of query parameter `name` in a request path (`/p?a=1&b=2`), the non-empty ones.
/// Names and values are percent-decoded, as Envoy decodes them for jwt_authn and as most
/// upstreams do: `access%5Ftoken` is `access_token`.
pub fn query_params(path: &str, name: &str) -> Vec<String> {
    query_params_named(path, |k| k == name.as_bytes())
}

/// Values of the query parameters whose percent-decoded name `is_name` accepts, as
/// [`query_params`].
pub fn query_params_named(path: &str, is_name: impl Fn(&[u8]) -> bool) -> Vec<String> {
    let Some((_, query)) = path.split_once('?') else { return Vec::new() };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            is_name(&percent_decode(k.as_bytes()))
                .then(|| String::from_utf8_lossy(&percent_decode(v.as_bytes())).into_owned())
                .filter(|v| !v.is_empty())
        })
        .collect()
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&b, tail)) = rest.split_first() {
        if let (b'%', [h, l, after @ ..]) = (b, tail) {
            if let (Some(hi), Some(lo)) = (hex(*h), hex(*l)) {
                out.push(hi << 4 | lo);
                rest = after;
                continue;
            }
        }
        out.push(b);
        rest = tail;
    }
    std::borrow::Cow::Owned(out)
}

/// The `Cookie` header without cookie `name`; `None` when nothing else is left. On bytes:
/// every other cookie is kept exactly as sent.
pub fn remove_cookie(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = header
        .split(|&b| b == b';')
        .map(trim_blanks)
        .filter(|pair| !pair.is_empty() && !is_cookie(pair, name))
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b"; "[..]))
}

/// The request path without query parameter `name`; on bytes, as [`remove_cookie`].
pub fn remove_param(path: &[u8], name: &str) -> Vec<u8> {
    let Some(q) = path.iter().position(|&b| b == b'?') else {
        return path.to_vec();
    };
    let (base, query) = path.split_at(q);
    let kept: Vec<&[u8]> = query
        .get(1..)
        .unwrap_or_default()
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty() && *percent_decode(key(pair)) != *name.as_bytes())
        .collect();
    if kept.is_empty() {
        base.to_vec()
    } else {
        [base, b"?", &kept.join(&b"&"[..])].concat()
    }
}

/// Whether a `Cookie` pair is cookie `name`: its name trimmed of spaces and tabs only, the
/// one rule by which a cookie is both read as the token and removed.
fn is_cookie(pair: &[u8], name: &str) -> bool {
    trim_blanks(key(pair)) == name.as_bytes()
}

/// What precedes the first `=` (all of it when there is none).
fn key(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=').next().unwrap_or(pair)
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The path without query string or fragment, for route matching and the realm.
pub fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) struct Req(pub HashMap<String, String>);
    impl RequestView for Req {
        fn header(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }
    fn req(pairs: &[(&str, &str)]) -> Req {
        Req(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
    fn bearer() -> Location {
        Location::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) }
    }

    fn first(locs: &[Location], r: &Req) -> Option<String> {
        extract_all(locs, r).into_iter().next().map(|f| f.token)
    }

    #[test]
    fn bearer_prefix_is_case_insensitive_and_required() {
        let locs = [bearer()];
        assert_eq!(first(&locs, &req(&[("authorization", "Bearer abc")])).unwrap(), "abc");
        assert_eq!(first(&locs, &req(&[("authorization", "bearer  abc ")])).unwrap(), "abc");
        assert!(first(&locs, &req(&[("authorization", "Basic abc")])).is_none());
        assert!(first(&locs, &req(&[("authorization", "Bearer ")])).is_none());
        assert!(first(&locs, &req(&[("authorization", "Bear")])).is_none());
        let not_a_scheme = [
            "Bearer",
            "Bearer\t",
            "Bearer:t.o.k",
            "Basic abc, Bearer ",
            "Bearerx abc",
            "Basic QmVhcmVyIHg=",
            "Digest username=\"bearer\", realm=\"x\"",
            "x-bearer-token abc",
            "Bearer, Basic abc",
        ];
        for value in not_a_scheme {
            assert!(first(&locs, &req(&[("authorization", value)])).is_none(), "{value:?}");
        }
        // The scheme further on, with something after it: the whole value is the token, which
        // will not parse (refused as malformed, never passed on as if absent).
        for later in ["Basic x, Bearer t.o.k", "Token Bearer t.o.k", "Bearer\tt.o.k", "x,bearer t"] {
            assert_eq!(first(&locs, &req(&[("authorization", later)])).as_deref(), Some(later), "{later:?}");
        }
        // Other prefixes: only their scheme, as a scheme.
        let jwt = [Location::Header { name: "authorization".into(), prefix: Some("JWT ".into()) }];
        assert!(first(&jwt, &req(&[("authorization", "Bearer my-jwt-token")])).is_none());
        let token = [Location::Header { name: "x-auth".into(), prefix: Some("Token ".into()) }];
        assert!(first(&token, &req(&[("x-auth", "token=abc")])).is_none());
        assert!(first(&token, &req(&[("x-auth", "Key-less, token abc")])).is_some());
        // Multi-byte input where the prefix length falls inside a character.
        assert!(first(&locs, &req(&[("authorization", "Beaé€rer")])).is_none());
    }

    #[test]
    fn header_without_prefix_takes_whole_value() {
        let locs = [Location::Header { name: "x-jwt".into(), prefix: None }];
        assert_eq!(first(&locs, &req(&[("x-jwt", "t.o.k")])).unwrap(), "t.o.k");
    }

    #[test]
    fn every_location_is_read_in_precedence_order() {
        let locs = [bearer(), Location::Cookie("DS".into()), Location::Param("access_token".into())];
        let r = req(&[
            ("authorization", "Bearer fromheader"),
            ("cookie", "DS=c1; x=1; DS=; DS=c2"),
            (":path", "/?access_token=p1&access%5Ftoken=p%2E2&access_token="),
        ]);
        let found: Vec<(String, Location)> =
            extract_all(&locs, &r).into_iter().map(|f| (f.token, f.location)).collect();
        assert_eq!(
            found,
            [
                ("fromheader".to_owned(), bearer()),
                ("c1".to_owned(), Location::Cookie("DS".into())),
                ("c2".to_owned(), Location::Cookie("DS".into())),
                ("p1".to_owned(), Location::Param("access_token".into())),
                ("p.2".to_owned(), Location::Param("access_token".into())),
            ]
        );
        let r = req(&[("cookie", "a=b; DS=fromcookie"), (":path", "/?access_token=p")]);
        assert_eq!(first(&locs, &r).unwrap(), "fromcookie");
        let r = req(&[(":path", "/x?y=1&access_token=p#frag")]);
        assert_eq!(first(&locs, &r).unwrap(), "p");
        assert!(extract_all(&locs, &req(&[(":path", "/x?y=1")])).is_empty());
    }

    #[test]
    fn cookies_and_params_parse_strictly() {
        assert_eq!(cookie_values("a=1; DS=tok; DSR=r", "DS"), ["tok"]);
        assert!(cookie_values("DSR=r", "DS").is_empty());
        assert!(cookie_values("DS=", "DS").is_empty());
        // Only spaces and tabs are trimmed, on both sides, as remove_cookie does.
        for header in ["a=1; \u{a0}DS=tok", "a=1;\x0cDS=tok", "a=1;\nDS=tok"] {
            assert!(cookie_values(header, "DS").is_empty(), "{header:?}");
        }
        assert_eq!(cookie_values("a=1;\t DS \t=\ttok ", "DS"), ["tok"]);
        assert_eq!(remove_cookie(b"a=1;\t DS \t=\ttok ", "DS").as_deref(), Some(&b"a=1"[..]));
        assert_eq!(query_params("/p?access_token_x=1&x_access_token=3&access_token=2", "access_token"), ["2"]);
        assert!(query_params("/p", "access_token").is_empty());
        // Percent-decoded names and values; a broken escape stays as sent.
        assert_eq!(query_params("/p?%61ccess_token=%2e%zz%4", "access_token"), [".%zz%4"]);
        assert_eq!(percent_decode(b"a%2Fb%2fc"), &b"a/b/c"[..]);
        assert_eq!(percent_decode(b"%%41%"), &b"%A%"[..]);
    }

    #[test]
    fn removal_keeps_everything_else() {
        assert_eq!(remove_cookie(b"a=1; DS=tok; b=2", "DS").as_deref(), Some(&b"a=1; b=2"[..]));
        assert_eq!(remove_cookie(b" DS =tok;\tDS=again;x", "DS").as_deref(), Some(&b"x"[..]));
        assert_eq!(remove_cookie(b"DS=tok", "DS"), None);
        // Bytes that are not UTF-8 (Latin-1 in another cookie) pass unchanged.
        assert_eq!(remove_cookie(b"n=Jos\xe9; DS=tok", "DS").as_deref(), Some(&b"n=Jos\xe9"[..]));
        assert_eq!(remove_param(b"/p?a=1&access_token=t&b=2", "access_token"), b"/p?a=1&b=2");
        assert_eq!(remove_param(b"/p?access_token=t", "access_token"), b"/p");
        assert_eq!(remove_param(b"/p", "access_token"), b"/p");
        assert_eq!(remove_param(b"/\xe9?q=\xff&access_token=t", "access_token"), b"/\xe9?q=\xff");
        // Every spelling of the name the reading side decodes.
        assert_eq!(remove_param(b"/p?access%5Ftoken=t&a=1&%61ccess_token=u", "access_token"), b"/p?a=1");
        assert_eq!(path_only("/a/b?c=d#e"), "/a/b");
        assert_eq!(path_only("/a/b#e?c=d"), "/a/b");
    }
}
