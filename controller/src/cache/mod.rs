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

mod records;
pub use records::{SERVICE_NAME_LABEL, ServicePortRecord, ServiceRecord, SliceRecord};

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

    /// The key of an object from its metadata.
    pub fn of(meta: &ObjectMeta) -> Self {
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
    /// `crl.pem`, if present and UTF-8.
    pub crl_pem: Option<String>,
    /// Whether the Secret's type is `kubernetes.io/tls` or `Opaque` (the
    /// types upstream accepts for CA and CRL material).
    pub tls_or_opaque: bool,
    /// Why `tls.crt`/`tls.key` cannot serve, checked once when the Secret
    /// arrives (upstream's words); `None` when they are a usable pair.
    pub tls_error: Option<String>,
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

impl Object {
    /// The kind of the object.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Ingress(_) => Kind::Ingress,
            Object::IngressRoute(_) => Kind::IngressRoute,
            Object::HTTPProxy(_) => Kind::HTTPProxy,
            Object::Delegation(_) => Kind::Delegation,
            Object::Service(_) => Kind::Service,
            Object::Secret(_) => Kind::Secret,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
        }
    }

    /// The `(namespace, name)` of the object.
    pub fn key(&self) -> Key {
        Key::of(match self {
            Object::Ingress(o) => &o.metadata,
            Object::IngressRoute(o) => &o.metadata,
            Object::HTTPProxy(o) => &o.metadata,
            Object::Delegation(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
        })
    }
}

/// The kinds of [`Object`], for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// What routing reads of each Service.
    pub services: BTreeMap<Key, Arc<ServiceRecord>>,
    /// TLS and CA material of Secrets.
    pub secrets: BTreeMap<Key, Arc<SecretData>>,
    /// What routing reads of each EndpointSlice, by the slice's own name.
    pub endpoint_slices: BTreeMap<Key, Arc<SliceRecord>>,
    /// How many routing objects name each Service (kept up to date by
    /// `insert`/`remove`, so a Service event is judged in O(log n)).
    service_refs: BTreeMap<Key, u32>,
    /// Every stored change, in order (see [`Cache::changes_since`]).
    journal: Journal,
}

/// How many journal entries are kept before the oldest half is dropped.
const JOURNAL_LIMIT: usize = 1 << 16;

/// The stored changes of one cache, so that a reader that remembers where
/// it stopped can catch up without comparing every object. Every change
/// goes through [`Cache::insert`] / [`Cache::remove`]: the maps are public
/// for reading only.
#[derive(Debug)]
struct Journal {
    /// Which cache this is; a clone is another cache with its own history.
    id: u64,
    /// The sequence number of `entries[0]`.
    start: u64,
    entries: Vec<(Kind, Key)>,
}

impl Default for Journal {
    fn default() -> Self {
        Self::fresh()
    }
}

impl Journal {
    fn fresh() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            start: 0,
            entries: Vec::new(),
        }
    }

    fn record(&mut self, kind: Kind, key: &Key) {
        if self.entries.len() >= JOURNAL_LIMIT {
            let half = JOURNAL_LIMIT / 2;
            self.entries.drain(..half);
            self.start += half as u64;
        }
        self.entries.push((kind, key.clone()));
    }
}

impl Clone for Journal {
    fn clone(&self) -> Self {
        // A clone changes on its own: it must not look like the original.
        Self {
            entries: self.entries.clone(),
            start: self.start,
            id: Self::fresh().id,
        }
    }
}

/// Where a reader of [`Cache::changes_since`] stopped: which cache, and
/// how many changes it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    cache: u64,
    seen: u64,
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

/// Only key material of TLS, CA and CRL secrets is kept.
fn secret_data(secret: &Secret) -> Option<SecretData> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let mut out = SecretData {
        cert_pem: text("tls.crt"),
        key_pem: text("tls.key"),
        ca_pem: text("ca.crt"),
        crl_pem: text("crl.pem"),
        tls_or_opaque: matches!(
            secret.type_.as_deref(),
            None | Some("") | Some("kubernetes.io/tls") | Some("Opaque")
        ),
        tls_error: None,
    };
    out.tls_error = crate::tls::check_pair(out.cert_pem.as_deref(), out.key_pem.as_deref()).err();
    let is_tls = secret.type_.as_deref() == Some("kubernetes.io/tls");
    // CA bundles (client and upstream validation) and revocation lists are
    // referenced by HTTPProxies too, so they are kept like TLS Secrets.
    (is_tls || out.ca_pem.is_some() || out.crl_pem.is_some()).then_some(out)
}

