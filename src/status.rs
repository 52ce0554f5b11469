//! Every reason a request can be refused, as one enum.
//!
//! Each variant has one HTTP status, one stable machine-readable `code` (also the stat name
//! suffix) and one human message. Nothing here echoes token, claim or key material.

/// Declares [`Rejection`] from one table, so a reason cannot exist without its code, its
/// message and its place in [`Rejection::ALL`] (from which every `denied.<code>` stat is
/// made).
macro_rules! rejections {
    ($($(#[doc = $doc:literal])* $variant:ident => $code:literal, $message:literal;)*) => {
        /// Why a request was refused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rejection {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Rejection {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Rejection] = &[$(Rejection::$variant),*];

            /// Stable code for the JSON body, logs and stats.
            pub fn code(self) -> &'static str {
                match self {
                    $(Rejection::$variant => $code,)*
                }
            }

            pub fn message(self) -> &'static str {
                match self {
                    $(Rejection::$variant => $message,)*
                }
            }
        }
    };
}

rejections! {
    /// No token in any configured location.
    TokenMissing => "jwt_missing", "Jwt is missing";
    /// The token exceeds the configured size limit; refused before parsing.
    TokenTooLarge => "jwt_too_large", "Jwt is too large";
    /// Not a compact JWS: segments, base64url or JSON are wrong.
    TokenMalformed => "jwt_malformed", "Jwt is not in the form of Header.Payload.Signature";
    /// `alg` is `none`, an HMAC, or anything else outside the allow-list.
    AlgorithmUnsupported => "jwt_alg_unsupported", "Jwt algorithm is not allowed";
    /// The header lists a `crit` extension we do not implement.
    CritUnsupported => "jwt_crit_unsupported", "Jwt header lists an unsupported critical extension";
    /// A header member is unusable (`kid` type or size, nested `cty: JWT`).
    HeaderInvalid => "jwt_header_invalid", "Jwt header is invalid";
    /// No key of the provider fits the token's `kid` and `alg`.
    KeyNotFound => "jwt_key_not_found", "Jwt has no matching verification key";
    /// The signature does not verify.
    SignatureInvalid => "jwt_signature_invalid", "Jwt verification fails";
    /// `exp` has passed (beyond the clock skew).
    Expired => "jwt_expired", "Jwt is expired";
    /// `nbf` is still ahead (beyond the clock skew).
    NotYetValid => "jwt_not_yet_valid", "Jwt not yet valid";
    /// The provider requires `exp` and the token has none.
    ExpirationRequired => "jwt_exp_required", "Jwt has no expiration";
    /// `exp` lies further ahead than the provider's `max_lifetime`.
    LifetimeTooLong => "jwt_lifetime_too_long", "Jwt lifetime exceeds the allowed maximum";
    /// A registered claim has the wrong type or an impossible value (`exp: "1700000000"`).
    ClaimInvalid => "jwt_claim_invalid", "Jwt has an invalid registered claim";
    /// `iss` is missing or not the provider's issuer.
    IssuerNotAllowed => "jwt_issuer_not_allowed", "Jwt issuer is not configured";
    /// `sub` does not match the provider's `subjects`.
    SubjectNotAllowed => "jwt_subject_not_allowed", "Jwt subject is not allowed";
    /// No `aud` entry is among the provider's audiences.
    AudienceNotAllowed => "jwt_audience_not_allowed", "Audiences in Jwt are not allowed";
    /// Not a session token: a Descope refresh token (`drn` other than `DS`) under the
    /// `descope` preset.
    TokenTypeNotAllowed => "jwt_token_type_not_allowed", "Jwt is not a session token";
    /// A sender-constrained token (`cnf`, RFC 7800: DPoP or mTLS-bound), whose proof of
    /// possession this filter does not check; accepting it as a bearer token would drop
    /// the binding.
    TokenBound => "jwt_sender_constrained", "Jwt is sender-constrained; its proof of possession cannot be checked here";
    /// The provider's keys could not be obtained in time: the token may be fine.
    JwksUnavailable => "jwks_unavailable", "Verification keys are temporarily unavailable";
    /// Authorization: a required role is missing (globally or in the tenant).
    RolesMissing => "forbidden_roles", "Required roles are missing";
    /// Authorization: a required permission is missing.
    PermissionsMissing => "forbidden_permissions", "Required permissions are missing";
    /// Authorization: the request's tenant is absent or not one of the token's tenants.
    TenantNotAllowed => "forbidden_tenant", "The token does not grant access to this tenant";
    /// Authorization: a claim matcher did not match.
    ClaimMismatch => "forbidden_claim", "A required claim does not match";
    /// The proxy refused a header read or write the decision depends on: the request is
    /// answered here rather than passed on half-checked or half-rewritten.
    HostRefused => "filter_error", "The filter could not read or rewrite the request";
}

