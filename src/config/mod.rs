//! Plugin configuration: jwt_authn's `JwtAuthentication` schema (proto-JSON field names),
//! deserialized strictly and compiled once into validated runtime types.
//!
//! Anything unknown, mistyped or unsupported is an error that names the field, so a pasted
//! configuration never loads with a silently ignored security setting.
//!
//! The `#[inline(never)]` marks keep each compile step a function of its own: Envoy's V8
//! compiles every wasm function with TurboFan, whose memory grows with the function and is
//! kept by Envoy's allocator afterwards. Inlined into one 16 KB function, this module cost
//! ~3 MiB of Envoy RSS at two workers.

use crate::extract::Location;
use crate::jwk::{parse_jwks, JwkSet, SkippedKey};
use crate::rules::{Authz, ClaimMatcher, ClaimTest, PathMatch, Requirement, Rule, TenantSource};
use fields::{Obj, Read};

mod fields;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// Descope's SDKs allow 5 s of clock skew; so does the `descope` preset unless told otherwise.
pub const DESCOPE_CLOCK_SKEW_SECONDS: u64 = 5;
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// JSON nesting allowed in a token header or payload. Real tokens nest 3-4 deep.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 16;
const MAX_REQUIREMENT_DEPTH: usize = 8;
/// Enough for requirements nested [`MAX_REQUIREMENT_DEPTH`] deep (three JSON levels each).
const CONFIG_MAX_JSON_DEPTH: usize = 64;

/// A configuration error: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid configuration: {}", self.reason)
        } else {
            write!(f, "invalid configuration at `{}`: {}", self.field, self.reason)
        }
    }
}

/// Index of a provider in [`Config::providers`]. Made only by the configuration (its
/// compiler and [`Config::provider_ids`]), so an id always names a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(usize);

impl ProviderId {
    /// The provider's position in [`Config::providers`], for per-provider tables built in
    /// the same order.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    pub bypass_cors_preflight: bool,
    pub max_token_size: usize,
    pub max_json_depth: usize,
    /// Every header the filter can set; removed from each incoming request first.
    pub identity_headers: Vec<String>,
    /// Every provider's token locations, each once, in provider order: where a standalone
    /// `allow_missing` looks.
    pub all_locations: Vec<Location>,
    /// Keys left out of inline JWKS, for the start-up log.
    pub skipped_keys: Vec<(String, SkippedKey)>,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    /// Accepted `iss` values (exact); empty skips the check. One unless a preset adds more.
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub subjects: Option<StringMatcher>,
    pub require_expiration: bool,
    pub max_lifetime: Option<Duration>,
    pub clock_skew_seconds: u64,
    /// Set by the `descope` preset: the project whose session tokens are accepted, for the
    /// checks Descope's tokens allow beyond jwt_authn's ([`crate::claims`]).
    pub descope_project: Option<String>,
    pub jwks: JwksSource,
    /// Where to look for the token, in precedence order (headers, cookies, parameters).
    pub locations: Vec<Location>,
    pub forward: bool,
    pub forward_payload_header: Option<String>,
    pub pad_forward_payload_header: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Verified-token cache: entries, and the largest token cached.
    pub cache_size: usize,
    pub cache_max_token_size: usize,
}

#[derive(Debug)]
pub enum JwksSource {
    Local(Rc<JwkSet>),
    Remote(RemoteJwks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// With `discovery`, the OpenID configuration document's URI; its `jwks_uri` is then
    /// fetched through the same cluster.
    pub uri: String,
    pub discovery: Option<Discovery>,
    pub authority: String,
    pub path: String,
    pub cluster: String,
    pub timeout: Duration,
    pub cache_duration: Duration,
}

/// OIDC discovery: the document's `issuer` must equal the provider's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub header: String,
    /// Dotted claim path, e.g. `tenants.T1.roles`.
    pub claim: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringMatcher {
    pub kind: MatchKind,
    pub ignore_case: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl StringMatcher {
    pub fn matches(&self, value: &str) -> bool {
        let fold = |s: &str| if self.ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
        let v = fold(value);
        match &self.kind {
            MatchKind::Exact(p) => v == fold(p),
            MatchKind::Prefix(p) => v.starts_with(&fold(p)),
            MatchKind::Suffix(p) => v.ends_with(&fold(p)),
            MatchKind::Contains(p) => v.contains(&fold(p)),
        }
    }
}

impl Config {
    /// Parses and validates the plugin configuration (JSON bytes).
    pub fn parse(input: &[u8]) -> Result<Config, ConfigError> {
        // A `google.protobuf.Struct` configuration (the natural YAML) reaches the plugin as
        // binary protobuf; only a `StringValue` hands over the JSON text.
        if input.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
            return Err(ConfigError::new(
                "",
                "the configuration must be a JSON object in a google.protobuf.StringValue \
                 (`configuration: {\"@type\": type.googleapis.com/google.protobuf.StringValue, value: '{...}'}`); \
                 a google.protobuf.Struct arrives as binary protobuf",
            ));
        }
        let doc =
            crate::json::parse_object(input, CONFIG_MAX_JSON_DEPTH).map_err(|e| ConfigError::new("", e.to_string()))?;
        compile(fields::read(String::new(), &serde_json::Value::Object(doc))?)
    }

    /// What a valid configuration probably did not mean, for a warning at load.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rules.iter().all(|r| r.requirement.is_none()) {
            let name = self.providers.first().map_or("<provider>", |p| p.name.as_str());
            out.push(format!(
                "no rule requires a token, so every request passes unauthenticated; protect routes with e.g. \
                 {{\"match\": {{\"prefix\": \"/\"}}, \"requires\": {{\"provider_name\": \"{name}\"}}}}"
            ));
        }
        out
    }

    pub fn provider(&self, id: ProviderId) -> Option<&Provider> {
        self.providers.get(id.0)
    }

    /// Every provider with its id, in configuration order.
    pub fn provider_ids(&self) -> impl Iterator<Item = (ProviderId, &Provider)> {
        self.providers.iter().enumerate().map(|(i, p)| (ProviderId(i), p))
    }

    #[cfg(test)]
    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.iter().position(|p| p.name == name).map(ProviderId)
    }
}

// ---- raw, as written by the user -------------------------------------------------------

struct RawConfig {
    providers: Vec<(String, RawProvider)>,
    rules: Vec<RawRule>,
    bypass_cors_preflight: bool,
    // Beyond jwt_authn:
    max_token_size: Option<u64>,
    max_json_depth: Option<u64>,
    // jwt_authn fields that need Envoy internals a wasm filter cannot reach.
    requirement_map: bool,
    filter_state_rules: bool,
    strip_failure_response: bool,
}

impl Read for RawConfig {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        // Accepted for pasted configs; stats are prefixed by the plugin instead.
        o.string("stat_prefix")?;
        Ok(RawConfig {
            providers: o.named("providers")?,
            rules: o.objects("rules")?,
            bypass_cors_preflight: o.flag("bypass_cors_preflight")?,
            max_token_size: o.uint32("max_token_size")?,
            max_json_depth: o.uint32("max_json_depth")?,
            requirement_map: o.present("requirement_map"),
            filter_state_rules: o.present("filter_state_rules"),
            strip_failure_response: o.present("strip_failure_response"),
        })
    }
}

struct RawProvider {
    issuer: Option<String>,
    audiences: Vec<String>,
    subjects: Option<RawStringMatcher>,
    require_expiration: bool,
    max_lifetime: Option<Duration>,
    clock_skew_seconds: Option<u64>,
    keys: RawKeySources,
    /// Beyond jwt_authn: Descope defaults for this provider; explicit fields win.
    descope: Option<RawDescope>,
    forward: bool,
    from_headers: Vec<RawHeader>,
    from_cookies: Vec<String>,
    from_params: Vec<String>,
    outputs: RawOutputs,
    /// A `*_in_metadata` field that is set (the error names it).
    metadata: Option<&'static str>,
    /// Sizes the verified-token cache (which is on by default).
    jwt_cache_config: Option<RawJwtCacheConfig>,
}

impl Read for RawProvider {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        // Envoy re-evaluates routes after a wasm filter changes request headers, so the
        // behaviour this asks for is what happens anyway.
        o.flag("clear_route_cache")?;
        let metadata =
            ["payload_in_metadata", "header_in_metadata", "failed_status_in_metadata", "normalize_payload_in_metadata"];
        Ok(RawProvider {
            issuer: o.string("issuer")?,
            audiences: o.strings("audiences")?,
            subjects: o.object("subjects")?,
            require_expiration: o.flag("require_expiration")?,
            max_lifetime: o.duration("max_lifetime")?,
            clock_skew_seconds: o.uint32("clock_skew_seconds")?,
            keys: RawKeySources::read(o)?,
            descope: o.object("descope")?,
            forward: o.flag("forward")?,
            from_headers: o.objects("from_headers")?,
            from_cookies: o.strings("from_cookies")?,
            from_params: o.strings("from_params")?,
            outputs: RawOutputs::read(o)?,
            metadata: metadata.into_iter().filter(|f| o.present(f)).last(),
            jwt_cache_config: o.object("jwt_cache_config")?,
        })
    }
}

/// Where a provider's keys come from (exactly one is allowed). Members of the provider object.
struct RawKeySources {
    local_jwks: Option<RawDataSource>,
    remote_jwks: Option<RawRemoteJwks>,
    /// Beyond jwt_authn: the JWKS URI comes from this OpenID configuration document.
    oidc_discovery: Option<RawRemoteJwks>,
}

impl Read for RawKeySources {
    #[inline(never)]
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawKeySources {
            local_jwks: o.object("local_jwks")?,
            remote_jwks: o.object("remote_jwks")?,
            oidc_discovery: o.object("oidc_discovery")?,
        })
    }
}

/// What a provider writes for the upstream. Members of the provider object.
struct RawOutputs {
    forward_payload_header: Option<String>,
    pad_forward_payload_header: bool,
    claim_to_headers: Vec<RawClaimToHeader>,
}

