//! A versioned snapshot of every resource. Each resource's version is a hash
//! of its canonical bytes, so an unchanged resource keeps its version across
//! rebuilds and is never pushed again.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use imbl::OrdMap;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use sha2::{Digest, Sha256};

use super::type_url;
use crate::envoy::Resources;
use crate::envoy::canonical::canonical_bytes;
use crate::envoy::json::JsonError;
use crate::envoy::message_name;

/// One resource with its version. Two are equal when their names, types and
/// versions are (the version is a hash of the bytes), so comparing them never
/// compares bodies, and an `Arc` of one compares by pointer first.
#[derive(Debug, Clone)]
pub struct VersionedResource {
    /// Resource name.
    pub name: String,
    /// Hash of the canonical bytes.
    pub version: String,
    /// The type URL of the resource.
    pub type_url: String,
    /// The resource, canonically encoded; shared (not copied) by every
    /// response that carries it.
    pub value: Bytes,
    /// Its ADS form (see [`VersionedResource::for_ads`]), made when an ADS
    /// stream first sends it; `None` inside when it is the same.
    pub ads: OnceLock<Option<Arc<VersionedResource>>>,
}

/// All resources of one type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeSnapshot {
    /// Hash over every (name, version) pair.
    pub version: String,
    /// Resources by name, in a persistent map: a clone shares it, and
    /// [`TypeSnapshot::insert`] / [`TypeSnapshot::remove`] change one entry
    /// and the version without visiting the others.
    pub resources: OrdMap<String, Arc<VersionedResource>>,
    /// XOR of the hash of every `(name, version)`.
    digest: u64,
}

/// Resources of every type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// By type URL.
    pub types: BTreeMap<&'static str, TypeSnapshot>,
}

impl Snapshot {
    /// Versions every resource of a translation.
    pub fn build(r: &Resources) -> Result<Snapshot, JsonError> {
        let mut types = BTreeMap::new();
        types.insert(type_url::LISTENER, versioned(&r.listeners, |l| &l.name)?);
        types.insert(type_url::ROUTE, versioned(&r.routes, |r| &r.name)?);
        types.insert(
            type_url::SCOPED_ROUTE,
            versioned(&r.scoped_routes, |r| &r.name)?,
        );
        types.insert(type_url::CLUSTER, versioned(&r.clusters, |c| &c.name)?);
        types.insert(
            type_url::ENDPOINT,
            versioned(&r.endpoints, |e| &e.cluster_name)?,
        );
        types.insert(type_url::SECRET, versioned(&r.secrets, |s| &s.name)?);
        types.insert(type_url::RUNTIME, runtime_snapshot(&r.runtimes)?);
        Ok(Snapshot { types })
    }

    /// The resources of a type (empty when there are none).
    pub fn of(&self, type_url: &str) -> Option<&TypeSnapshot> {
        self.types.get(type_url)
    }
}

/// The RTDS type snapshot of these layers.
pub fn runtime_snapshot(
    layers: &[envoy_types::pb::envoy::service::runtime::v3::Runtime],
) -> Result<TypeSnapshot, JsonError> {
    versioned(layers, |r| &r.name)
}

/// Versions every item of one type (named by `name`).
pub fn versioned<M: Message + Name>(
    items: &[M],
    name: impl Fn(&M) -> &String,
) -> Result<TypeSnapshot, JsonError> {
    let mut resources = BTreeMap::new();
    for item in items {
        let bytes = canonical_bytes(&M::full_name(), item)?;
        let n = name(item).clone();
        resources.insert(
            n.clone(),
            Arc::new(VersionedResource::new(n, M::type_url(), bytes)),
        );
    }
    Ok(TypeSnapshot::new(resources))
}

impl PartialEq for VersionedResource {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.name == other.name && self.type_url == other.type_url
    }
}

impl Eq for VersionedResource {}

impl VersionedResource {
    /// A resource of type `type_url` from its canonical bytes, versioned by
    /// their hash.
    pub fn new(name: String, type_url: String, canonical: Vec<u8>) -> Self {
        Self {
            name,
            version: hex(&Sha256::digest(&canonical)[..8]),
            type_url,
            value: Bytes::from(canonical),
            ads: OnceLock::new(),
        }
    }