impl Rejection {
    /// HTTP status of the local reply: 401 for anything wrong with the credential, 403 when
    /// it is valid but not for this audience (as jwt_authn), 503 for our own state, 500 when
    /// the proxy would not let the filter do its work.
    pub fn http_status(self) -> u32 {
        match self {
            Rejection::AudienceNotAllowed
            | Rejection::RolesMissing
            | Rejection::PermissionsMissing
            | Rejection::TenantNotAllowed
            | Rejection::ClaimMismatch => 403,
            Rejection::JwksUnavailable => 503,
            Rejection::HostRefused => 500,
            _ => 401,
        }
    }

    /// The RFC 6750 `error` attribute of `WWW-Authenticate`; `None` when the request carried
    /// no credential (RFC 6750 §3.1) or the failure is ours (503 and 500 have no challenge).
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Rejection::TokenMissing | Rejection::JwksUnavailable | Rejection::HostRefused => None,
            Rejection::RolesMissing
            | Rejection::PermissionsMissing
            | Rejection::TenantNotAllowed
            | Rejection::ClaimMismatch => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// Whether a 401/403 challenge header belongs on the reply.
    pub fn challenges(self) -> bool {
        !matches!(self, Rejection::JwksUnavailable | Rejection::HostRefused)
    }

    /// When several requirements fail, the one reported: our own unavailability first (the
    /// client should retry, not re-authenticate), a missing token last.
    pub fn priority(self) -> u8 {
        match self {
            Rejection::JwksUnavailable | Rejection::HostRefused => 2,
            Rejection::TokenMissing => 0,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_stat_safe() {
        let codes: HashSet<_> = Rejection::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Rejection::ALL.len());
        for c in codes {
            assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c}");
        }
    }

    #[test]
    fn messages_need_no_json_escaping() {
        for r in Rejection::ALL {
            assert!(r.message().bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{r:?}");
            assert!(!r.message().contains(['"', '\\']), "{r:?}");
        }
    }

    #[test]
    fn statuses_follow_jwt_authn() {
        assert_eq!(Rejection::AudienceNotAllowed.http_status(), 403);
        assert_eq!(Rejection::JwksUnavailable.http_status(), 503);
        for r in Rejection::ALL {
            match r.bearer_error() {
                Some("insufficient_scope") => assert_eq!(r.http_status(), 403, "{r:?}"),
                _ if matches!(
                    r,
                    Rejection::AudienceNotAllowed | Rejection::JwksUnavailable | Rejection::HostRefused
                ) => {}
                _ => assert_eq!(r.http_status(), 401, "{r:?}"),
            }
        }
        assert_eq!(Rejection::RolesMissing.bearer_error(), Some("insufficient_scope"));
        assert_eq!(Rejection::TokenMissing.bearer_error(), None);
        assert_eq!(Rejection::Expired.bearer_error(), Some("invalid_token"));
        assert!(!Rejection::JwksUnavailable.challenges());
        assert_eq!(Rejection::HostRefused.http_status(), 500);
        assert!(!Rejection::HostRefused.challenges());
    }
}