impl Read for RawOutputs {
    #[inline(never)]
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawOutputs {
            forward_payload_header: o.string("forward_payload_header")?,
            pad_forward_payload_header: o.flag("pad_forward_payload_header")?,
            claim_to_headers: o.objects("claim_to_headers")?,
        })
    }
}

struct RawDescope {
    project_id: String,
    base_url: Option<String>,
    cluster: Option<String>,
    timeout: Option<Duration>,
    cache_duration: Option<Duration>,
}

impl Read for RawDescope {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawDescope {
            project_id: o.required_string("project_id")?,
            base_url: o.string("base_url")?,
            cluster: o.string("cluster")?,
            timeout: o.duration("timeout")?,
            cache_duration: o.duration("cache_duration")?,
        })
    }
}

pub const DESCOPE_BASE_URL: &str = "https://api.descope.com";
pub const DESCOPE_CLUSTER: &str = "descope";

struct RawJwtCacheConfig {
    jwt_cache_size: Option<u64>,
    jwt_max_token_size: Option<u64>,
}

impl Read for RawJwtCacheConfig {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawJwtCacheConfig {
            jwt_cache_size: o.uint32("jwt_cache_size")?,
            jwt_max_token_size: o.uint32("jwt_max_token_size")?,
        })
    }
}

struct RawStringMatcher {
    exact: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
    contains: Option<String>,
    safe_regex: bool,
    ignore_case: bool,
}

impl Read for RawStringMatcher {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawStringMatcher {
            exact: o.string("exact")?,
            prefix: o.string("prefix")?,
            suffix: o.string("suffix")?,
            contains: o.string("contains")?,
            safe_regex: o.present("safe_regex"),
            ignore_case: o.flag("ignore_case")?,
        })
    }
}

struct RawDataSource {
    inline_string: Option<String>,
    inline_bytes: bool,
    filename: bool,
    environment_variable: bool,
}

impl Read for RawDataSource {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawDataSource {
            inline_string: o.string("inline_string")?,
            inline_bytes: o.present("inline_bytes"),
            filename: o.present("filename"),
            environment_variable: o.present("environment_variable"),
        })
    }
}

struct RawRemoteJwks {
    http_uri: RawHttpUri,
    cache_duration: Option<Duration>,
}

impl Read for RawRemoteJwks {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        // Accepted and checked for pasted configs; their meaning is the fetcher's own (always
        // in the background, retries with backoff: README "Remote JWKS").
        o.object::<RawAsyncFetch>("async_fetch")?;
        o.object::<RawRetryPolicy>("retry_policy")?;
        Ok(RawRemoteJwks { http_uri: o.required_object("http_uri")?, cache_duration: o.duration("cache_duration")? })
    }
}

/// jwt_authn's `JwksAsyncFetch`.
struct RawAsyncFetch;

impl Read for RawAsyncFetch {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        o.bool("fast_listener")?;
        o.string("failed_refetch_duration")?;
        Ok(RawAsyncFetch)
    }
}

/// Envoy's `config.core.v3.RetryPolicy`; the two extension members are taken as they are.
struct RawRetryPolicy;

impl Read for RawRetryPolicy {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        o.object::<RawBackOff>("retry_back_off")?;
        o.uint32("num_retries")?;
        o.string("retry_on")?;
        o.uint32("host_selection_retry_max_attempts")?;
        o.present("retry_priority");
        o.present("retry_host_predicate");
        Ok(RawRetryPolicy)
    }
}

struct RawBackOff;

impl Read for RawBackOff {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        o.string("base_interval")?;
        o.string("max_interval")?;
        Ok(RawBackOff)
    }
}

struct RawHttpUri {
    uri: String,
    cluster: String,
    timeout: Option<Duration>,
}

impl Read for RawHttpUri {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawHttpUri {
            uri: o.required_string("uri")?,
            cluster: o.required_string("cluster")?,
            timeout: o.duration("timeout")?,
        })
    }
}

struct RawHeader {
    name: String,
    value_prefix: Option<String>,
}

impl Read for RawHeader {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawHeader { name: o.required_string("name")?, value_prefix: o.string("value_prefix")? })
    }
}

struct RawClaimToHeader {
    header_name: String,
    claim_name: String,
}

impl Read for RawClaimToHeader {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawClaimToHeader {
            header_name: o.required_string("header_name")?,
            claim_name: o.required_string("claim_name")?,
        })
    }
}

struct RawRule {
    route: RawRouteMatch,
    requires: Option<RawRequirement>,
    requirement_name: bool,
}

impl Read for RawRule {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawRule {
            route: o.required_object("match")?,
            requires: o.object("requires")?,
            requirement_name: o.present("requirement_name"),
        })
    }
}

struct RawRouteMatch {
    prefix: Option<String>,
    path: Option<String>,
    path_separated_prefix: Option<String>,
    case_sensitive: Option<bool>,
    /// Beyond jwt_authn: the HTTP methods the rule applies to.
    methods: Vec<String>,
    /// A match kind this filter cannot evaluate that is set (the error names it).
    unsupported: Option<&'static str>,
}

impl Read for RawRouteMatch {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        // RouteMatch members jwt_authn knows: named here so the error says "not supported"
        // instead of reading like a typo.
        let unsupported = [
            "safe_regex",
            "headers",
            "query_parameters",
            "grpc",
            "connect_matcher",
            "path_match_policy",
            "runtime_fraction",
            "tls_context",
            "dynamic_metadata",
            "filter_state",
            "cel_expression",
        ];
        Ok(RawRouteMatch {
            prefix: o.string("prefix")?,
            path: o.string("path")?,
            path_separated_prefix: o.string("path_separated_prefix")?,
            case_sensitive: o.bool("case_sensitive")?,
            methods: o.strings("methods")?,
            unsupported: unsupported.into_iter().filter(|f| o.present(f)).last(),
        })
    }
}

struct RawRequirement {
    provider_name: Option<String>,
    provider_and_audiences: Option<RawProviderAndAudiences>,
    requires_any: Option<RawRequirementList>,
    requires_all: Option<RawRequirementList>,
    allow_missing: Option<RawEmpty>,
    allow_missing_or_failed: Option<RawEmpty>,
    // Beyond jwt_authn: authorization on the verified token.
    roles: Vec<String>,
    permissions: Vec<String>,
    any_roles: Vec<String>,
    any_permissions: Vec<String>,
    tenant: Option<RawTenant>,
    claims: Vec<RawClaimMatcher>,
}

impl Read for RawRequirement {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawRequirement {
            provider_name: o.string("provider_name")?,
            provider_and_audiences: o.object("provider_and_audiences")?,
            requires_any: o.object("requires_any")?,
            requires_all: o.object("requires_all")?,
            allow_missing: o.object("allow_missing")?,
            allow_missing_or_failed: o.object("allow_missing_or_failed")?,
            roles: o.strings("roles")?,
            permissions: o.strings("permissions")?,
            any_roles: o.strings("any_roles")?,
            any_permissions: o.strings("any_permissions")?,
            tenant: o.object("tenant")?,
            claims: o.objects("claims")?,
        })
    }
}

struct RawTenant {
    header: Option<String>,
    path_segment: Option<u64>,
    claim: Option<String>,
    value: Option<String>,
}

impl Read for RawTenant {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawTenant {
            header: o.string("header")?,
            path_segment: o.uint32("path_segment")?,
            claim: o.string("claim")?,
            value: o.string("value")?,
        })
    }
}

struct RawClaimMatcher {
    name: String,
    exact: Option<String>,
    prefix: Option<String>,
    present: Option<bool>,
    contains: Option<String>,
}

impl Read for RawClaimMatcher {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawClaimMatcher {
            name: o.required_string("name")?,
            exact: o.string("exact")?,
            prefix: o.string("prefix")?,
            present: o.bool("present")?,
            contains: o.string("contains")?,
        })
    }
}

struct RawProviderAndAudiences {
    provider_name: String,
    audiences: Vec<String>,
}

impl Read for RawProviderAndAudiences {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawProviderAndAudiences {
            provider_name: o.required_string("provider_name")?,
            audiences: o.strings("audiences")?,
        })
    }
}

struct RawRequirementList {
    requirements: Vec<RawRequirement>,
}

impl Read for RawRequirementList {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawRequirementList { requirements: o.objects("requirements")? })
    }
}

/// `{}`: jwt_authn's `Empty` message.
struct RawEmpty;

impl Read for RawEmpty {
    fn read(_: &mut Obj<'_>) -> Result<Self, ConfigError> {
        Ok(RawEmpty)
    }
}

// ---- compilation -------------------------------------------------------------------------

/// Numbers are read as u64 and bounded by the reader; this only changes the type.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn unsupported(field: &str, why: &str) -> ConfigError {
    ConfigError::new(field, format!("not supported by this filter: {why}"))
}

#[inline(never)]
fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    if raw.requirement_map || raw.filter_state_rules {
        let field = if raw.requirement_map { "requirement_map" } else { "filter_state_rules" };
        return Err(unsupported(field, "write the requirement inline in `rules[].requires`"));
    }
    if raw.strip_failure_response {
        return Err(unsupported("strip_failure_response", "failure replies are always the short JSON body"));
    }
    let max_token_size = raw.max_token_size.map_or(DEFAULT_MAX_TOKEN_SIZE, to_usize);
    if !(64..=1024 * 1024).contains(&max_token_size) {
        return Err(ConfigError::new("max_token_size", "must be between 64 and 1048576 bytes"));
    }
    let max_json_depth = raw.max_json_depth.map_or(DEFAULT_MAX_JSON_DEPTH, to_usize);
    if !(2..=64).contains(&max_json_depth) {
        return Err(ConfigError::new("max_json_depth", "must be between 2 and 64"));
    }

    let mut providers = Vec::with_capacity(raw.providers.len());
    let mut skipped_keys = Vec::new();
    for (name, p) in raw.providers {
        let field = format!("providers.{name}");
        if name.is_empty() {
            return Err(ConfigError::new("providers", "provider names must not be empty"));
        }
        let (provider, skipped) = compile_provider(&field, name, p)?;
        skipped_keys.extend(skipped.into_iter().map(|s| (provider.name.clone(), s)));
        providers.push(provider);
    }

    let lookup = |name: &str| providers.iter().position(|p| p.name == name).map(ProviderId);
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        rules.push(compile_rule(&format!("rules[{i}]"), r, &lookup)?);
    }

    let identity_headers = collect_identity_headers(&providers)?;
    check_tenant_headers(&rules, &providers, &identity_headers)?;
    let mut all_locations: Vec<Location> = Vec::new();
    for l in providers.iter().flat_map(|p| &p.locations) {
        if !all_locations.contains(l) {
            all_locations.push(l.clone());
        }
    }
    for rule in &mut rules {
        if let Some(r) = &rule.requirement {
            token_headers(r, &providers, &mut rule.token_headers);
        }
    }
    Ok(Config {
        all_locations,
        providers,
        rules,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        max_token_size,
        max_json_depth,
        identity_headers,
        skipped_keys,
    })
}

