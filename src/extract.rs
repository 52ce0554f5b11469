//! Finding the token in a request, and taking it out again (`forward: false`).
//!
//! Precedence, when a request carries tokens in several places: the provider's locations in
//! order — headers as listed, then cookies, then query parameters — and the first one
//! present is the token. Later ones are not looked at, so a second credential cannot change
//! the outcome of the first.

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

/// The first token present at `locations`, in order.
pub fn extract(locations: &[Location], req: &dyn RequestView) -> Option<Found> {
    locations.iter().find_map(|loc| {
        let token = match loc {
            Location::Header { name, prefix } => {
                req.header(name).and_then(|v| from_header_value(&v, prefix.as_deref()))
            }
            Location::Cookie(name) => req.header("cookie").and_then(|c| cookie_value(&c, name).map(str::to_owned)),
            Location::Param(name) => req.header(":path").and_then(|p| query_param(&p, name).map(str::to_owned)),
        }?;
        Some(Found { token, location: loc.clone() })
    })
}

fn from_header_value(value: &str, prefix: Option<&str>) -> Option<String> {
    let rest = match prefix {
        None => value,
        Some(p) => {
            let head = value.get(..p.len())?;
            if !head.eq_ignore_ascii_case(p) {
                return None;
            }
            value.get(p.len()..)?
        }
    };
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    (!token.is_empty()).then(|| token.to_owned())
}

/// Value of cookie `name` in a `Cookie` header (`a=1; b=2`), first non-empty occurrence, by
/// the same name rule [`remove_cookie`] removes it with.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (_, v) = pair.split_once('=')?;
        is_cookie(pair.as_bytes(), name)
            .then(|| v.trim_matches([' ', '\t']).trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

/// Value of query parameter `name` in a request path (`/p?a=1&b=2`), first occurrence.
pub fn query_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v).filter(|v| !v.is_empty())
    })
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
        .filter(|pair| !pair.is_empty() && key(pair) != name.as_bytes())
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

    #[test]
    fn bearer_prefix_is_case_insensitive_and_required() {
        let locs = [bearer()];
        assert_eq!(extract(&locs, &req(&[("authorization", "Bearer abc")])).unwrap().token, "abc");
        assert_eq!(extract(&locs, &req(&[("authorization", "bearer  abc ")])).unwrap().token, "abc");
        assert!(extract(&locs, &req(&[("authorization", "Basic abc")])).is_none());
        assert!(extract(&locs, &req(&[("authorization", "Bearer ")])).is_none());
        assert!(extract(&locs, &req(&[("authorization", "Bear")])).is_none());
        // Multi-byte input where the prefix length falls inside a character.
        assert!(extract(&locs, &req(&[("authorization", "Beaé€rer")])).is_none());
    }

    #[test]
    fn header_without_prefix_takes_whole_value() {
        let locs = [Location::Header { name: "x-jwt".into(), prefix: None }];
        assert_eq!(extract(&locs, &req(&[("x-jwt", "t.o.k")])).unwrap().token, "t.o.k");
    }

    #[test]
    fn first_location_wins_over_later_ones() {
        let locs = [bearer(), Location::Cookie("DS".into()), Location::Param("access_token".into())];
        let r =
            req(&[("authorization", "Bearer fromheader"), ("cookie", "DS=fromcookie"), (":path", "/?access_token=p")]);
        let f = extract(&locs, &r).unwrap();
        assert_eq!((f.token.as_str(), f.location), ("fromheader", bearer()));
        let r = req(&[("cookie", "a=b; DS=fromcookie"), (":path", "/?access_token=p")]);
        assert_eq!(extract(&locs, &r).unwrap().token, "fromcookie");
        let r = req(&[(":path", "/x?y=1&access_token=p#frag")]);
        assert_eq!(extract(&locs, &r).unwrap().token, "p");
    }

    #[test]
    fn cookies_and_params_parse_strictly() {
        assert_eq!(cookie_value("a=1; DS=tok; DSR=r", "DS"), Some("tok"));
        assert_eq!(cookie_value("DSR=r", "DS"), None);
        assert_eq!(cookie_value("DS=", "DS"), None);
        // Only spaces and tabs are trimmed, on both sides, as remove_cookie does.
        for header in ["a=1; \u{a0}DS=tok", "a=1;\x0cDS=tok", "a=1;\nDS=tok"] {
            assert_eq!(cookie_value(header, "DS"), None, "{header:?}");
        }
        assert_eq!(cookie_value("a=1;\t DS \t=\ttok ", "DS"), Some("tok"));
        assert_eq!(remove_cookie(b"a=1;\t DS \t=\ttok ", "DS").as_deref(), Some(&b"a=1"[..]));
        assert_eq!(query_param("/p?access_token_x=1&access_token=2", "access_token"), Some("2"));
        assert_eq!(query_param("/p", "access_token"), None);
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
        assert_eq!(path_only("/a/b?c=d#e"), "/a/b");
    }
}