impl Cache {
    /// Inserts or replaces an object; returns whether the output can change.
    pub fn insert(&mut self, object: Object) -> bool {
        let (kind, key) = (object.kind(), object.key());
        let before = self.stored(kind, &key);
        let out = self.insert_untracked(object);
        if self.stored(kind, &key) != before {
            self.journal.record(kind, &key);
        }
        out
    }

    fn insert_untracked(&mut self, object: Object) -> bool {
        match object {
            Object::Ingress(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                let key = Key::of(&o.metadata);
                let old = self.ingresses.get(&key).map(|old| ingress_refs(old));
                let new = ingress_refs(&o);
                let changed = replace(&mut self.ingresses, key, o);
                if changed {
                    self.count_refs(old.unwrap_or_default(), new);
                }
                changed
            }
            Object::IngressRoute(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                let key = Key::of(&o.metadata);
                let old = self
                    .ingressroutes
                    .get(&key)
                    .map(|old| ingressroute_refs(old));
                let new = ingressroute_refs(&o);
                let changed = replace(&mut self.ingressroutes, key, o);
                if changed {
                    self.count_refs(old.unwrap_or_default(), new);
                }
                changed
            }
            Object::HTTPProxy(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                let key = Key::of(&o.metadata);
                let old = self.httpproxies.get(&key).map(|old| proxy_refs(old));
                let new = proxy_refs(&o);
                let changed = replace(&mut self.httpproxies, key, o);
                if changed {
                    self.count_refs(old.unwrap_or_default(), new);
                }
                changed
            }
            Object::Delegation(mut o) => {
                strip(&mut o.metadata);
                o.status = None;
                replace(&mut self.delegations, Key::of(&o.metadata), o)
            }
            Object::Service(o) => {
                let key = Key::of(&o.metadata);
                let referenced = self.service_referenced(&key);
                replace(&mut self.services, key, ServiceRecord::of(o)) && referenced
            }
            Object::Secret(s) => {
                let key = Key::of(&s.metadata);
                match secret_data(&s) {
                    Some(data) => replace(&mut self.secrets, key, data),
                    // A Secret that is (no longer) TLS material: forget it.
                    None => self.secrets.remove(&key).is_some(),
                }
            }
            Object::EndpointSlice(o) => {
                let key = Key::of(&o.metadata);
                replace(&mut self.endpoint_slices, key, SliceRecord::of(o))
            }
        }
    }

    /// Removes an object; returns whether the output can change.
    pub fn remove(&mut self, kind: Kind, key: &Key) -> bool {
        let before = self.stored(kind, key);
        let out = self.remove_untracked(kind, key);
        if before.is_some() {
            self.journal.record(kind, key);
        }
        out
    }

    /// The identity of what is stored under `key` (changes when the object does).
    fn stored(&self, kind: Kind, key: &Key) -> Option<usize> {
        fn p<T>(m: &BTreeMap<Key, Arc<T>>, k: &Key) -> Option<usize> {
            m.get(k).map(|v| Arc::as_ptr(v) as usize)
        }
        match kind {
            Kind::Ingress => p(&self.ingresses, key),
            Kind::IngressRoute => p(&self.ingressroutes, key),
            Kind::HTTPProxy => p(&self.httpproxies, key),
            Kind::Delegation => p(&self.delegations, key),
            Kind::Service => p(&self.services, key),
            Kind::Secret => p(&self.secrets, key),
            Kind::EndpointSlice => p(&self.endpoint_slices, key),
        }
    }

    /// Where the journal ends now.
    pub fn position(&self) -> Position {
        Position {
            cache: self.journal.id,
            seen: self.journal.start + self.journal.entries.len() as u64,
        }
    }

    /// The objects changed (inserted, replaced or removed) since `from`, in
    /// order, possibly repeated; `None` when `from` belongs to another cache
    /// or to history already dropped.
    pub fn changes_since(&self, from: Position) -> Option<&[(Kind, Key)]> {
        if from.cache != self.journal.id || from.seen < self.journal.start {
            return None;
        }
        let skip = usize::try_from(from.seen - self.journal.start).ok()?;
        self.journal.entries.get(skip..)
    }

