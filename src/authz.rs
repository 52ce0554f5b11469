//! Authorization on a verified token, beyond jwt_authn: what Descope's SDKs offer as
//! `validate_roles`, `validate_permissions` and their tenant variants, plus generic claim
//! matchers. Runs only on tokens whose signature and claims already verified.

use crate::extract::{path_only, RequestView};
use crate::identity;
use crate::rules::{Authz, ClaimTest, TenantSource};
use crate::status::Rejection;
use serde_json::{Map, Value};

/// A request header authorization took the tenant from, with the value it authorized: the
/// upstream is sent exactly that value. Envoy shows a filter only the first of repeated
/// headers, and an upstream may read another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantHeader {
    pub name: String,
    pub value: String,
}

/// Whether `claims` grant what `authz` asks for this request; on success, the tenant header
/// to pin, if the tenant came from one.
pub fn authorize(
    authz: &Authz,
    claims: &Map<String, Value>,
    req: &dyn RequestView,
) -> Result<Option<TenantHeader>, Rejection> {
    // Roles and permissions live at the top level (project-wide) or, with a tenant, under
    // `tenants.<id>`; a tenant the token does not list is refused outright. Descope's
    // "current tenant, no tenant reference" template leaves `tenants` out and puts the
    // current tenant's roles at the top level: a token without `tenants` whose `dct` is the
    // tenant is read that way, as Descope's Go SDK does.
    let (scope, pin) = match &authz.tenant {
        None => (claims, None),
        Some(source) => {
            let tenant = tenant_of(source, claims, req).ok_or(Rejection::TenantNotAllowed)?;
            let scope = match claims.get("tenants") {
                Some(tenants) => tenants.as_object().and_then(|t| t.get(&tenant)).and_then(Value::as_object),
                None => (claims.get("dct").and_then(Value::as_str) == Some(tenant.as_str())).then_some(claims),
            }
            .ok_or(Rejection::TenantNotAllowed)?;
            let pin = match source {
                TenantSource::Header(name) => Some(TenantHeader { name: name.clone(), value: tenant }),
                _ => None,
            };
            (scope, pin)
        }
    };
    let roles = strings(scope, "roles");
    let permissions = strings(scope, "permissions");
    if !all(&authz.roles, &roles) || !any(&authz.any_roles, &roles) {
        return Err(Rejection::RolesMissing);
    }
    if !all(&authz.permissions, &permissions) || !any(&authz.any_permissions, &permissions) {
        return Err(Rejection::PermissionsMissing);
    }
    for m in &authz.claims {
        let value = identity::lookup(claims, &m.name);
        let ok = match (&m.test, value) {
            (ClaimTest::Present, v) => v.is_some_and(|v| !v.is_null()),
            (ClaimTest::Exact(want), Some(Value::String(s))) => s == *want,
            // `exact: "3"` or `"true"` also matches a number or boolean claim.
            (ClaimTest::Exact(want), Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
                serde_json::from_str::<Value>(want).is_ok_and(|w| w == v)
            }
            (ClaimTest::Prefix(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
            (ClaimTest::Contains(want), Some(Value::Array(items))) => items.iter().any(|i| i.as_str() == Some(want)),
            (ClaimTest::Contains(want), Some(Value::String(s))) => s.contains(want.as_str()),
            _ => false,
        };
        if !ok {
            return Err(Rejection::ClaimMismatch);
        }
    }
    Ok(pin)
}

fn tenant_of(source: &TenantSource, claims: &Map<String, Value>, req: &dyn RequestView) -> Option<String> {
    let t = match source {
        TenantSource::Header(h) => req.header(h)?,
        TenantSource::PathSegment(n) => {
            let path = req.header(":path")?;
            path_only(&path).trim_start_matches('/').split('/').nth(*n)?.to_owned()
        }
        TenantSource::Claim(c) => claims.get(c)?.as_str()?.to_owned(),
        TenantSource::Fixed(t) => t.clone(),
    };
    (!t.is_empty()).then_some(t)
}

fn strings<'a>(scope: &'a Map<String, Value>, name: &str) -> Vec<&'a str> {
    scope.get(name).and_then(Value::as_array).map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
}

fn all(wanted: &[String], have: &[&str]) -> bool {
    wanted.iter().all(|w| have.contains(&w.as_str()))
}

