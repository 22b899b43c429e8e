//! Where the HTTPProxy processor reads objects from: the cache itself, or a
//! [`Tracked`] view of it that records every look-up (found or missing), so
//! the incremental engine knows what a root's result depends on.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use contour_crds::{HTTPProxy, IngressRoute, TLSCertificateDelegation};
use k8s_openapi::api::networking::v1::Ingress;

use crate::cache::{Cache, Key, SecretData, ServiceRecord};
use crate::smallmap::SmallMap;

/// Look-ups of routing objects by key.
pub trait Source {
    /// An HTTPProxy.
    fn httpproxy(&self, key: &Key) -> Option<&Arc<HTTPProxy>>;
    /// What routing reads of a Service.
    fn service(&self, key: &Key) -> Option<&Arc<ServiceRecord>>;
    /// The kept material of a Secret.
    fn secret(&self, key: &Key) -> Option<&Arc<SecretData>>;
    /// Every TLSCertificateDelegation.
    fn delegations(&self) -> &BTreeMap<Key, Arc<TLSCertificateDelegation>>;
    /// Every Ingress (not recorded: any change of an Ingress is a change
    /// of what reads them all).
    fn ingresses(&self) -> &BTreeMap<Key, Arc<Ingress>>;
    /// Every IngressRoute (not recorded, as [`Source::ingresses`]).
    fn ingressroutes(&self) -> &BTreeMap<Key, Arc<IngressRoute>>;
}

impl Source for Cache {
    fn httpproxy(&self, key: &Key) -> Option<&Arc<HTTPProxy>> {
        self.httpproxies.get(key)
    }
    fn service(&self, key: &Key) -> Option<&Arc<ServiceRecord>> {
        self.services.get(key)
    }
    fn secret(&self, key: &Key) -> Option<&Arc<SecretData>> {
        self.secrets.get(key)
    }
    fn delegations(&self) -> &BTreeMap<Key, Arc<TLSCertificateDelegation>> {
        &self.delegations
    }
    fn ingresses(&self) -> &BTreeMap<Key, Arc<Ingress>> {
        &self.ingresses
    }
    fn ingressroutes(&self) -> &BTreeMap<Key, Arc<IngressRoute>> {
        &self.ingressroutes
    }
}

/// What a computation read: each key with the object it found (`None`:
/// looked up but missing), and whether it scanned the delegations. One is
/// kept per root, and a root reads a few objects: small maps.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// HTTPProxies.
    pub httpproxies: SmallMap<Key, Option<Arc<HTTPProxy>>>,
    /// Services.
    pub services: SmallMap<Key, Option<Arc<ServiceRecord>>>,
    /// Secrets.
    pub secrets: SmallMap<Key, Option<Arc<SecretData>>>,
    /// Whether the TLSCertificateDelegations were consulted.
    pub delegations: bool,
}

fn same<T>(a: Option<&Arc<T>>, b: Option<&Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

impl Reads {
    /// Whether every object read is still the very same object in `cache`
    /// (the cache replaces an object's `Arc` whenever it changes).
    /// `delegations_unchanged` tells whether the delegations are the same.
    pub fn still_valid(&self, cache: &Cache, delegations_unchanged: bool) -> bool {
        (!self.delegations || delegations_unchanged)
            && self
                .httpproxies
                .iter()
                .all(|(k, v)| same(cache.httpproxies.get(k), v.as_ref()))
            && self
                .services
                .iter()
                .all(|(k, v)| same(cache.services.get(k), v.as_ref()))
            && self
                .secrets
                .iter()
                .all(|(k, v)| same(cache.secrets.get(k), v.as_ref()))
    }
}

/// A view of the cache that records what is read.
#[derive(Debug)]
pub struct Tracked<'a> {
    cache: &'a Cache,
    reads: RefCell<Reads>,
}

impl<'a> Tracked<'a> {
    /// A view of `cache` that has read nothing yet.
    pub fn new(cache: &'a Cache) -> Self {
        Self {
            cache,
            reads: RefCell::new(Reads::default()),
        }
    }

    /// What was read.
    pub fn into_reads(self) -> Reads {
        self.reads.into_inner()
    }
}

impl Source for Tracked<'_> {
    fn httpproxy(&self, key: &Key) -> Option<&Arc<HTTPProxy>> {
        let found = self.cache.httpproxies.get(key);
        self.reads
            .borrow_mut()
            .httpproxies
            .insert(key.clone(), found.cloned());
        found
    }
    fn service(&self, key: &Key) -> Option<&Arc<ServiceRecord>> {
        let found = self.cache.services.get(key);
        self.reads
            .borrow_mut()
            .services
            .insert(key.clone(), found.cloned());
        found
    }
    fn secret(&self, key: &Key) -> Option<&Arc<SecretData>> {
        let found = self.cache.secrets.get(key);
        self.reads
            .borrow_mut()
            .secrets
            .insert(key.clone(), found.cloned());
        found
    }
    fn delegations(&self) -> &BTreeMap<Key, Arc<TLSCertificateDelegation>> {
        self.reads.borrow_mut().delegations = true;
        &self.cache.delegations
    }
    fn ingresses(&self) -> &BTreeMap<Key, Arc<Ingress>> {
        &self.cache.ingresses
    }
    fn ingressroutes(&self) -> &BTreeMap<Key, Arc<IngressRoute>> {
        &self.cache.ingressroutes
    }
}
