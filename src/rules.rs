//! Route rules: which requirement applies to a request. First match wins; a request that
//! matches no rule needs no token (as in jwt_authn).

use crate::config::ProviderId;
use crate::extract::{path_only, RequestView};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// Matches the path itself or the path followed by `/...` (`/api` matches `/api`,
    /// `/api/x`, not `/apix`).
    SeparatedPrefix(String),
}

/// What a request must present (jwt_authn's `JwtRequirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A token from this provider; `audiences` overrides the provider's own.
    Provider {
        provider: ProviderId,
        audiences: Option<Vec<String>>,
    },
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    /// No token is fine; a present token must verify against the provider its `iss` names.
    AllowMissing,
    /// Always passes; a token that verifies still yields identity headers.
    AllowMissingOrFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathMatch,
    pub case_sensitive: bool,
    /// `None`: a public route.
    pub requirement: Option<Requirement>,
}

impl Rule {
    pub fn matches(&self, path: &str) -> bool {
        let path = path_only(path);
        let eq = |a: &str, b: &str| if self.case_sensitive { a == b } else { a.eq_ignore_ascii_case(b) };
        let starts = |p: &str| path.get(..p.len()).is_some_and(|head| eq(head, p));
        match &self.path {
            PathMatch::Exact(p) => eq(path, p),
            PathMatch::Prefix(p) => starts(p),
            PathMatch::SeparatedPrefix(p) => starts(p) && matches!(path.as_bytes().get(p.len()), None | Some(b'/')),
        }
    }
}

/// The first rule whose match accepts the request path.
pub fn find_rule<'a>(rules: &'a [Rule], path: &str) -> Option<&'a Rule> {
    rules.iter().find(|r| r.matches(path))
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. Browsers
/// never attach credentials to it, so with `bypass_cors_preflight` it passes untouched.
pub fn is_cors_preflight(req: &dyn RequestView) -> bool {
    req.header(":method").is_some_and(|m| m == "OPTIONS")
        && req.header("origin").is_some_and(|o| !o.is_empty())
        && req.header("access-control-request-method").is_some_and(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: PathMatch, case_sensitive: bool) -> Rule {
        Rule { path, case_sensitive, requirement: None }
    }

    #[test]
    fn prefix_exact_and_separated_prefix() {
        let r = rule(PathMatch::Prefix("/api".into()), true);
        assert!(r.matches("/api") && r.matches("/apix") && r.matches("/api/v1?x=1"));
        assert!(!r.matches("/API") && !r.matches("/ap"));
        let r = rule(PathMatch::Exact("/healthz".into()), true);
        assert!(r.matches("/healthz") && r.matches("/healthz?full=1"));
        assert!(!r.matches("/healthz/") && !r.matches("/healthzz"));
        let r = rule(PathMatch::SeparatedPrefix("/api".into()), true);
        assert!(r.matches("/api") && r.matches("/api/x") && r.matches("/api?q"));
        assert!(!r.matches("/apix") && !r.matches("/ap"));
        let r = rule(PathMatch::Prefix("/API".into()), false);
        assert!(r.matches("/api/x"));
        // A multi-byte path must not panic when the prefix length splits a character.
        assert!(!rule(PathMatch::Prefix("/ab".into()), true).matches("/é"));
    }

    #[test]
    fn first_match_wins() {
        let rules = vec![rule(PathMatch::Exact("/a/public".into()), true), rule(PathMatch::Prefix("/a".into()), true)];
        assert_eq!(find_rule(&rules, "/a/public").unwrap().path, PathMatch::Exact("/a/public".into()));
        assert_eq!(find_rule(&rules, "/a/x").unwrap().path, PathMatch::Prefix("/a".into()));
        assert!(find_rule(&rules, "/b").is_none());
    }
}