    fn remove_untracked(&mut self, kind: Kind, key: &Key) -> bool {
        match kind {
            Kind::Ingress => match self.ingresses.remove(key) {
                Some(old) => {
                    self.count_refs(ingress_refs(&old), vec![]);
                    true
                }
                None => false,
            },
            Kind::IngressRoute => match self.ingressroutes.remove(key) {
                Some(old) => {
                    self.count_refs(ingressroute_refs(&old), vec![]);
                    true
                }
                None => false,
            },
            Kind::HTTPProxy => match self.httpproxies.remove(key) {
                Some(old) => {
                    self.count_refs(proxy_refs(&old), vec![]);
                    true
                }
                None => false,
            },
            Kind::Delegation => self.delegations.remove(key).is_some(),
            Kind::Service => self.services.remove(key).is_some() && self.service_referenced(key),
            Kind::Secret => self.secrets.remove(key).is_some(),
            Kind::EndpointSlice => self.endpoint_slices.remove(key).is_some(),
        }
    }

    /// The keys of every object of a kind (to forget objects that vanished
    /// while a watch was restarting).
    pub fn keys(&self, kind: Kind) -> Vec<Key> {
        fn k<V>(m: &BTreeMap<Key, V>) -> Vec<Key> {
            m.keys().cloned().collect()
        }
        match kind {
            Kind::Ingress => k(&self.ingresses),
            Kind::IngressRoute => k(&self.ingressroutes),
            Kind::HTTPProxy => k(&self.httpproxies),
            Kind::Delegation => k(&self.delegations),
            Kind::Service => k(&self.services),
            Kind::Secret => k(&self.secrets),
            Kind::EndpointSlice => k(&self.endpoint_slices),
        }
    }

    /// Whether any routing object names this Service.
    pub fn service_referenced(&self, key: &Key) -> bool {
        self.service_refs.get(key).is_some_and(|n| *n > 0)
    }

    fn count_refs(&mut self, old: Vec<Key>, new: Vec<Key>) {
        for k in old {
            if let Some(n) = self.service_refs.get_mut(&k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.service_refs.remove(&k);
                }
            }
        }
        for k in new {
            *self.service_refs.entry(k).or_default() += 1;
        }
    }
}

/// Services an HTTPProxy names (in its own namespace), each once.
fn proxy_refs(p: &HTTPProxy) -> Vec<Key> {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let names = p
        .spec
        .routes
        .iter()
        .flat_map(|r| &r.services)
        .chain(p.spec.tcp_proxy.iter().flat_map(|t| &t.services));
    dedup(names.map(|s| Key::new(ns.clone(), s.name.clone())))
}

/// Services an IngressRoute names, each once.
fn ingressroute_refs(r: &IngressRoute) -> Vec<Key> {
    let ns = r.metadata.namespace.clone().unwrap_or_default();
    let names = r
        .spec
        .routes
        .iter()
        .flat_map(|r| &r.services)
        .chain(r.spec.tcp_proxy.iter().flat_map(|t| &t.services));
    dedup(names.map(|s| Key::new(ns.clone(), s.name.clone())))
}

/// Services an Ingress names, each once.
fn ingress_refs(i: &Ingress) -> Vec<Key> {
    let ns = i.metadata.namespace.clone().unwrap_or_default();
    let Some(spec) = i.spec.as_ref() else {
        return vec![];
    };
    let backends = spec.default_backend.iter().chain(
        spec.rules
            .iter()
            .flatten()
            .filter_map(|r| r.http.as_ref())
            .flat_map(|h| h.paths.iter().map(|p| &p.backend)),
    );
    dedup(
        backends
            .filter_map(|b| b.service.as_ref())
            .map(|s| Key::new(ns.clone(), s.name.clone())),
    )
}