/// Adds the headers `r` reads tokens from to `out`, each once: its providers' locations, or
/// every provider's for a standalone `allow_missing` (which verifies any token it finds).
/// Beside other alternatives in `requires_any`, `allow_missing` reads nothing itself (see
/// `Authenticator::any`).
fn token_headers(r: &Requirement, providers: &[Provider], out: &mut Vec<String>) {
    let locations: Box<dyn Iterator<Item = &Location>> = match r {
        Requirement::Provider { provider, .. } => {
            Box::new(providers.get(provider.0).into_iter().flat_map(|p| &p.locations))
        }
        Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
            Box::new(providers.iter().flat_map(|p| &p.locations))
        }
        Requirement::Any(list) if !list.iter().all(Requirement::is_bypass) => {
            list.iter().filter(|r| !r.is_bypass()).for_each(|r| token_headers(r, providers, out));
            return;
        }
        Requirement::Any(list) | Requirement::All(list) => {
            list.iter().for_each(|r| token_headers(r, providers, out));
            return;
        }
        Requirement::Authorized(inner, _) => return token_headers(inner, providers, out),
    };
    for name in locations.filter_map(Location::header) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
}

/// What the `descope` preset decided beyond the raw fields it fills in.
struct Preset {
    project_id: String,
    /// The issuers Descope tokens carry, for use when `issuer` is unset.
    issuers: Vec<String>,
}

/// The `descope` preset: fills in what the provider leaves unset, as Descope's SDKs behave —
/// JWKS at `<base_url>/v2/keys/<project>` (the base URL of the project's region, as the
/// SDKs derive it), the token from `Authorization: Bearer` or the `DS` cookie, identity
/// headers for the user and the current tenant.
#[inline(never)]
fn apply_descope(field: &str, p: &mut RawProvider) -> Result<Option<Preset>, ConfigError> {
    let Some(d) = p.descope.take() else { return Ok(None) };
    let pid = d.project_id;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            format!("{field}.descope.project_id"),
            "must be a Descope project id (letters and digits)",
        ));
    }
    let base = d.base_url.unwrap_or_else(|| descope_base_url(&pid));
    let base = base.trim_end_matches('/').to_owned();
    split_uri(&format!("{field}.descope.base_url"), &base)?;
    let keys = &mut p.keys;
    if keys.local_jwks.is_none() && keys.remote_jwks.is_none() && keys.oidc_discovery.is_none() {
        keys.remote_jwks = Some(RawRemoteJwks {
            http_uri: RawHttpUri {
                uri: format!("{base}/v2/keys/{pid}"),
                cluster: d.cluster.unwrap_or_else(|| DESCOPE_CLUSTER.to_owned()),
                timeout: d.timeout,
            },
            cache_duration: d.cache_duration,
        });
    }
    if p.from_headers.is_empty() && p.from_cookies.is_empty() && p.from_params.is_empty() {
        p.from_headers = vec![RawHeader { name: "authorization".into(), value_prefix: Some("Bearer ".into()) }];
        p.from_cookies = vec!["DS".into()];
    }
    let outputs = &mut p.outputs;
    if outputs.claim_to_headers.is_empty() && outputs.forward_payload_header.is_none() {
        let header = |h: &str, c: &str| RawClaimToHeader { header_name: h.into(), claim_name: c.into() };
        outputs.claim_to_headers = vec![
            header("x-descope-user-id", "sub"),
            header("x-descope-tenants", "tenants.@keys"),
            header("x-descope-current-tenant", "dct"),
            // Project-level, what the SDKs' validateRoles/validatePermissions read ...
            header("x-descope-roles", "roles"),
            header("x-descope-permissions", "permissions"),
            // ... and the current tenant's, what their tenant variants read.
            header("x-descope-tenant-roles", "tenants.{dct}.roles"),
            header("x-descope-tenant-permissions", "tenants.{dct}.permissions"),
        ];
    }
    // The three forms Descope's SDKs accept.
    let issuers = vec![pid.clone(), format!("{base}/{pid}"), format!("{base}/v1/apps/{pid}")];
    Ok(Some(Preset { project_id: pid, issuers }))
}

/// Descope's API for a project: regional projects (ids of 32 characters or more) carry their
/// region in characters 1..5 and are served by `api.<region>.descope.com`, as the SDKs
/// compute it.
fn descope_base_url(project_id: &str) -> String {
    match project_id.get(1..5) {
        Some(region) if project_id.len() >= 32 => format!("https://api.{region}.descope.com"),
        _ => DESCOPE_BASE_URL.to_owned(),
    }
}

#[inline(never)]
fn compile_provider(field: &str, name: String, mut p: RawProvider) -> Result<(Provider, Vec<SkippedKey>), ConfigError> {
    let preset = apply_descope(field, &mut p)?;
    if let Some(f) = p.metadata {
        return Err(unsupported(
            &format!("{field}.{f}"),
            "wasm filters cannot write Envoy dynamic metadata; use claim_to_headers or forward_payload_header",
        ));
    }

    let (jwks, skipped) = compile_keys(field, p.keys, p.issuer.as_deref())?;

    let issuers = match p.issuer {
        Some(iss) if iss.is_empty() => {
            return Err(ConfigError::new(
                format!("{field}.issuer"),
                "must not be empty; leave it out to skip the check",
            ))
        }
        Some(iss) => vec![iss],
        None => preset.as_ref().map(|d| d.issuers.clone()).unwrap_or_default(),
    };
    if p.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new(format!("{field}.audiences"), "entries must not be empty"));
    }
    let subjects = p.subjects.map(|s| compile_matcher(&format!("{field}.subjects"), s)).transpose()?;

    let locations = compile_locations(field, p.from_headers, p.from_cookies, p.from_params)?;

    let (forward_payload_header, claim_to_headers) =
        compile_outputs(field, p.outputs.forward_payload_header, p.outputs.claim_to_headers)?;

    let (cache_size, cache_max_token_size) = compile_cache(field, p.jwt_cache_config.as_ref())?;

    let provider = Provider {
        name,
        issuers,
        audiences: p.audiences,
        subjects,
        require_expiration: p.require_expiration,
        max_lifetime: p.max_lifetime,
        // 0 is unset, as in jwt_authn (proto3): control planes write defaults out as 0.
        clock_skew_seconds: match (p.clock_skew_seconds.filter(|&s| s > 0), &preset) {
            (Some(s), _) => s,
            (None, Some(_)) => DESCOPE_CLOCK_SKEW_SECONDS,
            (None, None) => DEFAULT_CLOCK_SKEW_SECONDS,
        },
        descope_project: preset.map(|d| d.project_id),
        jwks,
        locations,
        forward: p.forward,
        forward_payload_header,
        pad_forward_payload_header: p.outputs.pad_forward_payload_header,
        claim_to_headers,
        cache_size,
        cache_max_token_size,
    };
    Ok((provider, skipped))
}

/// The provider's key source: inline keys parsed now, or where and how to fetch them.
#[inline(never)]
fn compile_keys(
    field: &str,
    keys: RawKeySources,
    issuer: Option<&str>,
) -> Result<(JwksSource, Vec<SkippedKey>), ConfigError> {
    let jwks_field = format!("{field}.local_jwks");
    Ok(match (keys.local_jwks, keys.remote_jwks, keys.oidc_discovery) {
        (Some(ds), None, None) => {
            let text = inline_source(&jwks_field, ds)?;
            let parsed = parse_jwks(text.as_bytes())
                .map_err(|e| ConfigError::new(&jwks_field, format!("unusable JWKS: {e}")))?;
            (JwksSource::Local(Rc::new(parsed.set)), parsed.skipped)
        }
        (None, Some(r), None) => {
            (JwksSource::Remote(compile_remote(&format!("{field}.remote_jwks"), r, None)?), Vec::new())
        }
        (None, None, Some(d)) => {
            let Some(issuer) = issuer.filter(|i| !i.is_empty()).map(str::to_owned) else {
                return Err(ConfigError::new(
                    format!("{field}.oidc_discovery"),
                    "needs the provider's `issuer`: the discovery document must name the same one",
                ));
            };
            let remote = compile_remote(&format!("{field}.oidc_discovery"), d, Some(Discovery { issuer }))?;
            (JwksSource::Remote(remote), Vec::new())
        }
        (None, None, None) => {
            return Err(ConfigError::new(field, "one of `local_jwks`, `remote_jwks` or `oidc_discovery` is required"))
        }
        _ => {
            return Err(ConfigError::new(
                field,
                "set exactly one of `local_jwks`, `remote_jwks` and `oidc_discovery`, not both",
            ))
        }
    })
}

