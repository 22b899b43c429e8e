//! The DAG as Graphviz `dot` (served on `/debug/dag`): listeners → virtual
//! hosts → routes → clusters.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Dag, PathMatch, Route, RouteAction, VirtualHost};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn path(p: &PathMatch) -> String {
    match p {
        PathMatch::Prefix { prefix, .. } => format!("prefix: {prefix}"),
        PathMatch::Exact(e) => format!("exact: {e}"),
        PathMatch::Regex(r) => format!("regex: {r}"),
    }
}

fn routes(out: &mut String, clusters: &mut BTreeSet<String>, vhost_id: &str, rs: &[Route]) {
    for (i, r) in rs.iter().enumerate() {
        let id = format!("{vhost_id}#{i}");
        let _ = writeln!(
            out,
            "  {} [shape=box label={}];",
            quote(&id),
            quote(&path(&r.path))
        );
        let _ = writeln!(out, "  {} -> {};", quote(vhost_id), quote(&id));
        if let RouteAction::Forward(wcs) = &r.action {
            for wc in wcs {
                let name = crate::envoy::cluster::cluster_name(&wc.cluster);
                let _ = writeln!(
                    out,
                    "  {} -> {} [label=\"{}\"];",
                    quote(&id),
                    quote(&name),
                    wc.weight
                );
                clusters.insert(name);
            }
        }
    }
}

fn vhost(
    out: &mut String,
    clusters: &mut BTreeSet<String>,
    listener: &str,
    id: &str,
    v: &VirtualHost,
) {
    let _ = writeln!(out, "  {} [label={}];", quote(id), quote(&v.name));
    let _ = writeln!(out, "  {} -> {};", quote(listener), quote(id));
    routes(out, clusters, id, &v.routes);
}

/// Renders the DAG.
pub fn to_dot(dag: &Dag) -> String {
    let mut out = String::from("digraph DAG {\n  rankdir=\"LR\";\n");
    let mut clusters = BTreeSet::new();
    for (name, l) in &dag.listeners {
        let _ = writeln!(
            out,
            "  {} [shape=diamond label={}];",
            quote(name),
            quote(&format!("{name} :{}", l.port))
        );
        for (host, v) in &l.virtual_hosts {
            vhost(&mut out, &mut clusters, name, &format!("{name}/{host}"), v);
        }
        for (host, s) in &l.secure_virtual_hosts {
            vhost(
                &mut out,
                &mut clusters,
                name,
                &format!("{name}/{host}"),
                &s.virtual_host,
            );
        }
    }
    for c in clusters {
        let _ = writeln!(out, "  {} [shape=ellipse style=filled];", quote(&c));
    }
    out.push_str("}\n");
    out
}
