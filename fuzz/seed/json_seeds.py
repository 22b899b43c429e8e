#!/usr/bin/env python3
"""Writes the committed seed corpus of the json_build target
(fuzz/corpus/json_build/): a settings byte, then JSON documents of every
kind the builder reads. Deterministic; run again after changing it:
    python3 fuzz/seed/json_seeds.py
"""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEM = ROOT / "src" / "pem"
OUT = ROOT / "corpus" / "json_build"


def b64(name):
    return base64.b64encode((PEM / name).read_bytes()).decode()


def svc(ns, name, port=80, pname="http", **extra):
    spec = {"ports": [{"name": pname, "port": port, "targetPort": 8080}]}
    spec.update(extra.pop("spec", {}))
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, **extra}, "spec": spec}


def slice_(ns, svc_name, addrs, ready=True):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc_name}-x", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addrs]}


def tls_secret(ns="default", name="tls"):
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": b64("tls.crt"), "tls.key": b64("tls.key")}}


def ca_secret(ns="default"):
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "ca", "namespace": ns},
            "data": {"ca.crt": b64("ca.crt"), "crl.pem": b64("crl.pem")}}


def proxy(name, spec, ns="default"):
    return {"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": name, "namespace": ns, "generation": 1}, "spec": spec}


def route(*conds, services=(("s0", 80),), **extra):
    return {"conditions": list(conds),
            "services": [{"name": n, "port": p} for n, p in services], **extra}