fn any(wanted: &[String], have: &[&str]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| have.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ClaimMatcher;
    use serde_json::json;
    use std::collections::HashMap;

    struct Req(HashMap<&'static str, &'static str>);
    impl RequestView for Req {
        fn header(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }
    fn req(pairs: &[(&'static str, &'static str)]) -> Req {
        Req(pairs.iter().copied().collect())
    }
    fn claims() -> Map<String, Value> {
        json!({
            "sub": "U1", "email": "a@example.com", "amr": ["pwd", "otp"], "dct": "T1", "level": 3,
            "roles": ["viewer"], "permissions": ["read"],
            "tenants": {
                "T1": {"roles": ["admin", "editor"], "permissions": ["orders.read", "orders.write"]},
                "T2": {"roles": ["viewer"], "permissions": []}
            }
        })
        .as_object()
        .unwrap()
        .clone()
    }
    fn check(a: Authz, r: &Req) -> Result<(), Rejection> {
        authorize(&a, &claims(), r).map(|_| ())
    }
    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn project_level_roles_and_permissions() {
        let r = req(&[]);
        assert_eq!(check(Authz { roles: strs(&["viewer"]), ..Authz::default() }, &r), Ok(()));
        assert_eq!(
            check(Authz { roles: strs(&["viewer", "admin"]), ..Authz::default() }, &r),
            Err(Rejection::RolesMissing)
        );
        assert_eq!(check(Authz { any_roles: strs(&["admin", "viewer"]), ..Authz::default() }, &r), Ok(()));
        assert_eq!(check(Authz { any_roles: strs(&["admin"]), ..Authz::default() }, &r), Err(Rejection::RolesMissing));
        assert_eq!(check(Authz { permissions: strs(&["read"]), ..Authz::default() }, &r), Ok(()));
        assert_eq!(
            check(Authz { permissions: strs(&["write"]), ..Authz::default() }, &r),
            Err(Rejection::PermissionsMissing)
        );
        assert_eq!(
            check(Authz { any_permissions: strs(&["write", "delete"]), ..Authz::default() }, &r),
            Err(Rejection::PermissionsMissing)
        );
    }

    #[test]
    fn tenant_scoped_from_each_source() {
        let admin = |tenant| Authz { roles: strs(&["admin"]), tenant: Some(tenant), ..Authz::default() };
        let r = req(&[("x-tenant-id", "T1"), (":path", "/tenants/T2/orders?x=1")]);
        assert_eq!(check(admin(TenantSource::Header("x-tenant-id".into())), &r), Ok(()));
        assert_eq!(check(admin(TenantSource::Claim("dct".into())), &r), Ok(()));
        assert_eq!(check(admin(TenantSource::Fixed("T1".into())), &r), Ok(()));
        // T2 is granted but without the admin role.
        assert_eq!(check(admin(TenantSource::PathSegment(1)), &r), Err(Rejection::RolesMissing));
        // A tenant the token does not list, or none at all.
        assert_eq!(check(admin(TenantSource::Fixed("T9".into())), &r), Err(Rejection::TenantNotAllowed));
        assert_eq!(check(admin(TenantSource::Header("x-missing".into())), &r), Err(Rejection::TenantNotAllowed));
        assert_eq!(check(admin(TenantSource::PathSegment(7)), &r), Err(Rejection::TenantNotAllowed));
        let perms = Authz {
            permissions: strs(&["orders.write"]),
            tenant: Some(TenantSource::Claim("dct".into())),
            ..Authz::default()
        };
        assert_eq!(check(perms, &r), Ok(()));
    }

    /// Descope's "current tenant, no tenant reference" template: no `tenants`, the current
    /// tenant's roles at the top level. Read that way only for the token's own `dct`, and
    /// only when `tenants` is absent (with it, the top level is project-wide).
    #[test]
    fn a_token_without_tenants_grants_its_current_tenant_from_the_top_level() {
        let tenant_only = json!({"sub": "U1", "dct": "T1", "roles": ["admin"], "permissions": ["orders.read"]});
        let tenant_only = tenant_only.as_object().unwrap();
        let admin = |tenant: &str| Authz {
            roles: strs(&["admin"]),
            permissions: strs(&["orders.read"]),
            tenant: Some(TenantSource::Fixed(tenant.into())),
            ..Authz::default()
        };
        let r = req(&[]);
        assert_eq!(authorize(&admin("T1"), tenant_only, &r), Ok(None));
        assert_eq!(authorize(&admin("T2"), tenant_only, &r), Err(Rejection::TenantNotAllowed));
        let mut no_dct = tenant_only.clone();
        no_dct.remove("dct");
        assert_eq!(authorize(&admin("T1"), &no_dct, &r), Err(Rejection::TenantNotAllowed));
        // With `tenants` present (even without this tenant) the top level does not count.
        let mut with_tenants = tenant_only.clone();
        with_tenants.insert("tenants".into(), json!({}));
        assert_eq!(authorize(&admin("T1"), &with_tenants, &r), Err(Rejection::TenantNotAllowed));
        with_tenants.insert("tenants".into(), json!({"T1": {"roles": []}}));
        assert_eq!(authorize(&admin("T1"), &with_tenants, &r), Err(Rejection::RolesMissing));
        // An empty tenant is no tenant, whatever the token holds under "".
        let empty = json!({"dct": "", "tenants": {"": {"roles": ["admin"], "permissions": ["orders.read"]}}});
        let r = req(&[("x-tenant-id", "")]);
        let by_header = Authz { tenant: Some(TenantSource::Header("x-tenant-id".into())), ..admin("") };
        assert_eq!(authorize(&by_header, empty.as_object().unwrap(), &r), Err(Rejection::TenantNotAllowed));
        let by_claim = Authz { tenant: Some(TenantSource::Claim("dct".into())), ..admin("") };
        assert_eq!(authorize(&by_claim, empty.as_object().unwrap(), &r), Err(Rejection::TenantNotAllowed));
    }

    #[test]
    fn a_tenant_from_a_header_is_pinned_to_what_was_authorized() {
        let r = req(&[("x-tenant-id", "T1"), (":path", "/tenants/T1/orders")]);
        let admin = |tenant| Authz { roles: strs(&["admin"]), tenant: Some(tenant), ..Authz::default() };
        assert_eq!(
            authorize(&admin(TenantSource::Header("x-tenant-id".into())), &claims(), &r),
            Ok(Some(TenantHeader { name: "x-tenant-id".into(), value: "T1".into() }))
        );
        for other in [TenantSource::PathSegment(1), TenantSource::Claim("dct".into()), TenantSource::Fixed("T1".into())]
        {
            assert_eq!(authorize(&admin(other), &claims(), &r), Ok(None));
        }
        assert_eq!(authorize(&Authz::default(), &claims(), &r), Ok(None));
    }

    #[test]
    fn claim_matchers() {
        let r = req(&[]);
        let m = |name: &str, test| Authz { claims: vec![ClaimMatcher { name: name.into(), test }], ..Authz::default() };
        assert_eq!(check(m("email", ClaimTest::Exact("a@example.com".into())), &r), Ok(()));
        assert_eq!(check(m("level", ClaimTest::Exact("3".into())), &r), Ok(()));
        assert_eq!(check(m("email", ClaimTest::Prefix("a@".into())), &r), Ok(()));
        assert_eq!(check(m("amr", ClaimTest::Contains("otp".into())), &r), Ok(()));
        assert_eq!(check(m("email", ClaimTest::Contains("example".into())), &r), Ok(()));
        assert_eq!(check(m("tenants.T1.roles", ClaimTest::Contains("editor".into())), &r), Ok(()));
        assert_eq!(check(m("dct", ClaimTest::Present), &r), Ok(()));
        assert_eq!(check(m("missing", ClaimTest::Present), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("email", ClaimTest::Exact("b@example.com".into())), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("amr", ClaimTest::Contains("hwk".into())), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("amr", ClaimTest::Exact("pwd".into())), &r), Err(Rejection::ClaimMismatch));
        // A number claim matches its own value only; a prefix is at the start only.
        assert_eq!(check(m("level", ClaimTest::Exact("4".into())), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("level", ClaimTest::Exact("true".into())), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("email", ClaimTest::Prefix("example".into())), &r), Err(Rejection::ClaimMismatch));
        assert_eq!(check(m("email", ClaimTest::Contains("nope".into())), &r), Err(Rejection::ClaimMismatch));
    }
}