/// The headers a provider writes: `forward_payload_header` and `claim_to_headers`.
#[inline(never)]
fn compile_outputs(
    field: &str,
    forward_payload_header: Option<String>,
    claim_headers: Vec<RawClaimToHeader>,
) -> Result<(Option<String>, Vec<ClaimToHeader>), ConfigError> {
    let forward_payload_header = forward_payload_header
        .map(|h| output_header_name(&format!("{field}.forward_payload_header"), &h))
        .transpose()?;
    let mut claim_to_headers = Vec::with_capacity(claim_headers.len());
    for (i, c) in claim_headers.into_iter().enumerate() {
        let f = format!("{field}.claim_to_headers[{i}]");
        let header = output_header_name(&format!("{f}.header_name"), &c.header_name)?;
        check_claim_path(&format!("{f}.claim_name"), &c.claim_name)?;
        // Two values for one header: which one the upstream reads would be an accident.
        if forward_payload_header
            .as_ref()
            .into_iter()
            .chain(claim_to_headers.iter().map(|c: &ClaimToHeader| &c.header))
            .any(|h| *h == header)
        {
            return Err(ConfigError::new(
                format!("{f}.header_name"),
                format!("header `{header}` is already written by this provider"),
            ));
        }
        claim_to_headers.push(ClaimToHeader { header, claim: c.claim_name });
    }
    Ok((forward_payload_header, claim_to_headers))
}

/// The verified-token cache's size and largest token, from jwt_authn's `jwt_cache_config`.
fn compile_cache(field: &str, cache: Option<&RawJwtCacheConfig>) -> Result<(usize, usize), ConfigError> {
    // proto3: 0 means unset, so 0 keeps the default, as in jwt_authn.
    let nonzero = |v: Option<u64>, default: usize| v.filter(|n| *n > 0).map_or(default, to_usize);
    let cache_size = nonzero(cache.and_then(|c| c.jwt_cache_size), crate::token_cache::DEFAULT_CAPACITY);
    let cache_max_token_size =
        nonzero(cache.and_then(|c| c.jwt_max_token_size), crate::token_cache::DEFAULT_MAX_TOKEN_SIZE);
    if cache_size > 1_000_000 {
        return Err(ConfigError::new(format!("{field}.jwt_cache_config.jwt_cache_size"), "at most 1000000 entries"));
    }
    Ok((cache_size, cache_max_token_size))
}

/// A claim path: dotted segments, each a name or `{claim}` (the value of that top-level claim,
/// e.g. `tenants.{dct}.roles`), optionally ending in `@keys` (an object's member names).
fn check_claim_path(field: &str, path: &str) -> Result<(), ConfigError> {
    let segments: Vec<&str> = path.split('.').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        let ok = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) => !inner.is_empty() && !inner.contains(['{', '}', '@']),
            None if *seg == "@keys" => i == last && i > 0,
            None => !seg.is_empty() && !seg.contains(['{', '}']),
        };
        if !ok {
            return Err(ConfigError::new(
                field,
                format!("{path:?} is not a claim path (`a.b.c`, `tenants.{{dct}}.roles`, `tenants.@keys`)"),
            ));
        }
    }
    Ok(())
}

#[inline(never)]
fn inline_source(field: &str, ds: RawDataSource) -> Result<String, ConfigError> {
    match ds {
        RawDataSource { inline_string: Some(s), inline_bytes: false, filename: false, environment_variable: false } => {
            Ok(s)
        }
        RawDataSource { filename: true, .. } => Err(ConfigError::new(
            format!("{field}.filename"),
            "a wasm filter cannot read files; put the JWKS in `inline_string` or use `remote_jwks`",
        )),
        RawDataSource { environment_variable: true, .. } => Err(ConfigError::new(
            format!("{field}.environment_variable"),
            "a wasm filter cannot read the environment; put the JWKS in `inline_string`",
        )),
        RawDataSource { inline_bytes: true, .. } => {
            Err(ConfigError::new(format!("{field}.inline_bytes"), "use `inline_string` with the JWKS JSON"))
        }
        _ => Err(ConfigError::new(field, "`inline_string` is required")),
    }
}

#[inline(never)]
fn compile_remote(field: &str, r: RawRemoteJwks, discovery: Option<Discovery>) -> Result<RemoteJwks, ConfigError> {
    let uri_field = format!("{field}.http_uri.uri");
    let (authority, path) = split_uri(&uri_field, &r.http_uri.uri)?;
    if r.http_uri.cluster.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.http_uri.cluster"),
            "must name the Envoy cluster that reaches the JWKS host",
        ));
    }
    let timeout = r.http_uri.timeout.unwrap_or(DEFAULT_FETCH_TIMEOUT);
    // Envoy takes the timeout in whole milliseconds, 0 meaning none; requests wait at most
    // this long for the first keys.
    if !(Duration::from_millis(1)..=MAX_FETCH_TIMEOUT).contains(&timeout) {
        return Err(ConfigError::new(format!("{field}.http_uri.timeout"), "must be between 0.001s and 60s"));
    }
    let cache_duration = r.cache_duration.unwrap_or(DEFAULT_CACHE_DURATION);
    if cache_duration < Duration::from_secs(1) {
        return Err(ConfigError::new(format!("{field}.cache_duration"), "must be at least 1s"));
    }
    Ok(RemoteJwks {
        uri: r.http_uri.uri,
        discovery,
        authority,
        path,
        cluster: r.http_uri.cluster,
        timeout,
        cache_duration,
    })
}

/// Splits `http(s)://authority/path?query` into the `:authority` and `:path` of a dispatched call.
pub(crate) fn split_uri(field: &str, uri: &str) -> Result<(String, String), ConfigError> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| ConfigError::new(field, "must be an absolute http:// or https:// URI"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
    let valid_authority =
        !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !valid_authority {
        return Err(ConfigError::new(field, "has no valid host"));
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'#') {
        return Err(ConfigError::new(field, "path contains spaces, control characters or a fragment"));
    }
    Ok((authority.to_owned(), path))
}

#[inline(never)]
fn compile_matcher(field: &str, m: RawStringMatcher) -> Result<StringMatcher, ConfigError> {
    if m.safe_regex {
        return Err(unsupported(&format!("{field}.safe_regex"), "use exact, prefix, suffix or contains"));
    }
    let kinds = [
        m.exact.map(MatchKind::Exact),
        m.prefix.map(MatchKind::Prefix),
        m.suffix.map(MatchKind::Suffix),
        m.contains.map(MatchKind::Contains),
    ];
    let mut set = kinds.into_iter().flatten();
    match (set.next(), set.next()) {
        (Some(kind), None) => Ok(StringMatcher { kind, ignore_case: m.ignore_case }),
        (None, _) => Err(ConfigError::new(field, "one of exact, prefix, suffix or contains is required")),
        (Some(_), Some(_)) => Err(ConfigError::new(field, "set only one of exact, prefix, suffix or contains")),
    }
}

#[inline(never)]
fn compile_locations(
    field: &str,
    headers: Vec<RawHeader>,
    cookies: Vec<String>,
    params: Vec<String>,
) -> Result<Vec<Location>, ConfigError> {
    if headers.is_empty() && cookies.is_empty() && params.is_empty() {
        // jwt_authn's defaults (RFC 6750 §2.1 and §2.3).
        return Ok(vec![
            Location::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
            Location::Param("access_token".into()),
        ]);
    }
    let mut out = Vec::new();
    for (i, h) in headers.into_iter().enumerate() {
        let name = header_name(&format!("{field}.from_headers[{i}].name"), &h.name)?;
        let prefix = h.value_prefix.filter(|p| !p.is_empty());
        out.push(Location::Header { name, prefix });
    }
    for (i, c) in cookies.into_iter().enumerate() {
        if c.is_empty() || !c.bytes().all(is_tchar) {
            return Err(ConfigError::new(format!("{field}.from_cookies[{i}]"), "is not a valid cookie name"));
        }
        out.push(Location::Cookie(c));
    }
    for (i, p) in params.into_iter().enumerate() {
        if p.is_empty() || p.bytes().any(|b| matches!(b, b'&' | b'=' | b'#' | b'?') || !b.is_ascii_graphic()) {
            return Err(ConfigError::new(format!("{field}.from_params[{i}]"), "is not a valid query parameter name"));
        }
        out.push(Location::Param(p));
    }
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A request header name, lowercased as Envoy stores it.
fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ConfigError::new(field, format!("{name:?} is not a valid HTTP header name")));
    }
    Ok(name.to_ascii_lowercase())
}

/// A header the filter writes: also never a pseudo-header or one that frames the message.
fn output_header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let lower = header_name(field, name)?;
    const RESERVED: [&str; 10] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "keep-alive",
        "proxy-connection",
        "cookie",
        "authorization",
    ];
    if RESERVED.contains(&lower.as_str()) {
        return Err(ConfigError::new(
            field,
            format!("`{lower}` cannot carry identity: it would overwrite request framing or credentials"),
        ));
    }
    Ok(lower)
}

/// All output headers, checked against each other and against every token location.
#[inline(never)]
fn collect_identity_headers(providers: &[Provider]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for p in providers {
        let outputs = p.forward_payload_header.iter().chain(p.claim_to_headers.iter().map(|c| &c.header));
        for h in outputs {
            for q in providers {
                let reads = q.locations.iter().any(|l| matches!(l, Location::Header { name, .. } if name == h));
                if reads {
                    return Err(ConfigError::new(
                        format!("providers.{}", p.name),
                        format!("header `{h}` is both a token source (of provider {}) and an identity header", q.name),
                    ));
                }
            }
            if !out.contains(h) {
                out.push(h.clone());
            }
        }
    }
    Ok(out)
}

