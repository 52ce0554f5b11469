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
    /// The inner requirement, then authorization on the tokens it verified (beyond jwt_authn).
    Authorized(Box<Requirement>, Authz),
}

impl Requirement {
    /// `allow_missing` or `allow_missing_or_failed`: inside `requires_any`, not an
    /// alternative but a say on when the list passes without a token (as in jwt_authn).
    pub fn is_bypass(&self) -> bool {
        matches!(self, Requirement::AllowMissing | Requirement::AllowMissingOrFailed)
    }

    /// Whether it passes a request whose token failed, as if it had none
    /// (`allow_missing_or_failed`, alone or in a `requires_any`).
    pub fn passes_failed_tokens(&self) -> bool {
        match self {
            Requirement::AllowMissingOrFailed => true,
            Requirement::AllowMissing | Requirement::Provider { .. } | Requirement::Authorized(..) => false,
            Requirement::Any(list) => list.iter().any(Requirement::passes_failed_tokens),
            Requirement::All(list) => list.iter().all(Requirement::passes_failed_tokens),
        }
    }

    /// The request headers tenant authorization reads, anywhere in this requirement.
    pub fn tenant_headers(&self) -> Vec<&str> {
        match self {
            Requirement::Any(list) | Requirement::All(list) => {
                list.iter().flat_map(Requirement::tenant_headers).collect()
            }
            Requirement::Authorized(inner, authz) => {
                let mut out = inner.tenant_headers();
                if let Some(TenantSource::Header(h)) = &authz.tenant {
                    out.push(h.as_str());
                }
                out
            }
            Requirement::Provider { .. } | Requirement::AllowMissing | Requirement::AllowMissingOrFailed => Vec::new(),
        }
    }
}

