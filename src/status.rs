//! Every reason a request can be refused, as one enum.
//!
//! Each variant has one HTTP status, one stable machine-readable `code` (also the stat name
//! suffix) and one human message. Nothing here echoes token, claim or key material.

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// No token in any configured location.
    TokenMissing,
    /// The token exceeds the configured size limit; refused before parsing.
    TokenTooLarge,
    /// Not a compact JWS: segments, base64url or JSON are wrong.
    TokenMalformed,
    /// `alg` is `none`, an HMAC, or anything else outside the allow-list.
    AlgorithmUnsupported,
    /// The header lists a `crit` extension we do not implement.
    CritUnsupported,
    /// A header member is unusable (`kid` type or size, nested `cty: JWT`).
    HeaderInvalid,
    /// No key of the provider fits the token's `kid` and `alg`.
    KeyNotFound,
    /// The signature does not verify.
    SignatureInvalid,
    /// `exp` has passed (beyond the clock skew).
    Expired,
    /// `nbf` is still ahead (beyond the clock skew).
    NotYetValid,
    /// The provider requires `exp` and the token has none.
    ExpirationRequired,
    /// `exp` lies further ahead than the provider's `max_lifetime`.
    LifetimeTooLong,
    /// A registered claim has the wrong type or an impossible value (`exp: "1700000000"`).
    ClaimInvalid,
    /// `iss` is missing or not the provider's issuer.
    IssuerNotAllowed,
    /// `sub` does not match the provider's `subjects`.
    SubjectNotAllowed,
    /// No `aud` entry is among the provider's audiences.
    AudienceNotAllowed,
    /// Not a session token: a Descope refresh token (`drn` other than `DS`) under the
    /// `descope` preset.
    TokenTypeNotAllowed,
    /// A sender-constrained token (`cnf`, RFC 7800: DPoP or mTLS-bound), whose proof of
    /// possession this filter does not check; accepting it as a bearer token would drop
    /// the binding.
    TokenBound,
    /// The provider's keys could not be obtained in time: the token may be fine.
    JwksUnavailable,
    /// Authorization: a required role is missing (globally or in the tenant).
    RolesMissing,
    /// Authorization: a required permission is missing.
    PermissionsMissing,
    /// Authorization: the request's tenant is absent or not one of the token's tenants.
    TenantNotAllowed,
    /// Authorization: a claim matcher did not match.
    ClaimMismatch,
}

impl Rejection {
    pub const ALL: [Rejection; 23] = [
        Rejection::TokenMissing,
        Rejection::TokenTooLarge,
        Rejection::TokenMalformed,
        Rejection::AlgorithmUnsupported,
        Rejection::CritUnsupported,
        Rejection::HeaderInvalid,
        Rejection::KeyNotFound,
        Rejection::SignatureInvalid,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::ExpirationRequired,
        Rejection::LifetimeTooLong,
        Rejection::ClaimInvalid,
        Rejection::IssuerNotAllowed,
        Rejection::SubjectNotAllowed,
        Rejection::AudienceNotAllowed,
        Rejection::TokenTypeNotAllowed,
        Rejection::TokenBound,
        Rejection::JwksUnavailable,
        Rejection::RolesMissing,
        Rejection::PermissionsMissing,
        Rejection::TenantNotAllowed,
        Rejection::ClaimMismatch,
    ];

    /// HTTP status of the local reply: 401 for anything wrong with the credential, 403 when
    /// it is valid but not for this audience (as jwt_authn), 503 for our own state.
    pub fn http_status(self) -> u32 {
        match self {
            Rejection::AudienceNotAllowed
            | Rejection::RolesMissing
            | Rejection::PermissionsMissing
            | Rejection::TenantNotAllowed
            | Rejection::ClaimMismatch => 403,
            Rejection::JwksUnavailable => 503,
            _ => 401,
        }
    }