SEEDS = {
    "basic": ("0", [svc("default", "s0"), slice_("default", "s0", ["10.0.0.1"]),
                    proxy("p0", {"virtualhost": {"fqdn": "a.example.com"},
                                 "routes": [route({"prefix": "/"})]})]),
    "tls": ("0", [svc("default", "s0"), tls_secret(),
                  proxy("p0", {"virtualhost": {"fqdn": "a.example.com", "tls": {"secretName": "tls"}},
                               "routes": [route({"prefix": "/"}, permitInsecure=True)]})]),
    "fallback": ("1", [svc("default", "s0"), tls_secret(),
                       proxy("p0", {"virtualhost": {"fqdn": "a.example.com",
                                                    "tls": {"secretName": "tls", "enableFallbackCertificate": True}},
                                    "routes": [route()]})]),
    "client_validation": ("0", [svc("default", "s0"), tls_secret(), ca_secret(),
                                proxy("p0", {"virtualhost": {"fqdn": "a.example.com", "tls": {
                                    "secretName": "tls", "minimumProtocolVersion": "1.3",
                                    "clientValidation": {"caSecret": "ca", "crlSecret": "ca",
                                                         "forwardClientCertificate": {"subject": True, "cert": True}}}},
                                    "routes": [route()]})]),
    "passthrough": ("0", [svc("default", "s0", 443, "https"),
                          proxy("p0", {"virtualhost": {"fqdn": "a.example.com", "tls": {"passthrough": True}},
                                       "tcpproxy": {"services": [{"name": "s0", "port": 443}]}})]),
    "tcpproxy_include": ("0", [svc("default", "s0"), tls_secret(),
                               proxy("p0", {"virtualhost": {"fqdn": "a.example.com", "tls": {"secretName": "tls"}},
                                            "tcpproxy": {"include": {"name": "p1", "namespace": "default"}}}),
                               proxy("p1", {"tcpproxy": {"services": [{"name": "s0", "port": 80, "weight": 0},
                                                                      {"name": "s1", "port": 80}]}})]),
    "includes": ("0", [svc("default", "s0"), svc("team-a", "s1"),
                       proxy("p0", {"virtualhost": {"fqdn": "a.example.com"},
                                    "includes": [{"name": "p1", "namespace": "team-a",
                                                  "conditions": [{"prefix": "/api"}]}],
                                    "routes": [route({"prefix": "/"})]}),
                       proxy("p1", {"routes": [route({"prefix": "/v1"}, services=(("s1", 80),))]}, ns="team-a")]),
    "include_loop": ("0", [svc("default", "s0"),
                           proxy("p0", {"virtualhost": {"fqdn": "a.example.com"},
                                        "includes": [{"name": "p1"}]}),
                           proxy("p1", {"includes": [{"name": "p0"}], "routes": [route()]})]),
    "conditions": ("0", [svc("default", "s0"),
                         proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [
                             route({"prefix": "/api"}, {"header": {"name": "x-a", "present": True}}),
                             route({"exact": "/exact"}, {"header": {"name": "x-b", "notcontains": "v", "ignoreCase": True}}),
                             route({"regex": "/re/[a-z]+"}, {"queryParameter": {"name": "q", "prefix": "a"}}),
                             route({"prefix": "/h"}, {"header": {"name": "x-c", "regex": "(", "treatMissingAsEmpty": True}}),
                         ]})]),
    "weights_mirror": ("0", [svc("default", "s0"), svc("default", "s1"), svc("default", "s2"),
                             proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [{
                                 "services": [{"name": "s0", "port": 80, "weight": 90},
                                              {"name": "s1", "port": 80, "weight": 10,
                                               "requestHeadersPolicy": {"set": [{"name": "x-a", "value": "1"}]}},
                                              {"name": "s2", "port": 80, "mirror": True, "weight": 50}]}]})]),
    "zero_weights": ("0", [svc("default", "s0"), svc("default", "s1"),
                           proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [{
                               "services": [{"name": "s0", "port": 80, "weight": 0},
                                            {"name": "s1", "port": 80, "weight": 0}]}]})]),
    "policies": ("0", [svc("default", "s0", annotations={"projectcontour.io/max-connections": "10",
                                                          "projectcontour.io/upstream-protocol.h2c": "80"}),
                       proxy("p0", {"virtualhost": {
                           "fqdn": "a.example.com",
                           "corsPolicy": {"allowOrigin": ["*", "https://.*\\.example\\.com"], "allowMethods": ["GET"],
                                          "maxAge": "10m", "allowCredentials": True},
                           "rateLimitPolicy": {"local": {"requests": 10, "unit": "minute", "burst": 5}},
                           "ipAllowPolicy": [{"source": "Peer", "cidr": "10.0.0.0/8"}]},
                           "routes": [route(timeoutPolicy={"response": "5s", "idle": "1m", "idleConnection": "infinity"},
                                            retryPolicy={"count": 3, "perTryTimeout": "1s", "retryOn": ["5xx"]},
                                            loadBalancerPolicy={"strategy": "RequestHash", "requestHashPolicies": [
                                                {"headerHashOptions": {"headerName": "x-a"}}, {"hashSourceIP": True}]},
                                            pathRewritePolicy={"replacePrefix": [{"prefix": "/", "replacement": "/app"}]},
                                            healthCheckPolicy={"path": "/healthz", "intervalSeconds": 5},
                                            ipDenyPolicy=[{"source": "Remote", "cidr": "1.2.3.4/32"}])]})]),
    "redirect_direct": ("0", [proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [
        {"conditions": [{"prefix": "/r"}], "requestRedirectPolicy": {"scheme": "https", "hostname": "b.example.com",
                                                                     "statusCode": 301, "prefix": "/x"}},
        {"conditions": [{"prefix": "/d"}], "directResponsePolicy": {"statusCode": 503, "body": "down"}}]})]),
    "upstream_tls": ("0", [svc("default", "s0", 443, "https"), ca_secret(),
                           proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [
                               {"services": [{"name": "s0", "port": 443, "protocol": "tls",
                                              "validation": {"caSecret": "ca", "subjectName": "a.example.com"}}]}]})]),
    "delegation": ("0", [svc("team-a", "s0"), tls_secret("default"),
                         {"apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
                          "metadata": {"name": "d", "namespace": "default"},
                          "spec": {"delegations": [{"secretName": "tls", "targetNamespaces": ["team-a"]}]}},
                         proxy("p0", {"virtualhost": {"fqdn": "a.example.com", "tls": {"secretName": "default/tls"}},
                                      "routes": [route()]}, ns="team-a")]),
    "duplicate_fqdn": ("0", [svc("default", "s0"),
                             proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [route()]}),
                             proxy("p1", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [route()]})]),
    "external_name": ("4", [svc("default", "ext", spec={"type": "ExternalName", "externalName": "example.com"}),
                            proxy("p0", {"virtualhost": {"fqdn": "a.example.com"},
                                         "routes": [route(services=(("ext", 80),))]})]),
    "ingress": ("0", [svc("default", "s0"), tls_secret(),
                      {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                       "metadata": {"name": "ing", "namespace": "default", "annotations": {
                           "projectcontour.io/response-timeout": "10s", "projectcontour.io/retry-on": "5xx",
                           "projectcontour.io/num-retries": "2", "ingress.kubernetes.io/force-ssl-redirect": "true"}},
                       "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
                                "rules": [{"host": "a.example.com", "http": {"paths": [
                                    {"path": "/", "pathType": "Prefix",
                                     "backend": {"service": {"name": "s0", "port": {"number": 80}}}},
                                    {"path": "/x", "pathType": "Exact",
                                     "backend": {"service": {"name": "s0", "port": {"name": "http"}}}}]}}]}}]),
    "ingress_default": ("8", [svc("default", "s0"),
                              {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                               "metadata": {"name": "ing", "namespace": "default",
                                            "annotations": {"kubernetes.io/ingress.class": "contour"}},
                               "spec": {"defaultBackend": {"service": {"name": "s0", "port": {"number": 80}}}}}]),
    "ingressroute": ("0", [svc("default", "s0"), tls_secret(),
                           {"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
                            "metadata": {"name": "p0", "namespace": "default"},
                            "spec": {"virtualhost": {"fqdn": "a.example.com", "tls": {"secretName": "tls"}},
                                     "routes": [{"match": "/", "services": [{"name": "s0", "port": 80, "weight": 3,
                                                                             "strategy": "Cookie",
                                                                             "healthCheck": {"path": "/hz"}}],
                                                 "timeoutPolicy": {"request": "2s"},
                                                 "retryPolicy": {"count": 2, "perTryTimeout": "1s"}},
                                                {"match": "/sub", "delegate": {"name": "p1"}}]}},
                           {"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
                            "metadata": {"name": "p1", "namespace": "default"},
                            "spec": {"routes": [{"match": "/sub", "prefixRewrite": "/",
                                                 "services": [{"name": "s0", "port": 80}]}]}}]),
    "restricted_roots": ("2", [svc("team-a", "s0"),
                               proxy("p0", {"virtualhost": {"fqdn": "a.example.com"}, "routes": [route()]},
                                     ns="team-a")]),
    "bad_values": ("0", [svc("default", "s0", -1),
                         proxy("p0", {"virtualhost": {"fqdn": "Bad Host!", "tls": {"secretName": "missing"}},
                                      "routes": [route({"prefix": "api"}, {"prefix": "/b"},
                                                       timeoutPolicy={"response": "bogus"})]}),
                         {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                          "metadata": {"name": "tls", "namespace": "default"},
                          "data": {"tls.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").decode(),
                                   "tls.key": ""}}]),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (settings, docs) in SEEDS.items():
        body = settings + "\n".join(json.dumps(d, separators=(",", ":"), sort_keys=True) for d in docs) + "\n"
        assert len(body) < 4096, f"{name} is {len(body)} bytes"
        (OUT / name).write_text(body)


if __name__ == "__main__":
    main()