/// A tenant read from a header the filter itself rewrites would be authorized on the
/// client's value while the upstream gets another (an identity header is replaced after the
/// decision, a token header may be removed): refused.
#[inline(never)]
fn check_tenant_headers(rules: &[Rule], providers: &[Provider], identity: &[String]) -> Result<(), ConfigError> {
    for (i, rule) in rules.iter().enumerate() {
        for h in rule.requirement.iter().flat_map(Requirement::tenant_headers) {
            let token_source = providers
                .iter()
                .find(|p| p.locations.iter().any(|l| matches!(l, Location::Header { name, .. } if name == h)));
            let clash = match token_source {
                Some(p) => format!("a token source of provider {}", p.name),
                None if identity.iter().any(|x| x == h) => "an identity header this filter writes".to_owned(),
                None => continue,
            };
            return Err(ConfigError::new(
                format!("rules[{i}].requires"),
                format!(
                    "tenant header `{h}` is also {clash}: the tenant would be authorized on one value and the \
                     upstream sent another; take the tenant from the token (`{{\"claim\": \"dct\"}}`) or another header"
                ),
            ));
        }
    }
    Ok(())
}

#[inline(never)]
fn compile_rule(field: &str, r: RawRule, lookup: &dyn Fn(&str) -> Option<ProviderId>) -> Result<Rule, ConfigError> {
    if r.requirement_name {
        return Err(unsupported(&format!("{field}.requirement_name"), "write the requirement inline in `requires`"));
    }
    let m = r.route;
    let mf = format!("{field}.match");
    if let Some(f) = m.unsupported {
        return Err(unsupported(&format!("{mf}.{f}"), "match on prefix, path or path_separated_prefix"));
    }
    let kinds = [
        m.prefix.map(PathMatch::Prefix),
        m.path.map(PathMatch::Exact),
        m.path_separated_prefix.map(PathMatch::SeparatedPrefix),
    ];
    let mut set = kinds.into_iter().flatten();
    let path = match (set.next(), set.next()) {
        (Some(p), None) => p,
        (None, _) => return Err(ConfigError::new(mf, "one of prefix, path or path_separated_prefix is required")),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(mf, "set only one of prefix, path or path_separated_prefix"))
        }
    };
    // A pattern no normalised `:path` can match would protect nothing, silently: Envoy
    // hands the filter paths that start with `/`, without the fragment, and rules match
    // them without the query. (`prefix: ""` matches everything, CONNECT's empty path too.)
    let (kind, p) = match &path {
        PathMatch::Prefix(p) => ("prefix", p),
        PathMatch::Exact(p) => ("path", p),
        PathMatch::SeparatedPrefix(p) => ("path_separated_prefix", p),
    };
    let never = if !p.is_empty() && !p.starts_with('/') {
        Some("must start with `/`")
    } else if p.contains(['?', '#']) {
        Some("must not contain `?` or `#`: rules match the path without the query string")
    } else if matches!(path, PathMatch::SeparatedPrefix(_)) && (p.is_empty() || p.ends_with('/')) {
        Some("must not be empty or end with `/` (use `prefix`)")
    } else {
        None
    };
    if let Some(why) = never {
        return Err(ConfigError::new(format!("{mf}.{kind}"), why));
    }
    let requirement =
        r.requires.map(|req| compile_requirement(&format!("{field}.requires"), req, lookup, 0)).transpose()?;
    let mut methods = Vec::with_capacity(m.methods.len());
    for (i, method) in m.methods.into_iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError::new(format!("{mf}.methods[{i}]"), format!("{method:?} is not an HTTP method")));
        }
        methods.push(method.to_ascii_uppercase());
    }
    // token_headers: filled in once every rule is compiled.
    Ok(Rule { path, case_sensitive: m.case_sensitive.unwrap_or(true), methods, requirement, token_headers: Vec::new() })
}

fn compile_requirement(
    field: &str,
    mut r: RawRequirement,
    lookup: &dyn Fn(&str) -> Option<ProviderId>,
    depth: usize,
) -> Result<Requirement, ConfigError> {
    if depth >= MAX_REQUIREMENT_DEPTH {
        return Err(ConfigError::new(field, format!("requirements nest deeper than {MAX_REQUIREMENT_DEPTH} levels")));
    }
    let provider = |f: String, name: &str| {
        lookup(name).ok_or_else(|| ConfigError::new(f, format!("names provider {name:?}, which is not in `providers`")))
    };
    let list = |f: String, l: RawRequirementList| -> Result<Vec<Requirement>, ConfigError> {
        if l.requirements.is_empty() {
            return Err(ConfigError::new(f, "`requirements` must not be empty"));
        }
        l.requirements
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_requirement(&format!("{f}.requirements[{i}]"), r, lookup, depth.saturating_add(1)))
            .collect()
    };
    let set = [
        r.provider_name.is_some(),
        r.provider_and_audiences.is_some(),
        r.requires_any.is_some(),
        r.requires_all.is_some(),
        r.allow_missing.is_some(),
        r.allow_missing_or_failed.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        return Err(ConfigError::new(
            field,
            "set exactly one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed",
        ));
    }
    let authz = compile_authz(field, &mut r)?;
    let inner = compile_authn(field, r, provider, list)?;
    // Authorization needs a verified token. Over `allow_missing_or_failed` it could only
    // refuse, and a token that failed (or keys that could not be fetched) would be reported
    // as missing: say where it belongs instead.
    if authz.is_some() && inner.passes_failed_tokens() {
        return Err(ConfigError::new(
            field,
            "roles, permissions, tenant and claims need a verified token, but allow_missing_or_failed passes \
             a failed one: put them on the provider_name it allows, e.g. requires_any: {requirements: \
             [{provider_name: A, roles: [...]}, {allow_missing_or_failed: {}}]}",
        ));
    }
    Ok(match authz {
        Some(a) => Requirement::Authorized(Box::new(inner), a),
        None => inner,
    })
}

/// The jwt_authn part of a requirement (exactly one member is set, checked by the caller).
#[inline(never)]
fn compile_authn(
    field: &str,
    r: RawRequirement,
    provider: impl Fn(String, &str) -> Result<ProviderId, ConfigError>,
    list: impl Fn(String, RawRequirementList) -> Result<Vec<Requirement>, ConfigError>,
) -> Result<Requirement, ConfigError> {
    if let Some(name) = r.provider_name {
        return Ok(Requirement::Provider {
            provider: provider(format!("{field}.provider_name"), &name)?,
            audiences: None,
        });
    }
    if let Some(pa) = r.provider_and_audiences {
        let id = provider(format!("{field}.provider_and_audiences.provider_name"), &pa.provider_name)?;
        if pa.audiences.is_empty() || pa.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("{field}.provider_and_audiences.audiences"),
                "must list non-empty audiences",
            ));
        }
        return Ok(Requirement::Provider { provider: id, audiences: Some(pa.audiences) });
    }
    if let Some(l) = r.requires_any {
        return Ok(Requirement::Any(list(format!("{field}.requires_any"), l)?));
    }
    if let Some(l) = r.requires_all {
        return Ok(Requirement::All(list(format!("{field}.requires_all"), l)?));
    }
    if r.allow_missing.is_some() {
        return Ok(Requirement::AllowMissing);
    }
    Ok(Requirement::AllowMissingOrFailed)
}

/// The authorization members of a requirement, taken out of `r`; `None` when there are none.
#[inline(never)]
fn compile_authz(field: &str, r: &mut RawRequirement) -> Result<Option<Authz>, ConfigError> {
    let names = |f: &str, list: &[String]| -> Result<(), ConfigError> {
        if list.iter().any(String::is_empty) {
            return Err(ConfigError::new(format!("{field}.{f}"), "entries must not be empty"));
        }
        Ok(())
    };
    names("roles", &r.roles)?;
    names("permissions", &r.permissions)?;
    names("any_roles", &r.any_roles)?;
    names("any_permissions", &r.any_permissions)?;
    let tenant = match r.tenant.take() {
        None => None,
        Some(t) => {
            let tf = format!("{field}.tenant");
            let set = [t.header.is_some(), t.path_segment.is_some(), t.claim.is_some(), t.value.is_some()];
            if set.iter().filter(|s| **s).count() != 1 {
                return Err(ConfigError::new(tf, "set exactly one of header, path_segment, claim, value"));
            }
            Some(match (t.header, t.path_segment, t.claim, t.value) {
                (Some(h), ..) => TenantSource::Header(header_name(&format!("{tf}.header"), &h)?),
                (_, Some(n), ..) => TenantSource::PathSegment(to_usize(n)),
                (_, _, Some(c), _) if !c.is_empty() => TenantSource::Claim(c),
                (_, _, _, Some(v)) if !v.is_empty() => TenantSource::Fixed(v),
                _ => return Err(ConfigError::new(tf, "must not be empty")),
            })
        }
    };
    let mut claims = Vec::new();
    for (i, c) in std::mem::take(&mut r.claims).into_iter().enumerate() {
        let cf = format!("{field}.claims[{i}]");
        check_claim_path(&format!("{cf}.name"), &c.name)?;
        let tests = [
            c.exact.map(ClaimTest::Exact),
            c.prefix.map(ClaimTest::Prefix),
            c.present.filter(|p| *p).map(|_| ClaimTest::Present),
            c.contains.map(ClaimTest::Contains),
        ];
        let mut set = tests.into_iter().flatten();
        let test = match (set.next(), set.next()) {
            (Some(t), None) => t,
            _ => return Err(ConfigError::new(cf, "set exactly one of exact, prefix, present: true, contains")),
        };
        claims.push(ClaimMatcher { name: c.name, test });
    }
    let authz = Authz {
        roles: std::mem::take(&mut r.roles),
        permissions: std::mem::take(&mut r.permissions),
        any_roles: std::mem::take(&mut r.any_roles),
        any_permissions: std::mem::take(&mut r.any_permissions),
        tenant,
        claims,
    };
    Ok((authz != Authz::default()).then_some(authz))
}

/// The largest `google.protobuf.Duration`: 10,000 years.
pub const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

