//! Tenants: who sees which jobs. Every job carries its tenant as the reserved label
//! [`TENANT_LABEL`] and its idempotency key namespaced as `<tenant>/<key>` in the journal, so
//! two tenants never share a job or a key; answers show neither (`tenant` and the caller's own
//! key instead). A job without the label (written before tenants existed) is `default`'s.

use std::collections::HashMap;
use std::sync::Arc;

use daglo::JobSnapshot;

use crate::config::{Config, DEFAULT_TENANT};
use crate::problem::Problem;

/// The reserved label holding a job's tenant.
pub(crate) const TENANT_LABEL: &str = "daglo.tenant";
/// Label names callers may not use: the service's own.
pub(crate) const RESERVED_PREFIX: &str = "daglo.";
/// The header an admin key names the tenant of a job it creates with.
pub(crate) const TENANT_HEADER: &str = "daglo-tenant";

/// One tenant, as the service runs it.
#[derive(Debug)]
pub(crate) struct Tenant {
    pub(crate) name: Arc<str>,
    pub(crate) share: u32,
    pub(crate) max_running: Option<usize>,
}

/// What a key may see.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// One tenant's jobs.
    Tenant(Arc<Tenant>),
    /// Every tenant's.
    Admin,
}

impl Access {
    /// Its name in metrics: the tenant's (a configured name: bounded), or `admin`.
    pub(crate) fn label(&self) -> Arc<str> {
        match self {
            Self::Tenant(tenant) => tenant.name.clone(),
            Self::Admin => Arc::from("admin"),
        }
    }

    /// Whether it may see `job`.
    pub(crate) fn sees(&self, job: &JobSnapshot) -> bool {
        match self {
            Self::Tenant(tenant) => tenant_of(job) == &*tenant.name,
            Self::Admin => true,
        }
    }

    /// The tenant a job it creates belongs to: its own, or for an admin key the one the
    /// `Daglo-Tenant` header names.
    pub(crate) fn creating_for(
        &self,
        tenants: &Tenants,
        headers: &axum::http::HeaderMap,
    ) -> Result<Arc<Tenant>, Problem> {
        match self {
            Self::Tenant(tenant) => Ok(tenant.clone()),
            Self::Admin => {
                let named = headers
                    .get(TENANT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .ok_or_else(|| {
                        Problem::invalid(
                            "an admin key creates a job for a tenant: send `Daglo-Tenant: <name>`",
                        )
                    })?;
                tenants.get(named).cloned().ok_or_else(|| {
                    Problem::invalid(format!(
                        "`Daglo-Tenant`: no tenant `{}`",
                        daglo::internal::safe(named)
                    ))
                })
            }
        }
    }
}

/// The configured tenants, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tenants(Arc<HashMap<String, Arc<Tenant>>>);

impl Tenants {
    pub(crate) fn new(config: &Config) -> Self {
        Self(Arc::new(
            config
                .all_tenants()
                .into_iter()
                .map(|t| {
                    let tenant = Tenant {
                        name: Arc::from(t.name.as_str()),
                        share: t.share,
                        max_running: t.max_running,
                    };
                    (t.name, Arc::new(tenant))
                })
                .collect(),
        ))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Tenant>> {
        self.0.get(name)
    }

    /// Every tenant's name (for metrics).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The weight of each tenant, for the fair budget.
    pub(crate) fn weights(&self) -> HashMap<String, f64> {
        self.0
            .iter()
            .map(|(name, t)| (name.clone(), f64::from(t.share)))
            .collect()
    }
}

/// The tenant `job` belongs to.
pub(crate) fn tenant_of(job: &JobSnapshot) -> &str {
    job.labels
        .get(TENANT_LABEL)
        .map_or(DEFAULT_TENANT, String::as_str)
}

/// The journal's key for `tenant`'s key `key`.
pub(crate) fn namespaced(tenant: &str, key: &str) -> String {
    format!("{tenant}/{key}")
}

/// `job` as its tenant sees it: the reserved labels gone, its key as the caller gave it, and
/// `tenant` named.
pub(crate) fn present(job: &JobSnapshot) -> serde_json::Value {
    let tenant = tenant_of(job).to_owned();
    let mut shown = job.clone();
    shown.labels.retain(|name, _| !name.starts_with(RESERVED_PREFIX));
    if let Some(key) = &mut shown.key
        && let Some(own) = key.strip_prefix(&format!("{tenant}/"))
    {
        *key = own.to_owned();
    }
    let mut value = serde_json::to_value(&shown).unwrap_or_default();
    value["tenant"] = serde_json::Value::String(tenant);
    value
}