fn dedup(keys: impl Iterator<Item = Key>) -> Vec<Key> {
    let set: std::collections::BTreeSet<Key> = keys.collect();
    set.into_iter().collect()
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(v)
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn proxy(service: &str) -> Result<Object, serde_json::Error> {
        Ok(Object::HTTPProxy(obj(json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"virtualhost": {"fqdn": "a.example.com"}, "routes": [{"services": [{"name": service, "port": 80}]}]}
        }))?))
    }

    fn service(name: &str, version: &str) -> Result<Object, serde_json::Error> {
        Ok(Object::Service(obj(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version},
            "spec": {"ports": [{"port": 80}]}
        }))?))
    }

    #[test]
    fn the_journal_lists_stored_changes_of_this_cache_only() -> TestResult {
        let mut cache = Cache::default();
        let start = cache.position();
        cache.insert(service("unreferenced", "1")?);
        cache.insert(service("unreferenced", "2")?); // only metadata noise: no change
        cache.insert(proxy("app")?);
        assert!(!cache.remove(Kind::Service, &Key::new("ns", "missing")));
        cache.remove(Kind::Service, &Key::new("ns", "unreferenced"));
        let seen: Vec<(Kind, &str)> = cache
            .changes_since(start)
            .ok_or("own history")?
            .iter()
            .map(|(k, key)| (*k, key.name.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Kind::Service, "unreferenced"),
                (Kind::HTTPProxy, "p"),
                (Kind::Service, "unreferenced")
            ]
        );
        assert_eq!(
            cache.changes_since(cache.position()).map(<[_]>::len),
            Some(0)
        );
        let copy = cache.clone();
        assert!(
            copy.changes_since(start).is_none(),
            "a copy is another cache"
        );
        let mut long = Cache::default();
        let from = long.position();
        for i in 0..=JOURNAL_LIMIT {
            long.insert(service(&format!("s{i}"), "1")?);
        }
        assert!(long.changes_since(from).is_none(), "dropped history");
        assert_eq!(
            long.changes_since(cache.position()),
            None,
            "a position of another cache"
        );
        Ok(())
    }

    #[test]
    fn only_referenced_services_trigger_rebuilds() -> TestResult {
        let mut cache = Cache::default();
        assert!(
            !cache.insert(service("web", "1")?),
            "no routing object names it yet"
        );
        assert!(cache.insert(proxy("web")?));
        assert!(
            !cache.insert(service("web", "2")?),
            "a no-op update of a referenced Service changes nothing"
        );
        let changed = cache.insert(Object::Service(obj(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "3"},
            "spec": {"ports": [{"port": 8080}]}
        }))?));
        assert!(
            changed,
            "a referenced Service that changes triggers a rebuild"
        );
        assert!(!cache.insert(service("other", "1")?));
        // The proxy now names another Service: `web` is no longer referenced.
        assert!(cache.insert(proxy("other")?));
        assert!(!cache.service_referenced(&Key::new("ns", "web")));
        assert!(cache.service_referenced(&Key::new("ns", "other")));
        assert!(cache.remove(Kind::HTTPProxy, &Key::new("ns", "p")));
        assert!(!cache.service_referenced(&Key::new("ns", "other")));
        Ok(())
    }

    #[test]
    fn no_op_updates_and_status_writes_change_nothing() -> TestResult {
        let mut cache = Cache::default();
        assert!(cache.insert(proxy("web")?));
        let Object::HTTPProxy(mut again) = proxy("web")? else {
            return Ok(());
        };
        again.metadata.resource_version = Some("2".into());
        again.status = Some(Default::default());
        assert!(!cache.insert(Object::HTTPProxy(again)));
        Ok(())
    }

    #[test]
    fn secrets_that_are_not_tls_material_are_neither_kept_nor_rebuild() -> TestResult {
        let mut cache = Cache::default();
        let helm: Secret = obj(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.app.v1", "namespace": "ns"},
            "data": {"release": "cmVsZWFzZQ=="}
        }))?;
        assert!(!cache.insert(Object::Secret(helm)));
        assert!(cache.secrets.is_empty());
        let tls: Secret = obj(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "tls", "namespace": "ns"},
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5", "other": "eA=="}
        }))?;
        assert!(cache.insert(Object::Secret(tls)));
        let kept = cache
            .secrets
            .get(&Key::new("ns", "tls"))
            .map(|s| (**s).clone());
        let kept = kept.map(|k| (k.cert_pem, k.key_pem, k.ca_pem, k.tls_error.is_some()));
        assert_eq!(
            kept,
            Some((Some("cert".into()), Some("key".into()), None, true)),
            "kept, and known to be unusable"
        );
        Ok(())
    }
}