/// Proto-JSON `google.protobuf.Duration`: seconds with up to nine fractional digits and an
/// `s` suffix ("300s", "1.5s").
pub fn parse_duration(field: &str, text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::new(field, format!("{text:?} is not a duration like \"300s\" or \"1.5s\""));
    let number = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<9}");
        padded.parse().map_err(|_| bad())?
    };
    if secs > MAX_DURATION_SECONDS {
        return Err(bad());
    }
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ClaimTest, TenantSource};
    use serde_json::{json, Value};

    const RSA_N: &str = "tLPtDisqC0on7MmXqQvf44m9Ied-UyPHiQNmkb5zSiKaW7RiloChvLnXHib5XUzNVMUCBmIIKGPgD4WImr6D5QtMwKiVQTwYVTDaMUzYkK3yvCmR_BHP7My5t_F2miYZjRbRfuROc147iMTQh84XsNCmBfcipMKH_x4jLF7AoxDNbbnw1N-QKKdORnYUzvD36Ivxl8iMiIjBoI1vWnsxU32otVXS6b3OWuT0tuuNMaUa6Q37XIuGizJt8P4r8jzbUyutmVD5i7BDgXFUj4HpZH9LdIjRRj-Av6oFg_Y6n60pelz3OjKjznoUaCtLaHkzl99Qg0Emwn1X-EjnDHay8w";

    fn jwks() -> String {
        json!({"keys": [{"kty": "RSA", "kid": "k1", "n": RSA_N, "e": "AQAB"}]}).to_string()
    }
    fn base() -> Value {
        json!({
            "providers": {"p": {"issuer": "https://idp", "local_jwks": {"inline_string": jwks()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
        })
    }
    fn parse(v: &Value) -> Result<Config, ConfigError> {
        Config::parse(v.to_string().as_bytes())
    }
    /// Applies `edit` to the base config and expects an error whose text mentions `needle`.
    fn rejects(edit: impl FnOnce(&mut Value), needle: &str) {
        let mut v = base();
        edit(&mut v);
        let e = parse(&v).expect_err("config should be refused");
        assert!(e.to_string().contains(needle), "error {e} should mention {needle:?}");
    }

    #[test]
    fn defaults_match_jwt_authn() {
        let c = parse(&base()).unwrap();
        let p = &c.providers[0];
        assert_eq!(p.clock_skew_seconds, 60);
        assert_eq!(p.descope_project, None);
        assert!(!p.forward && !p.require_expiration && p.max_lifetime.is_none());
        // Control planes write unset integers out as 0; jwt_authn reads that as the default.
        let mut v = base();
        v["providers"]["p"]["clock_skew_seconds"] = json!(0);
        assert_eq!(parse(&v).unwrap().providers[0].clock_skew_seconds, 60);
        assert_eq!(
            p.locations,
            vec![
                Location::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
                Location::Param("access_token".into())
            ]
        );
        assert_eq!(c.max_token_size, DEFAULT_MAX_TOKEN_SIZE);
    }

    #[test]
    fn full_provider_parses() {
        let mut v = base();
        v["providers"]["p"] = json!({
            "issuer": "https://idp", "audiences": ["a", "b"], "subjects": {"prefix": "user-"},
            "require_expiration": true, "max_lifetime": "86400s", "clock_skew_seconds": 5,
            "remote_jwks": {"http_uri": {"uri": "https://api.descope.com/v2/keys/P123", "cluster": "descope", "timeout": "1.5s"},
                            "cache_duration": "300s", "async_fetch": {"fast_listener": true},
                            "retry_policy": {"num_retries": 3}},
            "forward": true,
            "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}, {"name": "X-Token"}],
            "from_cookies": ["DS"], "from_params": ["jwt"],
            "forward_payload_header": "X-Jwt-Payload", "pad_forward_payload_header": true,
            "claim_to_headers": [{"header_name": "x-tenant-roles", "claim_name": "tenants.T1.roles"}],
            "clear_route_cache": true, "jwt_cache_config": {"jwt_cache_size": 100}
        });
        let c = parse(&v).unwrap();
        let p = &c.providers[0];
        let JwksSource::Remote(r) = &p.jwks else { panic!("remote expected") };
        assert_eq!(
            (r.authority.as_str(), r.path.as_str(), r.cluster.as_str()),
            ("api.descope.com", "/v2/keys/P123", "descope")
        );
        assert_eq!(r.timeout, Duration::from_millis(1500));
        assert_eq!(r.cache_duration, Duration::from_secs(300));
        assert_eq!(p.max_lifetime, Some(Duration::from_secs(86400)));
        assert_eq!(p.locations.len(), 4);
        assert_eq!(p.locations[1], Location::Header { name: "x-token".into(), prefix: None });
        assert_eq!(c.identity_headers, vec!["x-jwt-payload".to_string(), "x-tenant-roles".to_string()]);
        assert!(p.subjects.as_ref().unwrap().matches("user-1"));
        assert_eq!((p.cache_size, p.cache_max_token_size), (100, crate::token_cache::DEFAULT_MAX_TOKEN_SIZE));
    }

    #[test]
    fn unknown_and_mistyped_fields_are_errors() {
        rejects(|v| v["unknown"] = json!(1), "unknown field `unknown`");
        rejects(|v| v["providers"]["p"]["isuser"] = json!("x"), "unknown field `isuser`");
        rejects(|v| v["providers"]["p"]["audiences"] = json!("a"), "invalid type");
        rejects(|v| v["providers"]["p"]["clock_skew_seconds"] = json!(-1), "invalid value");
        rejects(|v| v["rules"][0]["match"]["prefx"] = json!("/"), "unknown field `prefx`");
        rejects(|v| v["rules"][0]["requires"]["provider_nme"] = json!("p"), "unknown field");
        assert!(Config::parse(b"not json").is_err());
        assert!(Config::parse(b"").is_err());
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        let error = |edit: fn(&mut Value)| {
            let mut v = base();
            edit(&mut v);
            parse(&v).expect_err("config should be refused").to_string()
        };
        assert_eq!(
            error(|v| v["providers"]["p"]["audiences"] = json!("a")),
            "invalid configuration at `providers.p.audiences`: invalid type: expected a list of strings, found a string"
        );
        assert_eq!(
            error(|v| v["providers"]["p"]["from_headers"] = json!([{"name": 7}])),
            "invalid configuration at `providers.p.from_headers[0].name`: invalid type: expected a string, found a number"
        );
        assert_eq!(
            error(|v| v["rules"][0]["match"]["prefx"] = json!("/")),
            "invalid configuration at `rules[0].match`: unknown field `prefx`, expected one of `prefix`, `path`, \
             `path_separated_prefix`, `case_sensitive`, `methods`",
            "members recognised only to be refused are not offered"
        );
        assert_eq!(
            error(|v| v["rules"][0]["requires"] = json!({"allow_missing": {"x": 1}})),
            "invalid configuration at `rules[0].requires.allow_missing`: unknown field `x`, expected no fields"
        );
        assert_eq!(
            error(|v| {
                v["providers"]["p"].as_object_mut().unwrap().remove("local_jwks");
                v["providers"]["p"]["remote_jwks"] = json!({"http_uri": {"uri": "https://x/k"}});
            }),
            "invalid configuration at `providers.p.remote_jwks.http_uri`: missing field `cluster`"
        );
        assert_eq!(
            error(|v| v["providers"]["p"]["clock_skew_seconds"] = json!(4294967296u64)),
            "invalid configuration at `providers.p.clock_skew_seconds`: invalid value: 4294967296, expected an integer from 0 to 4294967295"
        );
        assert_eq!(
            error(|v| v["providers"]["p"]["forward"] = json!("yes")),
            "invalid configuration at `providers.p.forward`: invalid type: expected true or false, found a string"
        );
        assert_eq!(
            error(|v| v["rules"] = json!({})),
            "invalid configuration at `rules`: invalid type: expected a list of objects, found an object"
        );
        assert_eq!(
            error(|v| v["providers"]["p"] = json!([])),
            "invalid configuration at `providers.p`: invalid type: expected an object, found a list"
        );
        assert!(Config::parse(b"[]")
            .unwrap_err()
            .to_string()
            .starts_with("invalid configuration: the configuration must be a JSON object"));
    }

    #[test]
    fn duplicate_members_are_refused_and_null_is_unset() {
        // Last-one-wins would let a second, laxer provider silently replace the first.
        let strict = json!({"issuer": "https://idp", "local_jwks": {"inline_string": jwks()}});
        let lax = json!({"local_jwks": {"inline_string": jwks()}});
        let doc = format!(r#"{{"providers": {{"p": {strict}, "p": {lax}}}}}"#);
        let e = Config::parse(doc.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("duplicate member \"p\""), "{e}");
        let doc = format!(r#"{{"providers": {{"p": {strict}}}, "rules": [], "rules": []}}"#);
        assert!(Config::parse(doc.as_bytes()).unwrap_err().to_string().contains("duplicate member \"rules\""));

        let mut v = base();
        v["providers"]["p"]["audiences"] = Value::Null;
        v["providers"]["p"]["remote_jwks"] = Value::Null;
        v["rules"][0]["requires"]["allow_missing"] = Value::Null;
        let c = parse(&v).unwrap();
        assert!(c.providers[0].audiences.is_empty());
        assert!(matches!(c.providers[0].jwks, JwksSource::Local(_)));
    }

    #[test]
    fn jwks_source_errors() {
        rejects(|v| v["providers"]["p"]["local_jwks"] = json!({"filename": "/etc/jwks.json"}), "local_jwks.filename");
        rejects(|v| v["providers"]["p"]["local_jwks"] = json!({"inline_string": "{nope"}), "unusable JWKS");
        rejects(|v| v["providers"]["p"]["local_jwks"] = json!({"inline_string": "{\"keys\":[]}"}), "unusable JWKS");
        rejects(
            |v| {
                v["providers"]["p"].as_object_mut().unwrap().remove("local_jwks");
            },
            "one of `local_jwks`, `remote_jwks`",
        );
        rejects(
            |v| v["providers"]["p"]["remote_jwks"] = json!({"http_uri": {"uri": "https://x/k", "cluster": "c"}}),
            "exactly one",
        );
        let remote = |uri: &str, extra: Value| {
            let mut r = json!({"http_uri": {"uri": uri, "cluster": "c", "timeout": "1s"}});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            move |v: &mut Value| {
                v["providers"]["p"].as_object_mut().unwrap().remove("local_jwks");
                v["providers"]["p"]["remote_jwks"] = r;
            }
        };
        rejects(remote("ftp://x/k", json!({})), "http_uri.uri");
        rejects(remote("https:///k", json!({})), "no valid host");
        rejects(remote("https://x/k", json!({"cache_duration": "10m"})), "cache_duration");
        rejects(remote("https://x/k", json!({"cache_duration": "0.5s"})), "at least 1s");
        // jwt_authn's fetch options are accepted, and checked like everything else.
        let pasted = json!({"async_fetch": {"fast_listener": true, "failed_refetch_duration": "1s"},
            "retry_policy": {"retry_back_off": {"base_interval": "0.5s", "max_interval": "3s"}, "num_retries": 3}});
        let mut v = base();
        remote("https://x/k", pasted)(&mut v);
        assert!(parse(&v).is_ok());
        rejects(remote("https://x/k", json!({"retry_policy": 42})), "retry_policy`: invalid type");
        rejects(remote("https://x/k", json!({"retry_policy": {"num_retires": 3}})), "unknown field `num_retires`");
        rejects(remote("https://x/k", json!({"async_fetch": {"fast_listener": "yes"}})), "fast_listener");
        // Durations as Envoy's YAML (and its documentation) writes them, as objects.
        let remote_of = |c: &Config| match &c.providers[0].jwks {
            JwksSource::Remote(r) => (r.timeout, r.cache_duration),
            other => panic!("{other:?}"),
        };
        for (timeout, cache, want) in [
            (
                json!({"nanos": 500_000_000}),
                json!({"seconds": 300}),
                (Duration::from_millis(500), Duration::from_secs(300)),
            ),
            (
                json!({"seconds": "2", "nanos": 5_000_000}),
                json!({"seconds": 300.0}),
                (Duration::from_millis(2005), Duration::from_secs(300)),
            ),
        ] {
            let mut v = base();
            remote(
                "https://x/k",
                json!({"cache_duration": cache, "http_uri": {"uri": "https://x/k", "cluster": "c", "timeout": timeout}}),
            )(&mut v);
            assert_eq!(remote_of(&parse(&v).unwrap()), want);
        }
        for (bad, needle) in [
            (json!({"seconds": -1}), "cache_duration.seconds`: invalid value: -1"),
            (json!({"seconds": 1.5}), "cache_duration.seconds`: invalid value: 1.5"),
            (json!({"seconds": "1e3"}), "cache_duration.seconds`: invalid value: \"1e3\""),
            (json!({"nanos": 1_000_000_000}), "cache_duration.nanos`: invalid value"),
            (json!({"secs": 5}), "unknown field `secs`"),
            (json!(300), "cache_duration`: invalid type: expected a duration like \"300s\""),
        ] {
            rejects(remote("https://x/k", json!({"cache_duration": bad})), needle);
        }
        // Envoy counts whole milliseconds and reads 0 as no timeout at all.
        for t in ["0s", "0.0005s", "60.001s", "4294967.296s"] {
            let http_uri = json!({"http_uri": {"uri": "https://x/k", "cluster": "c", "timeout": t}});
            rejects(remote("https://x/k", http_uri), "between 0.001s and 60s");
        }
    }

    #[test]
    fn oidc_discovery() {
        let mut v = base();
        let p = v["providers"]["p"].as_object_mut().unwrap();
        p.remove("local_jwks");
        p.insert(
            "oidc_discovery".into(),
            json!({"http_uri": {"uri": "https://idp/.well-known/openid-configuration", "cluster": "idp"}}),
        );
        let c = parse(&v).unwrap();
        let JwksSource::Remote(r) = &c.providers[0].jwks else { panic!("remote expected") };
        assert_eq!(r.discovery.as_ref().unwrap().issuer, "https://idp");
        assert_eq!(r.path, "/.well-known/openid-configuration");
        rejects(
            |v| {
                let p = v["providers"]["p"].as_object_mut().unwrap();
                p.remove("local_jwks");
                p.remove("issuer");
                p.insert("oidc_discovery".into(), json!({"http_uri": {"uri": "https://idp/x", "cluster": "idp"}}));
            },
            "needs the provider's `issuer`",
        );
        rejects(
            |v| {
                v["providers"]["p"]["oidc_discovery"] = json!({"http_uri": {"uri": "https://idp/x", "cluster": "idp"}});
            },
            "exactly one",
        );
    }

    #[test]
    fn header_and_location_errors() {
        rejects(|v| v["providers"]["p"]["from_headers"] = json!([{"name": "bad header"}]), "from_headers[0].name");
        rejects(|v| v["providers"]["p"]["from_cookies"] = json!(["a=b"]), "from_cookies[0]");
        rejects(|v| v["providers"]["p"]["from_params"] = json!(["a&b"]), "from_params[0]");
        rejects(|v| v["providers"]["p"]["forward_payload_header"] = json!(":path"), "forward_payload_header");
        rejects(|v| v["providers"]["p"]["forward_payload_header"] = json!("Host"), "cannot carry identity");
        rejects(
            |v| {
                v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "authorization", "claim_name": "sub"}])
            },
            "cannot carry identity",
        );
        rejects(
            |v| v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-a", "claim_name": "a..b"}]),
            "claim_name",
        );
        rejects(
            |v| {
                v["providers"]["p"]["from_headers"] = json!([{"name": "x-user"}]);
                v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-user", "claim_name": "sub"}]);
            },
            "both a token source",
        );
        rejects(|v| v["providers"]["p"]["subjects"] = json!({"safe_regex": {"regex": ".*"}}), "safe_regex");
        rejects(|v| v["providers"]["p"]["subjects"] = json!({"prefix": "a", "suffix": "b"}), "only one");
        rejects(|v| v["providers"]["p"]["payload_in_metadata"] = json!("x"), "dynamic metadata");
        rejects(|v| v["providers"]["p"]["max_lifetime"] = json!("1d"), "max_lifetime");
        rejects(|v| v["providers"]["p"]["issuer"] = json!(""), "issuer");
    }

    #[test]
    fn rule_errors() {
        rejects(|v| v["rules"][0]["requires"] = json!({"provider_name": "nope"}), "not in `providers`");
        rejects(|v| v["rules"][0]["requires"] = json!({"provider_name": "p", "allow_missing": {}}), "exactly one");
        rejects(|v| v["rules"][0]["requires"] = json!({}), "exactly one");
        rejects(|v| v["rules"][0]["requires"] = json!({"requires_any": {"requirements": []}}), "must not be empty");
        rejects(|v| v["rules"][0]["match"] = json!({}), "one of prefix");
        rejects(|v| v["rules"][0]["match"] = json!({"prefix": "/", "path": "/a"}), "only one");
        rejects(|v| v["rules"][0]["match"] = json!({"safe_regex": {"regex": "/.*"}}), "safe_regex");
        for member in ["connect_matcher", "path_match_policy", "runtime_fraction", "tls_context"] {
            rejects(|v| v["rules"][0]["match"][member] = json!({}), &format!("match.{member}`: not supported"));
        }
        rejects(|v| v["rules"][0]["match"] = json!({"path_separated_prefix": "/api/"}), "path_separated_prefix");
        // Authorization over allow_missing_or_failed could only refuse, and would call a
        // failed token missing.
        for requires in [
            json!({"allow_missing_or_failed": {}, "roles": ["admin"]}),
            json!({"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing_or_failed": {}}]}, "permissions": ["x"]}),
        ] {
            rejects(
                |v| v["rules"][0]["requires"] = requires,
                "requires`: roles, permissions, tenant and claims need a verified token",
            );
        }
        // Over allow_missing a failed token is reported as it failed: that one has a meaning.
        for requires in [
            json!({"allow_missing": {}, "claims": [{"name": "email", "present": true}]}),
            json!({"requires_any": {"requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}, "permissions": ["x"]}),
            json!({"requires_any": {"requirements": [{"provider_name": "p", "roles": ["admin"]}, {"allow_missing_or_failed": {}}]}}),
        ] {
            let mut v = base();
            v["rules"][0]["requires"] = requires.clone();
            assert!(parse(&v).is_ok(), "{requires}");
        }
        let mut v = base();
        v["rules"][0]["requires"] = json!({"requires_any": {"requirements": [
            {"provider_name": "p", "roles": ["admin"]}, {"allow_missing": {}}]}});
        assert!(parse(&v).is_ok(), "the role on the provider is what was meant");
        rejects(
            |v| {
                v["providers"]["p"]["claim_to_headers"] = json!([
                    {"header_name": "x-tenant", "claim_name": "dct"}, {"header_name": "X-Tenant", "claim_name": "tenant"}])
            },
            "claim_to_headers[1].header_name`: header `x-tenant` is already written by this provider",
        );
        rejects(
            |v| {
                v["providers"]["p"]["forward_payload_header"] = json!("x-payload");
                v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-payload", "claim_name": "sub"}]);
            },
            "already written",
        );
        // Patterns no request path can match would protect nothing without a word.
        for (m, needle) in [
            (json!({"prefix": "admin"}), "match.prefix`: must start with `/`"),
            (json!({"path": "admin"}), "match.path`: must start with `/`"),
            (json!({"prefix": "/a?x"}), "match.prefix`: must not contain `?` or `#`"),
            (json!({"path": "/a#x"}), "match.path`: must not contain `?` or `#`"),
            (json!({"path_separated_prefix": ""}), "match.path_separated_prefix`: must not be empty"),
        ] {
            rejects(|v| v["rules"][0]["match"] = m, needle);
        }
        for ok in [
            json!({"prefix": ""}),
            json!({"prefix": "/"}),
            json!({"path": "/a/b"}),
            json!({"path_separated_prefix": "/a"}),
        ] {
            let mut v = base();
            v["rules"][0]["match"] = ok.clone();
            assert!(parse(&v).is_ok(), "{ok} should load");
        }
        rejects(|v| v["rules"][0]["requirement_name"] = json!("r"), "requirement_name");
        rejects(|v| v["requirement_map"] = json!({}), "requirement_map");
        rejects(|v| v["max_token_size"] = json!(10), "max_token_size");
        let mut deep = json!({"provider_name": "p"});
        for _ in 0..10 {
            deep = json!({"requires_any": {"requirements": [deep]}});
        }
        rejects(|v| v["rules"][0]["requires"] = deep, "nest deeper");
    }

    /// Istio passes `pluginConfig` through a protobuf `Struct`, whose numbers are doubles.
    #[test]
    fn integers_may_be_written_as_whole_doubles() {
        let mut v = base();
        v["providers"]["p"]["clock_skew_seconds"] = json!(5.0);
        v["max_token_size"] = json!(4096e0);
        let c = parse(&v).unwrap();
        assert_eq!((c.providers[0].clock_skew_seconds, c.max_token_size), (5, 4096));
        rejects(|v| v["providers"]["p"]["clock_skew_seconds"] = json!(5.5), "invalid value: 5.5, expected an integer");
        rejects(|v| v["providers"]["p"]["clock_skew_seconds"] = json!(-1.0), "invalid value: -1.0");
        rejects(|v| v["providers"]["p"]["clock_skew_seconds"] = json!("5"), "invalid type: expected an integer");
    }

    #[test]
    fn a_configuration_that_is_not_a_json_object_says_how_to_pass_one() {
        // What Envoy hands over for `configuration: {"@type": ...Struct, value: {providers: ...}}`.
        let e = Config::parse(b"\n\x0b\n\tproviders\x12").unwrap_err().to_string();
        assert!(e.contains("google.protobuf.StringValue"), "{e}");
        assert!(Config::parse(b" []").unwrap_err().to_string().contains("StringValue"));
        assert!(Config::parse(b"").is_err());
    }

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration("f", s);
        assert_eq!(d("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(d("0.25s").unwrap(), Duration::from_millis(250));
        assert_eq!(d("1.000000001s").unwrap(), Duration::new(1, 1));
        for bad in ["", "s", "5", "-1s", "1.s0", "1.0000000001s", "1e3s", " 1s", "99999999999999999999s"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn descope_preset_expands_and_explicit_fields_win() {
        let v = json!({"providers": {"d": {"descope": {"project_id": "P2abc"}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "d"}}]});
        let c = parse(&v).unwrap();
        let p = &c.providers[0];
        assert_eq!(p.issuers, vec!["P2abc", "https://api.descope.com/P2abc", "https://api.descope.com/v1/apps/P2abc"]);
        let JwksSource::Remote(r) = &p.jwks else { panic!("remote expected") };
        assert_eq!((r.uri.as_str(), r.cluster.as_str()), ("https://api.descope.com/v2/keys/P2abc", "descope"));
        assert_eq!(
            p.locations,
            vec![
                Location::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
                Location::Cookie("DS".into())
            ]
        );
        let headers: Vec<_> = p.claim_to_headers.iter().map(|c| (c.header.as_str(), c.claim.as_str())).collect();
        assert_eq!(
            headers,
            vec![
                ("x-descope-user-id", "sub"),
                ("x-descope-tenants", "tenants.@keys"),
                ("x-descope-current-tenant", "dct"),
                ("x-descope-roles", "roles"),
                ("x-descope-permissions", "permissions"),
                ("x-descope-tenant-roles", "tenants.{dct}.roles"),
                ("x-descope-tenant-permissions", "tenants.{dct}.permissions"),
            ]
        );

        let v = json!({"providers": {"d": {
            "descope": {"project_id": "P2abc", "base_url": "https://eu.descope.example/", "cluster": "descope_eu", "timeout": "1s"},
            "issuer": "custom-issuer",
            "from_headers": [{"name": "x-session"}],
            "claim_to_headers": [{"header_name": "x-uid", "claim_name": "sub"}],
            "local_jwks": {"inline_string": jwks()}
        }}});
        let c = parse(&v).unwrap();
        let p = &c.providers[0];
        assert_eq!(p.issuers, vec!["custom-issuer"]);
        assert!(matches!(p.jwks, JwksSource::Local(_)));
        assert_eq!(p.locations, vec![Location::Header { name: "x-session".into(), prefix: None }]);
        assert_eq!(c.identity_headers, vec!["x-uid"]);
        let v = json!({"providers": {"d": {"descope": {"project_id": "P2abc", "base_url": "https://eu.descope.example/"}}}});
        let JwksSource::Remote(r) = &parse(&v).unwrap().providers[0].jwks else { panic!() };
        assert_eq!(r.uri, "https://eu.descope.example/v2/keys/P2abc");
        // Regional projects: their region's API host, for keys and issuers.
        let v = json!({"providers": {"d": {"descope": {"project_id": "Peuc12vbXo1wQSQdsA8OgRW2dJUzGTwm"}}}});
        let p = &parse(&v).unwrap().providers[0];
        let JwksSource::Remote(r) = &p.jwks else { panic!() };
        assert_eq!(r.uri, "https://api.euc1.descope.com/v2/keys/Peuc12vbXo1wQSQdsA8OgRW2dJUzGTwm");
        assert_eq!(p.issuers[1], "https://api.euc1.descope.com/Peuc12vbXo1wQSQdsA8OgRW2dJUzGTwm");
        assert_eq!(descope_base_url("P2abcdefghijklmnopqrstuvwxyz012"), DESCOPE_BASE_URL, "31 characters");
        // The preset's clock skew is the SDKs' 5 s; 0 means unset, as in jwt_authn.
        let skew = |extra: Value| {
            let mut p = json!({"descope": {"project_id": "P2abc"}});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            let c = parse(&json!({"providers": {"d": p}})).unwrap();
            (c.providers[0].clock_skew_seconds, c.providers[0].descope_project.clone())
        };
        assert_eq!(skew(json!({})), (5, Some("P2abc".to_owned())));
        assert_eq!(skew(json!({"clock_skew_seconds": 0})), (5, Some("P2abc".to_owned())));
        assert_eq!(skew(json!({"clock_skew_seconds": 30})).0, 30);
        rejects(|v| v["providers"]["p"]["descope"] = json!({"project_id": "../x"}), "descope.project_id");
        rejects(|v| v["providers"]["p"]["descope"] = json!({"project_id": "P1", "extra": 1}), "unknown field `extra`");
    }

    #[test]
    fn authorization_requirements_and_methods() {
        let mut v = base();
        v["rules"] = json!([
            {"match": {"prefix": "/admin", "methods": ["post", "DELETE"]},
             "requires": {"provider_name": "p", "roles": ["admin"], "any_permissions": ["a", "b"],
                          "tenant": {"header": "X-Tenant"}, "claims": [{"name": "email", "prefix": "a@"}]}}
        ]);
        let c = parse(&v).unwrap();
        let rule = &c.rules[0];
        assert_eq!(rule.methods, vec!["POST", "DELETE"]);
        let Some(Requirement::Authorized(inner, authz)) = &rule.requirement else { panic!("authorized expected") };
        assert!(matches!(**inner, Requirement::Provider { .. }));
        assert_eq!(authz.roles, vec!["admin"]);
        assert_eq!(authz.tenant, Some(TenantSource::Header("x-tenant".into())));
        assert_eq!(authz.claims[0].test, ClaimTest::Prefix("a@".into()));

        let with = |req: Value| {
            let mut v = base();
            v["rules"] = json!([{"match": {"prefix": "/"}, "requires": req}]);
            v
        };
        assert!(parse(&with(json!({"provider_name": "p"}))).unwrap().rules[0]
            .requirement
            .as_ref()
            .is_some_and(|r| matches!(r, Requirement::Provider { .. })));
        for (req, needle) in [
            (json!({"roles": ["admin"]}), "exactly one"),
            (json!({"provider_name": "p", "roles": [""]}), "roles"),
            (json!({"provider_name": "p", "tenant": {}}), "exactly one of header"),
            (json!({"provider_name": "p", "tenant": {"header": "x", "claim": "dct"}}), "exactly one of header"),
            (json!({"provider_name": "p", "tenant": {"value": ""}}), "must not be empty"),
            (json!({"provider_name": "p", "claims": [{"name": "a"}]}), "exactly one of exact"),
            (json!({"provider_name": "p", "claims": [{"name": "a..b", "present": true}]}), "claim path"),
        ] {
            let e = parse(&with(req.clone())).expect_err(&req.to_string());
            assert!(e.to_string().contains(needle), "{e} should mention {needle}");
        }
        rejects(|v| v["rules"][0]["match"]["methods"] = json!(["G E T"]), "methods[0]");
        rejects(
            |v| v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-a", "claim_name": "@keys"}]),
            "claim path",
        );
        rejects(
            |v| v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-a", "claim_name": "a.@keys.b"}]),
            "claim path",
        );
        rejects(
            |v| v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-a", "claim_name": "a.{}"}]),
            "claim path",
        );
    }

    #[test]
    fn a_tenant_header_is_not_one_the_filter_rewrites() {
        let with_tenant = |header: &str| {
            let mut v = base();
            v["providers"]["p"]["claim_to_headers"] = json!([{"header_name": "x-tenant-id", "claim_name": "dct"}]);
            v["rules"] = json!([
                {"match": {"prefix": "/public"}},
                {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "p"},
                    {"provider_name": "p", "roles": ["admin"], "tenant": {"header": header}}
                ]}}}
            ]);
            parse(&v)
        };
        let e = with_tenant("X-Tenant-Id").unwrap_err().to_string();
        assert!(e.contains("`rules[1].requires`: tenant header `x-tenant-id` is also an identity header"), "{e}");
        assert!(e.contains(r#"{"claim": "dct"}"#), "{e}");
        let e = with_tenant("authorization").unwrap_err().to_string();
        assert!(e.contains("`authorization` is also a token source of provider p"), "{e}");
        assert!(with_tenant("x-org").is_ok());
    }
}
