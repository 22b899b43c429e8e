//! The objects that matter for routing, stripped of what does not.
//!
//! `insert` and `remove` report whether the change can alter the built
//! output, so unrelated changes (a Helm release Secret, an unreferenced
//! Service) trigger no rebuild.

use std::collections::BTreeMap;
use std::sync::Arc;

use contour_crds::{HTTPProxy, IngressRoute, TLSCertificateDelegation};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ObjectMeta;

/// The `(namespace, name)` of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// A key from parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn of(meta: &ObjectMeta) -> Self {
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

/// Key material kept from a Secret; everything else is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretData {
    /// `tls.crt`, if present and UTF-8.
    pub cert_pem: Option<String>,
    /// `tls.key`, if present and UTF-8.
    pub key_pem: Option<String>,
    /// `ca.crt`, if present and UTF-8.
    pub ca_pem: Option<String>,
}

/// An object the cache understands. Short-lived (moved straight into the
/// cache), so the size difference of its variants does not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// networking.k8s.io/v1 Ingress.
    Ingress(Ingress),
    /// contour.heptio.com/v1beta1 IngressRoute.
    IngressRoute(IngressRoute),
    /// projectcontour.io/v1 HTTPProxy.
    HTTPProxy(HTTPProxy),
    /// projectcontour.io/v1 TLSCertificateDelegation.
    Delegation(TLSCertificateDelegation),
    /// v1 Service.
    Service(Service),
    /// v1 Secret.
    Secret(Secret),
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice(EndpointSlice),
}

/// The kinds of [`Object`], for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ingress.
    Ingress,
    /// IngressRoute.
    IngressRoute,
    /// HTTPProxy.
    HTTPProxy,
    /// TLSCertificateDelegation.
    Delegation,
    /// Service.
    Service,
    /// Secret.
    Secret,
    /// EndpointSlice.
    EndpointSlice,
}

/// The routing-relevant objects of the cluster.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// Ingresses.
    pub ingresses: BTreeMap<Key, Arc<Ingress>>,
    /// IngressRoutes.
    pub ingressroutes: BTreeMap<Key, Arc<IngressRoute>>,
    /// HTTPProxies.
    pub httpproxies: BTreeMap<Key, Arc<HTTPProxy>>,
    /// TLSCertificateDelegations.
    pub delegations: BTreeMap<Key, Arc<TLSCertificateDelegation>>,
    /// Services.
    pub services: BTreeMap<Key, Arc<Service>>,
    /// TLS and CA material of Secrets.
    pub secrets: BTreeMap<Key, Arc<SecretData>>,
    /// EndpointSlices by their own name.
    pub endpoint_slices: BTreeMap<Key, Arc<EndpointSlice>>,
}

/// Drops what never affects routing, so that status writes and no-op updates
/// compare equal to what is stored.
fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.resource_version = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Only key material of TLS and CA secrets is kept.
fn secret_data(secret: &Secret) -> Option<SecretData> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let out = SecretData {
        cert_pem: text("tls.crt"),
        key_pem: text("tls.key"),
        ca_pem: text("ca.crt"),
    };
    let is_tls = secret.type_.as_deref() == Some("kubernetes.io/tls");
    (is_tls || out.ca_pem.is_some()).then_some(out)
}

impl Cache {
    /// Inserts or replaces an object; returns whether the output can change.
    pub fn insert(&mut self, object: Object) -> bool {
        match object {
            Object::Ingress(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                replace(&mut self.ingresses, Key::of(&o.metadata), o)
            }
            Object::IngressRoute(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                replace(&mut self.ingressroutes, Key::of(&o.metadata), o)
            }
            Object::HTTPProxy(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                replace(&mut self.httpproxies, Key::of(&o.metadata), o)
            }
            Object::Delegation(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                replace(&mut self.delegations, Key::of(&o.metadata), o)
            }
            Object::Service(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                let key = Key::of(&o.metadata);
                let referenced = self.service_referenced(&key);
                replace(&mut self.services, key, o) && referenced
            }
            Object::Secret(s) => {
                let key = Key::of(&s.metadata);
                match secret_data(&s) {
                    Some(data) => replace(&mut self.secrets, key, data),
                    // A Secret that is (no longer) TLS material: forget it.
                    None => self.secrets.remove(&key).is_some(),
                }
            }
            Object::EndpointSlice(mut o) => {
                strip(&mut o.metadata);
                replace(&mut self.endpoint_slices, Key::of(&o.metadata), o)
            }
        }
    }

    /// Removes an object; returns whether the output can change.
    pub fn remove(&mut self, kind: Kind, key: &Key) -> bool {
        match kind {
            Kind::Ingress => self.ingresses.remove(key).is_some(),
            Kind::IngressRoute => self.ingressroutes.remove(key).is_some(),
            Kind::HTTPProxy => self.httpproxies.remove(key).is_some(),
            Kind::Delegation => self.delegations.remove(key).is_some(),
            Kind::Service => self.services.remove(key).is_some() && self.service_referenced(key),
            Kind::Secret => self.secrets.remove(key).is_some(),
            Kind::EndpointSlice => self.endpoint_slices.remove(key).is_some(),
        }
    }

    /// Whether any routing object names this Service.
    pub fn service_referenced(&self, key: &Key) -> bool {
        let same_ns = |ns: &Option<String>| ns.as_deref().unwrap_or_default() == key.namespace;
        let in_proxy = self.httpproxies.values().any(|p| {
            same_ns(&p.metadata.namespace)
                && (p
                    .spec
                    .routes
                    .iter()
                    .flat_map(|r| &r.services)
                    .any(|s| s.name == key.name)
                    || p.spec
                        .tcp_proxy
                        .iter()
                        .flat_map(|t| &t.services)
                        .any(|s| s.name == key.name))
        });
        let in_route = self.ingressroutes.values().any(|r| {
            same_ns(&r.metadata.namespace)
                && (r
                    .spec
                    .routes
                    .iter()
                    .flat_map(|r| &r.services)
                    .any(|s| s.name == key.name)
                    || r.spec
                        .tcp_proxy
                        .iter()
                        .flat_map(|t| &t.services)
                        .any(|s| s.name == key.name))
        });
        let in_ingress = self.ingresses.values().any(|i| {
            let Some(spec) = i.spec.as_ref().filter(|_| same_ns(&i.metadata.namespace)) else {
                return false;
            };
            let named = |b: &k8s_openapi::api::networking::v1::IngressBackend| {
                b.service.as_ref().is_some_and(|s| s.name == key.name)
            };
            spec.default_backend.as_ref().is_some_and(named)
                || spec
                    .rules
                    .iter()
                    .flatten()
                    .filter_map(|r| r.http.as_ref())
                    .flat_map(|h| &h.paths)
                    .any(|p| named(&p.backend))
        });
        in_proxy || in_route || in_ingress
    }
}

fn replace<T: PartialEq>(map: &mut BTreeMap<Key, Arc<T>>, key: Key, value: T) -> bool {
    match map.get(&key) {
        Some(old) if **old == value => false,
        _ => {
            map.insert(key, Arc::new(value));
            true
        }
    }
}