    /// The resource as an Envoy on an ADS stream gets it: listeners and
    /// clusters with their RDS/EDS/SDS references pointing at that stream
    /// (see [`crate::envoy::ads`]); the same resource otherwise, and also
    /// should its bytes not take the rewrite (never expected; the per-type
    /// form still works over ADS, at the cost of a stream per reference).
    /// Made once per resource and shared by every ADS stream.
    pub fn for_ads(self: &Arc<Self>) -> Arc<Self> {
        let type_name = match self.type_url.as_str() {
            type_url::LISTENER | type_url::CLUSTER => Some(message_name(&self.type_url)),
            _ => None,
        };
        let Some(type_name) = type_name else {
            return Arc::clone(self);
        };
        let form = self.ads.get_or_init(|| {
            match crate::envoy::ads::ads_form(type_name, &self.value) {
                Ok(Some(bytes)) => Some(Arc::new(VersionedResource {
                    name: self.name.clone(),
                    version: self.version.clone(),
                    type_url: self.type_url.clone(),
                    value: Bytes::from(bytes),
                    ads: OnceLock::from(None),
                })),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(resource = %self.name, error = %e, "no ADS form; sending the per-type form");
                    None
                }
            }
        });
        form.clone().unwrap_or_else(|| Arc::clone(self))
    }

    /// The resource as a stream sends it: its ADS form on an aggregated
    /// stream ([`VersionedResource::for_ads`]), itself on a per-type one.
    pub fn form(self: &Arc<Self>, aggregated: bool) -> Arc<Self> {
        if aggregated {
            self.for_ads()
        } else {
            Arc::clone(self)
        }
    }

    /// The resource as a protobuf `Any` (a copy of its bytes).
    pub fn any(&self) -> Any {
        Any {
            type_url: self.type_url.clone(),
            value: self.value.to_vec(),
        }
    }
}

impl TypeSnapshot {
    /// The resources of a type, versioned together by a hash over every
    /// `(name, version)` (independent of order, see [`TypeSnapshot::insert`]).
    pub fn new(resources: impl IntoIterator<Item = (String, Arc<VersionedResource>)>) -> Self {
        let mut out = Self::default();
        for (_, r) in resources {
            out.put(r);
        }
        out.seal();
        out
    }

    /// Adds or replaces a resource (by its name).
    pub fn insert(&mut self, r: Arc<VersionedResource>) {
        self.put(r);
        self.seal();
    }

    /// Removes the resource `name`, if there is one.
    pub fn remove(&mut self, name: &str) {
        if let Some(old) = self.resources.remove(name) {
            self.digest ^= entry_hash(&old);
            self.seal();
        }
    }

    fn put(&mut self, r: Arc<VersionedResource>) {
        self.digest ^= entry_hash(&r);
        if let Some(old) = self.resources.insert(r.name.clone(), r) {
            self.digest ^= entry_hash(&old);
        }
    }

    fn seal(&mut self) {
        self.version = format!("{:016x}", self.digest);
    }
}

/// The hash of one `(name, version)`: names are unique within a type, so
/// the XOR of these over a type changes whenever any entry does.
fn entry_hash(r: &VersionedResource) -> u64 {
    let mut h = Sha256::new();
    h.update(r.name.as_bytes());
    h.update([0]);
    h.update(r.version.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
    use envoy_types::pb::google::protobuf::Any;

    use super::*;

    fn routes(domain: &str) -> Resources {
        let vhost = VirtualHost {
            name: "a".into(),
            domains: vec![domain.into()],
            typed_per_filter_config: ["x", "y", "z", "w"]
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        Any {
                            type_url: "type.googleapis.com/unknown".into(),
                            value: vec![1],
                        },
                    )
                })
                .collect(),
            ..Default::default()
        };
        Resources {
            routes: vec![RouteConfiguration {
                name: "ingress_http".into(),
                virtual_hosts: vec![vhost],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn versions_depend_on_content_only() -> TestResult {
        let a = Snapshot::build(&routes("a.example.com"))?;
        let b = Snapshot::build(&routes("a.example.com"))?;
        assert_eq!(
            a, b,
            "equal resources built separately have equal versions and bytes"
        );
        let c = Snapshot::build(&routes("c.example.com"))?;
        let (ra, rc) = (&a.types[type_url::ROUTE], &c.types[type_url::ROUTE]);
        assert_ne!(ra.version, rc.version);
        assert_ne!(
            ra.resources["ingress_http"].version,
            rc.resources["ingress_http"].version
        );
        assert_eq!(
            a.types[type_url::CLUSTER],
            c.types[type_url::CLUSTER],
            "other types are untouched"
        );
        Ok(())
    }
}