/// What a verified token must also grant (Descope's `validate_roles` and friends).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authz {
    /// All of these roles / permissions.
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    /// At least one of these (when not empty).
    pub any_roles: Vec<String>,
    pub any_permissions: Vec<String>,
    /// Roles and permissions are looked up in this tenant (`tenants.<id>`) instead of at the
    /// top level, and the token must grant the tenant.
    pub tenant: Option<TenantSource>,
    pub claims: Vec<ClaimMatcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    Header(String),
    /// The n-th segment of the path (0 is the first after the leading `/`).
    PathSegment(usize),
    /// A claim of the token, e.g. Descope's current tenant `dct`.
    Claim(String),
    Fixed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatcher {
    /// Dotted claim path.
    pub name: String,
    pub test: ClaimTest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTest {
    Exact(String),
    Prefix(String),
    Present,
    /// An array claim with this element, or a string claim containing this text.
    Contains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathMatch,
    pub case_sensitive: bool,
    /// Uppercase methods this rule applies to; empty for all.
    pub methods: Vec<String>,
    /// `None`: a public route.
    pub requirement: Option<Requirement>,
    /// The request headers the requirement reads tokens from (`cookie` for cookie
    /// locations), each once. The host shows a filter only the first value of a repeated
    /// header, so after an allowed request each one present is set to that value: any
    /// further value, never checked, is dropped rather than passed on.
    pub token_headers: Vec<String>,
}

impl Rule {
    pub fn matches(&self, path: &str, method: &str) -> bool {
        let listed = |name: &str| self.methods.iter().any(|m| m.eq_ignore_ascii_case(name));
        // HEAD is GET without a body, and web frameworks route it to the GET handler: a rule
        // for GET covers it, or `HEAD /secret` would fall through to a later, public rule.
        let head_as_get = method.eq_ignore_ascii_case("HEAD") && listed("GET");
        if !self.methods.is_empty() && !listed(method) && !head_as_get {
            return false;
        }
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

/// The first rule whose match accepts the request path and method.
pub fn find_rule(rules: &[Rule], path: &str, method: &str) -> Option<usize> {
    rules.iter().position(|r| r.matches(path, method))
}

/// Where web frameworks take a method override from (ASP.NET Core, Express's
/// `method-override`, Spring, Google APIs; Rails, Laravel and Symfony read `_method`).
const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// A query parameter a framework may read as `_method`: PHP turns `.`, spaces and `+` in
/// a name into `_` (`?.method=DELETE`), and `_method[]` is a list whose first element
/// Express's `qs` parser hands over.
fn is_method_param(name: &[u8]) -> bool {
    let base = name.split(|&b| b == b'[').next().unwrap_or_default();
    base.iter().map(|&b| if matches!(b, b'.' | b' ' | b'+') { b'_' } else { b }).eq(b"_method".iter().copied())
}

/// The rules that apply to a request, each once, the one its `:method` selects first. When
/// rules name methods, a method override may make the upstream run `POST` as `DELETE`, so
/// the rule the override selects applies too (all must pass): matching on the override
/// alone would instead let `POST` + override `GET` reach a public `GET` rule.
pub fn select_rules(rules: &[Rule], path: &str, req: &dyn RequestView) -> Vec<usize> {
    let mut selected = Vec::with_capacity(1);
    // Every header read is a host call: methods are read only when some rule names them.
    if rules.iter().all(|r| r.methods.is_empty()) {
        selected.extend(find_rule(rules, path, ""));
        return selected;
    }
    let mut overrides: Vec<String> = METHOD_OVERRIDE_HEADERS.iter().filter_map(|h| req.header(h)).collect();
    overrides.extend(crate::extract::query_params_named(path, is_method_param));
    let method = req.header(":method").unwrap_or_default();
    // `DELETE, x`: Express's method-override takes what precedes the first comma; every
    // part is tried.
    let candidates = std::iter::once(method.as_str()).chain(overrides.iter().flat_map(|o| o.split(',')));
    for candidate in candidates {
        if let Some(i) = find_rule(rules, path, candidate.trim()) {
            if !selected.contains(&i) {
                selected.push(i);
            }
        }
    }
    selected
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
        Rule { path, case_sensitive, methods: Vec::new(), requirement: None, token_headers: Vec::new() }
    }

    impl Rule {
        fn m(&self, path: &str) -> bool {
            self.matches(path, "GET")
        }
    }

    #[test]
    fn methods_narrow_a_rule() {
        let mut r = rule(PathMatch::Prefix("/api".into()), true);
        r.methods = vec!["POST".into(), "DELETE".into()];
        assert!(r.matches("/api/x", "POST") && r.matches("/api/x", "DELETE"));
        assert!(!r.matches("/api/x", "GET") && !r.matches("/other", "POST"));
        // Methods compare without case (HTTP/2 allows any token), and GET covers HEAD.
        assert!(r.matches("/api/x", "post") && !r.matches("/api/x", "HEAD"));
        r.methods = vec!["GET".into()];
        assert!(r.matches("/api/x", "HEAD") && r.matches("/api/x", "head") && !r.matches("/api/x", "OPTIONS"));
    }

    #[test]
    fn prefix_exact_and_separated_prefix() {
        let r = rule(PathMatch::Prefix("/api".into()), true);
        assert!(r.m("/api") && r.m("/apix") && r.m("/api/v1?x=1"));
        assert!(!r.m("/API") && !r.m("/ap"));
        let r = rule(PathMatch::Exact("/healthz".into()), true);
        assert!(r.m("/healthz") && r.m("/healthz?full=1"));
        assert!(!r.m("/healthz/") && !r.m("/healthzz"));
        let r = rule(PathMatch::SeparatedPrefix("/api".into()), true);
        assert!(r.m("/api") && r.m("/api/x") && r.m("/api?q"));
        assert!(!r.m("/apix") && !r.m("/ap"));
        let r = rule(PathMatch::Prefix("/API".into()), false);
        assert!(r.m("/api/x"));
        // A multi-byte path must not panic when the prefix length splits a character.
        assert!(!rule(PathMatch::Prefix("/ab".into()), true).m("/é"));
    }

    #[test]
    fn first_match_wins() {
        let rules = vec![rule(PathMatch::Exact("/a/public".into()), true), rule(PathMatch::Prefix("/a".into()), true)];
        assert_eq!(find_rule(&rules, "/a/public", "GET"), Some(0));
        assert_eq!(find_rule(&rules, "/a/x", "GET"), Some(1));
        assert!(find_rule(&rules, "/b", "GET").is_none());
    }
}
