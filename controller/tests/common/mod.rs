//! Generators shared by the property tests: namespaces, host names and
//! HTTPProxy routes.

use proptest::prelude::*;
use serde_json::{Value, json};

/// Namespaces objects are put in.
pub const NAMESPACES: [&str; 3] = ["default", "team-a", "team-b"];
/// Host names roots claim (the last one is invalid).
pub const FQDNS: [&str; 4] = [
    "a.example.com",
    "b.example.com",
    "c.example.com",
    "Bad Host!",
];

/// An HTTPProxy route: up to `max_conditions - 1` conditions from
/// `condition`, services `s0`–`s2` on port 80 or 81 with weights, maybe
/// insecure, maybe a (valid or bogus) response timeout.
pub fn route<C>(condition: C, max_conditions: usize) -> impl Strategy<Value = Value>
where
    C: Strategy<Value = Value>,
{
    (
        prop::collection::vec(condition, 0..max_conditions),
        prop::collection::vec(("[s][0-2]", prop_oneof![Just(80), Just(81)], 0i64..3), 0..3),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("5s")), Just(Some("bogus"))],
    )
        .prop_map(|(conditions, services, insecure, timeout)| {
            let services: Vec<Value> = services
                .into_iter()
                .map(|(n, p, w)| json!({"name": n, "port": p, "weight": w}))
                .collect();
            let mut r =
                json!({"conditions": conditions, "services": services, "permitInsecure": insecure});
            if let Some(t) = timeout {
                r["timeoutPolicy"] = json!({"response": t});
            }
            r
        })
}