    /// Stable code for the JSON body, logs and stats.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::TokenMissing => "jwt_missing",
            Rejection::TokenTooLarge => "jwt_too_large",
            Rejection::TokenMalformed => "jwt_malformed",
            Rejection::AlgorithmUnsupported => "jwt_alg_unsupported",
            Rejection::CritUnsupported => "jwt_crit_unsupported",
            Rejection::HeaderInvalid => "jwt_header_invalid",
            Rejection::KeyNotFound => "jwt_key_not_found",
            Rejection::SignatureInvalid => "jwt_signature_invalid",
            Rejection::Expired => "jwt_expired",
            Rejection::NotYetValid => "jwt_not_yet_valid",
            Rejection::ExpirationRequired => "jwt_exp_required",
            Rejection::LifetimeTooLong => "jwt_lifetime_too_long",
            Rejection::ClaimInvalid => "jwt_claim_invalid",
            Rejection::IssuerNotAllowed => "jwt_issuer_not_allowed",
            Rejection::SubjectNotAllowed => "jwt_subject_not_allowed",
            Rejection::AudienceNotAllowed => "jwt_audience_not_allowed",
            Rejection::TokenTypeNotAllowed => "jwt_token_type_not_allowed",
            Rejection::TokenBound => "jwt_sender_constrained",
            Rejection::JwksUnavailable => "jwks_unavailable",
            Rejection::RolesMissing => "forbidden_roles",
            Rejection::PermissionsMissing => "forbidden_permissions",
            Rejection::TenantNotAllowed => "forbidden_tenant",
            Rejection::ClaimMismatch => "forbidden_claim",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::TokenMissing => "Jwt is missing",
            Rejection::TokenTooLarge => "Jwt is too large",
            Rejection::TokenMalformed => "Jwt is not in the form of Header.Payload.Signature",
            Rejection::AlgorithmUnsupported => "Jwt algorithm is not allowed",
            Rejection::CritUnsupported => "Jwt header lists an unsupported critical extension",
            Rejection::HeaderInvalid => "Jwt header is invalid",
            Rejection::KeyNotFound => "Jwt has no matching verification key",
            Rejection::SignatureInvalid => "Jwt verification fails",
            Rejection::Expired => "Jwt is expired",
            Rejection::NotYetValid => "Jwt not yet valid",
            Rejection::ExpirationRequired => "Jwt has no expiration",
            Rejection::LifetimeTooLong => "Jwt lifetime exceeds the allowed maximum",
            Rejection::ClaimInvalid => "Jwt has an invalid registered claim",
            Rejection::IssuerNotAllowed => "Jwt issuer is not configured",
            Rejection::SubjectNotAllowed => "Jwt subject is not allowed",
            Rejection::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            Rejection::TokenTypeNotAllowed => "Jwt is not a session token",
            Rejection::TokenBound => "Jwt is sender-constrained; its proof of possession cannot be checked here",
            Rejection::JwksUnavailable => "Verification keys are temporarily unavailable",
            Rejection::RolesMissing => "Required roles are missing",
            Rejection::PermissionsMissing => "Required permissions are missing",
            Rejection::TenantNotAllowed => "The token does not grant access to this tenant",
            Rejection::ClaimMismatch => "A required claim does not match",
        }
    }

    /// The RFC 6750 `error` attribute of `WWW-Authenticate`; `None` when the request carried
    /// no credential (RFC 6750 §3.1) or the failure is ours (503 has no challenge).
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Rejection::TokenMissing | Rejection::JwksUnavailable => None,
            Rejection::RolesMissing
            | Rejection::PermissionsMissing
            | Rejection::TenantNotAllowed
            | Rejection::ClaimMismatch => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// Whether a 401/403 challenge header belongs on the reply.
    pub fn challenges(self) -> bool {
        self != Rejection::JwksUnavailable
    }

    /// When several requirements fail, the one reported: our own unavailability first (the
    /// client should retry, not re-authenticate), a missing token last.
    pub fn priority(self) -> u8 {
        match self {
            Rejection::JwksUnavailable => 2,
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
                _ if matches!(r, Rejection::AudienceNotAllowed | Rejection::JwksUnavailable) => {}
                _ => assert_eq!(r.http_status(), 401, "{r:?}"),
            }
        }
        assert_eq!(Rejection::RolesMissing.bearer_error(), Some("insufficient_scope"));
        assert_eq!(Rejection::TokenMissing.bearer_error(), None);
        assert_eq!(Rejection::Expired.bearer_error(), Some("invalid_token"));
        assert!(!Rejection::JwksUnavailable.challenges());
    }
}
