use clap::Parser;
use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;

use super::*;
use crate::envoy::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BootstrapArgs,
}

fn settings(flags: &[&str]) -> Result<Settings, Box<dyn std::error::Error>> {
    let argv = std::iter::once("bootstrap").chain(flags.iter().copied());
    Ok(Cli::try_parse_from(argv)?.args.settings()?)
}

/// The bootstrap file's JSON (the last file).
fn main_json(s: &Settings) -> Value {
    build(s).pop().map(|f| f.json).unwrap_or(Value::Null)
}

fn cluster<'a>(b: &'a Value, name: &str) -> &'a Value {
    b["static_resources"]["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Envoy's own schema accepts it (unknown fields and bad enums are errors).
fn assert_valid(files: &[OutputFile]) -> TestResult {
    for f in files {
        if f.json.get("resources").is_some() {
            json::from_json::<DiscoveryResponse>(&f.json)?;
        } else {
            json::from_json::<Bootstrap>(&f.json)?;
        }
    }
    Ok(())
}

#[test]
fn defaults_aggregate_every_subscription_on_one_delta_ads_stream() -> TestResult {
    assert_eq!(settings(&["-"])?, Settings::default());
    assert_eq!(Settings::default().xds_mode, XdsMode::DeltaAds);
    assert_eq!(
        settings(&["-", "--xds-mode", "delta-ads"])?,
        Settings::default()
    );
    let s = settings(&["-"])?;
    let b = main_json(&s);
    let ads = json!({"ads": {}, "resource_api_version": "V3"});
    let d = &b["dynamic_resources"];
    assert_eq!(d["lds_config"], ads);
    assert_eq!(d["cds_config"], ads);
    assert_eq!(d["ads_config"]["api_type"], "DELTA_GRPC");
    assert_eq!(d["ads_config"]["set_node_on_first_message_only"], true);
    assert_eq!(
        d["ads_config"]["grpc_services"][0]["envoy_grpc"],
        json!({"cluster_name": "contour", "authority": "contour"})
    );
    assert_eq!(
        b["layered_runtime"]["layers"][0]["rtds_layer"]["rtds_config"],
        ads
    );

    let contour = cluster(&b, "contour");
    assert_eq!(contour["type"], "STATIC");
    assert_eq!(contour["alt_stat_name"], "projectcontour_contour_8001");
    assert_eq!(contour["connect_timeout"], "5s");
    assert_eq!(
        contour["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        json!({"socket_address": {"address": "127.0.0.1", "port_value": 8001}})
    );
    let thresholds = &contour["circuit_breakers"]["thresholds"];
    assert_eq!(thresholds[0]["priority"], "HIGH");
    assert_eq!(thresholds[1]["max_requests"], 60000000);
    assert!(contour.get("transport_socket").is_none());
    assert_eq!(
        contour["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            ["explicit_http_config"],
        json!({"http2_protocol_options": {}})
    );

    let pipe = json!({"pipe": {"path": "/admin/admin.sock", "mode": 420}});
    assert_eq!(b["admin"]["address"], pipe);
    let admin = cluster(&b, "envoy-admin");
    assert_eq!(admin["alt_stat_name"], "projectcontour_envoy-admin_9001");
    assert_eq!(
        admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        pipe
    );
    assert!(b.get("overload_manager").is_none());
    assert_valid(&build(&s))
}

#[test]
fn per_type_streams_have_no_ads() -> TestResult {
    let s = settings(&["-", "--xds-mode", "per-type"])?;
    let b = main_json(&s);
    let d = &b["dynamic_resources"];
    assert!(d.get("ads_config").is_none());
    for key in ["lds_config", "cds_config"] {
        assert_eq!(d[key]["api_config_source"]["api_type"], "GRPC");
        assert_eq!(
            d[key]["api_config_source"]["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            "contour"
        );
        assert!(d[key].get("ads").is_none());
    }
    assert!(
        b["layered_runtime"]["layers"][0]["rtds_layer"]["rtds_config"]
            .get("api_config_source")
            .is_some()
    );
    assert_valid(&build(&s))
}

#[test]
fn ads_is_the_same_stream_in_state_of_the_world() -> TestResult {
    let s = settings(&["-", "--xds-mode", XdsMode::Ads.flag()])?;
    assert_eq!(s.xds_mode, XdsMode::Ads);
    for mode in [XdsMode::DeltaAds, XdsMode::PerType] {
        assert_eq!(settings(&["-", "--xds-mode", mode.flag()])?.xds_mode, mode);
    }
    for mode in [XdsMode::Ads, XdsMode::DeltaAds, XdsMode::PerType] {
        assert_eq!(XdsMode::from_flag(mode.flag()), Some(mode));
    }
    assert_eq!(XdsMode::from_flag("delta"), None);
    let b = main_json(&s);
    let delta = main_json(&Settings::default());
    let d = &b["dynamic_resources"];
    assert_eq!(d["ads_config"]["api_type"], "GRPC");
    // Everything else is the default's: every source is the ADS stream.
    let mut same = b.clone();
    same["dynamic_resources"]["ads_config"]["api_type"] = json!("DELTA_GRPC");
    assert_eq!(same, delta);
    assert_valid(&build(&s))
}

#[test]
fn admin_port_puts_the_admin_on_loopback_tcp() -> TestResult {
    let s = settings(&["-", "--admin-port", "19001"])?;
    let b = main_json(&s);
    let tcp = json!({"socket_address": {"address": "127.0.0.1", "port_value": 19001}});
    assert_eq!(b["admin"]["address"], tcp);
    let admin = cluster(&b, "envoy-admin");
    assert_eq!(
        admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        tcp
    );
    assert_eq!(admin["alt_stat_name"], "projectcontour_envoy-admin_19001");
    assert_valid(&build(&s))
}

#[test]
fn a_custom_admin_socket_is_used_by_both_admin_and_its_cluster() -> TestResult {
    let b = main_json(&settings(&[
        "-",
        "--admin-address",
        "/run/envoy/admin.sock",
    ])?);
    let pipe = json!({"pipe": {"path": "/run/envoy/admin.sock", "mode": 420}});
    assert_eq!(b["admin"]["address"], pipe);
    assert_eq!(
        cluster(&b, "envoy-admin")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"],
        pipe
    );
    Ok(())
}

#[test]
fn stats_listener_forwards_only_stats_and_ready_to_the_admin() -> TestResult {
    let b = main_json(&settings(&[
        "-",
        "--stats-address",
        "127.0.0.1",
        "--stats-port",
        "9102",
    ])?);
    let listeners = b["static_resources"]["listeners"]
        .as_array()
        .ok_or("no listeners")?;
    assert_eq!(listeners.len(), 1);
    let l = &listeners[0];
    assert_eq!(l["name"], "stats-health");
    assert_eq!(
        l["address"],
        json!({"socket_address": {"address": "127.0.0.1", "port_value": 9102}})
    );
    let hcm = &l["filter_chains"][0]["filters"][0]["typed_config"];
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .ok_or("no routes")?;
    let paths: Vec<&str> = routes
        .iter()
        .filter_map(|r| r["match"]["path"].as_str())
        .collect();
    assert_eq!(paths, ["/ready", "/stats", "/stats/prometheus"]);
    assert!(
        routes
            .iter()
            .all(|r| r["route"]["cluster"] == "envoy-admin")
    );
    assert!(
        routes
            .iter()
            .all(|r| r["match"]["headers"][0]["string_match"]["exact"] == "GET")
    );

    let none = main_json(&settings(&["-", "--stats-port", "0"])?);
    assert!(none["static_resources"].get("listeners").is_none());
    Ok(())
}

#[test]
fn a_dns_name_makes_the_contour_cluster_strict_dns() -> TestResult {
    let s = settings(&[
        "-",
        "--xds-address",
        "contour",
        "--xds-port",
        "8443",
        "--namespace",
        "heptio-contour",
        "--dns-lookup-family",
        "v4",
    ])?;
    let b = main_json(&s);
    let c = cluster(&b, "contour");
    assert_eq!(c["type"], "STRICT_DNS");
    assert_eq!(c["dns_lookup_family"], "V4_ONLY");
    assert_eq!(c["alt_stat_name"], "heptio-contour_contour_8443");
    assert_valid(&build(&s))
}

fn tls_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "/config/envoy.json",
        "--envoy-cafile",
        "/certs/ca.crt",
        "--envoy-cert-file",
        "/certs/tls.crt",
        "--envoy-key-file",
        "/certs/tls.key",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn tls_files_are_named_inline_without_a_resources_dir() -> TestResult {
    let s = settings(&tls_flags(&[]))?;
    let files = build(&s);
    assert_eq!(files.len(), 1);
    let b = &files[0].json;
    let socket = &cluster(b, "contour")["transport_socket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let common = &socket["typed_config"]["common_tls_context"];
    assert_eq!(
        common["tls_certificates"][0],
        json!({"certificate_chain": {"filename": "/certs/tls.crt"}, "private_key": {"filename": "/certs/tls.key"}})
    );
    assert_eq!(
        common["validation_context"]["trusted_ca"]["filename"],
        "/certs/ca.crt"
    );
    assert_eq!(
        common["validation_context"]["match_typed_subject_alt_names"],
        json!([{"san_type": "DNS", "matcher": {"exact": "contour"}}])
    );
    assert_valid(&files)
}

#[test]
fn tls_through_sds_files_with_a_resources_dir() -> TestResult {
    let s = settings(&tls_flags(&["--resources-dir", "/config/resources"]))?;
    let files = build(&s);
    let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        [
            PathBuf::from("/config/resources/sds/xds-tls-certificate.json"),
            PathBuf::from("/config/resources/sds/xds-validation-context.json"),
            PathBuf::from("/config/envoy.json"),
        ]
    );
    let cert = &files[0].json["resources"][0];
    assert_eq!(cert["name"], "contour_xds_tls_certificate");
    assert_eq!(
        cert["tls_certificate"]["private_key"]["filename"],
        "/certs/tls.key"
    );
    let ca = &files[1].json["resources"][0];
    assert_eq!(ca["name"], "contour_xds_tls_validation_context");
    let common = &cluster(&files[2].json, "contour")["transport_socket"]["typed_config"]["common_tls_context"];
    assert_eq!(
        common["tls_certificate_sds_secret_configs"][0]["sds_config"]["path_config_source"]["path"],
        "/config/resources/sds/xds-tls-certificate.json"
    );
    assert_eq!(
        common["validation_context_sds_secret_config"]["name"],
        "contour_xds_tls_validation_context"
    );
    assert_valid(&files)
}

#[test]
fn overload_limits_add_the_overload_manager() -> TestResult {
    let s = settings(&[
        "-",
        "--overload-max-heap",
        "2147483648",
        "--overload-downstream-max-conn",
        "1000",
    ])?;
    let o = &main_json(&s)["overload_manager"];
    assert_eq!(o["resource_monitors"].as_array().map(Vec::len), Some(2));
    assert_eq!(o["actions"].as_array().map(Vec::len), Some(2));
    assert_valid(&build(&s))
}

#[test]
fn bad_flags_say_what_is_wrong() -> TestResult {
    let partial = settings(&["-", "--envoy-cafile", "/ca.crt"]);
    assert!(
        partial
            .err()
            .is_some_and(|e| e.to_string().contains("you must supply all TLS parameters"))
    );
    for address in ["localhost", "0.0.0.0", "::1"] {
        let e = settings(&["-", "--admin-address", address]).err();
        assert!(
            e.is_some_and(|e| e
                .to_string()
                .contains("cannot be `localhost` or an ip address")),
            "{address}"
        );
    }
    let e = settings(&["-", "--xds-resource-version", "v2"]).err();
    assert!(e.is_some_and(|e| e.to_string().contains("only \"v3\"")));
    assert!(settings(&["-", "--overload-downstream-max-conn", "-1"]).is_err());
    Ok(())
}

#[test]
fn the_schema_check_refuses_a_misspelt_field() {
    let mut files = build(&Settings::default());
    if let Some(f) = files.last_mut() {
        f.json["admin"]["adress"] = json!({});
    }
    assert!(assert_valid(&files).is_err());
}
