//! The deployment files are checked offline, so they cannot drift from the code:
//!
//! - `docker-compose.yml`: `docker-compose config -q` accepts it (docker-compose missing is a
//!   FAILURE, not a skip); Envoy is the version the tests run; the plugin is mounted; Envoy's
//!   configuration is rendered from `envoy/envoy.yaml.tmpl` by `scripts/render-envoy-config.sh`
//!   (rendered here too, with the compose service's own variables, and checked), and no second
//!   Envoy configuration exists.
//! - `deploy/istio/*.yaml`: the required fields, the `pluginConfig` is accepted by the plugin's
//!   own parser (and is `examples/descope.json`), and the JWKS host, ServiceEntry,
//!   DestinationRule and Istio cluster name agree.
//! - `deploy/oci/Dockerfile`: Istio's single-layer `plugin.wasm` image format.

use jwt_authn_wasm::config::{Config, JwksSource, RemoteJwks};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of a file, as JSON values (merge keys `<<` applied).
fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut v: serde_yaml::Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"));
            v.apply_merge().unwrap_or_else(|e| panic!("{rel}: merge keys: {e}"));
            serde_json::to_value(v).unwrap_or_else(|e| panic!("{rel}: not JSON-compatible: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(rel);
    assert_eq!(docs.len(), 1, "{rel}: expected one YAML document");
    docs.remove(0)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("missing string at {pointer}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

const COMPOSE: &str = "docker-compose.yml";
const WASM_ON_HOST: &str = "./target/wasm32-wasip1/release/jwt_authn_wasm.wasm";

fn compose() -> Value {
    yaml(COMPOSE)
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    c.pointer(&format!("/services/{name}")).unwrap_or_else(|| panic!("{COMPOSE}: no service `{name}`"))
}

/// A service's volumes in long syntax (the only syntax the file uses: a missing bind source
/// must be an error, not a directory created in its place).
fn volumes(svc: &Value) -> Vec<(&str, &str, &str, bool)> {
    svc["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    assert!(v.is_object(), "{COMPOSE}: use the long volume syntax, got {v}");
                    (
                        str_at(v, "/type"),
                        str_at(v, "/source"),
                        str_at(v, "/target"),
                        v["read_only"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A service's environment as a map (mapping form; numbers are written as strings).
fn environment(svc: &Value) -> BTreeMap<String, String> {
    let env = svc["environment"].as_object().unwrap_or_else(|| panic!("{COMPOSE}: environment must be a mapping"));
    env.iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{COMPOSE}: quote the value of {k}")).to_owned()))
        .collect()
}

/// The container port a `--listen HOST:PORT` argument of a demo-idp service binds.
fn listen_port(svc: &Value) -> String {
    let cmd = strings(&svc["command"]);
    let at = cmd.iter().position(|a| *a == "--listen").expect("demo-idp service without --listen");
    let addr = cmd.get(at + 1).expect("--listen needs a value");
    let (host, port) = addr.rsplit_once(':').expect("--listen HOST:PORT");
    assert_eq!(host, "0.0.0.0", "a demo-idp service must listen on all interfaces of its container");
    port.to_owned()
}

#[test]
fn compose_file_is_valid_for_docker_compose() {
    let out = Command::new("docker-compose")
        .current_dir(repo())
        .args(["-f", COMPOSE, "config", "-q"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run docker-compose ({e}): install it (Debian: `apt-get install docker-compose`; \
                 scripts/test.sh does this). This test never skips."
            )
        });
    assert!(
        out.status.success(),
        "docker-compose -f {COMPOSE} config -q failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_runs_the_tested_envoy_with_the_plugin_mounted() {
    let c = compose();
    let envoy = service(&c, "envoy");

    // The image is the Envoy the tests run (scripts/install-envoy.sh pins it).
    let installer = read("scripts/install-envoy.sh");
    let version = installer
        .lines()
        .find_map(|l| l.strip_prefix("VERSION=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("VERSION=\"...\" in scripts/install-envoy.sh");
    assert_eq!(version, "1.40.0");
    assert_eq!(str_at(envoy, "/image"), format!("envoyproxy/envoy:v{version}"));

    // The .wasm built on the host, read-only.
    let vols = volumes(envoy);
    let wasm = vols.iter().find(|v| v.1 == WASM_ON_HOST).expect("the plugin .wasm is mounted into envoy");
    assert_eq!((wasm.0, wasm.3), ("bind", true), "the plugin is a read-only bind mount");
    assert!(wasm.2.ends_with(".wasm"));

    // Listener and admin published on the host.
    let ports = strings(&envoy["ports"]);
    for p in ["10000", "9901"] {
        assert!(ports.iter().any(|m| m.ends_with(&format!(":{p}:{p}"))), "port {p} is published: {ports:?}");
    }

    // The demo IdP and the echo upstream run the demo-idp binary built from tools/idp.
    for (name, mode) in [("idp", "serve"), ("upstream", "echo")] {
        let svc = service(&c, name);
        assert_eq!(strings(&svc["command"]).first().copied(), Some(mode), "{name} runs `demo-idp {mode}`");
        assert_eq!(str_at(svc, "/build/context"), "./tools/idp");
        let dockerfile = Path::new("tools/idp").join(str_at(svc, "/build/dockerfile"));
        let text = read(dockerfile.to_str().expect("utf-8 path"));
        assert!(text.contains("--bin demo-idp") && text.contains("ENTRYPOINT [\"demo-idp\"]"), "{dockerfile:?}");
    }
    assert!(read("tools/idp/Cargo.toml").contains("name = \"demo-idp\""));
}

#[test]
fn compose_envoy_config_is_rendered_from_the_one_template() {
    let c = compose();
    let envoy = service(&c, "envoy");
    let render = service(&c, "render");

    // `render` runs deploy/compose/render.sh, which runs scripts/render-envoy-config.sh.
    assert_eq!(strings(&render["command"]), ["sh", "deploy/compose/render.sh"]);
    let script = read("deploy/compose/render.sh");
    assert!(script.contains("scripts/render-envoy-config.sh \"$TEMPLATE\" PLUGIN_CONFIG_JSON=@\"$PLUGIN_CONFIG_FILE\""));
    let env = environment(render);
    assert_eq!(env["TEMPLATE"], "envoy/envoy.yaml.tmpl");
    assert_eq!(env["PLUGIN_CONFIG_FILE"], "envoy/demo-plugin-config.json");

    // The repository directories it needs are mounted read-only where its working dir expects them.
    let workdir = str_at(render, "/working_dir");
    let render_vols = volumes(render);
    for dir in ["envoy", "scripts", "deploy/compose"] {
        assert!(
            render_vols.contains(&("bind", &format!("./{dir}"), &format!("{workdir}/{dir}"), true)),
            "render mounts ./{dir} read-only at {workdir}/{dir}: {render_vols:?}"
        );
    }

    // Envoy starts only after a successful render, and reads its output through a shared volume.
    assert_eq!(str_at(envoy, "/depends_on/render/condition"), "service_completed_successfully");
    let output = Path::new(&env["OUTPUT"]);
    let out_dir = output.parent().and_then(Path::to_str).expect("OUTPUT has a directory");
    let written = render_vols.iter().find(|v| v.0 == "volume" && v.2 == out_dir).expect("render writes to a volume");
    let envoy_vols = volumes(envoy);
    let read_by_envoy = envoy_vols.iter().find(|v| v.0 == "volume" && v.1 == written.1).expect("envoy mounts it");
    let file = output.file_name().and_then(|f| f.to_str()).expect("OUTPUT file name");
    let config_in_envoy = format!("{}/{file}", read_by_envoy.2);
    let cmd = strings(&envoy["command"]);
    assert!(
        cmd.windows(2).any(|w| w == ["-c", config_in_envoy.as_str()]),
        "envoy runs with -c {config_in_envoy}: {cmd:?}"
    );
    assert!(c.pointer(&format!("/volumes/{}", written.1)).is_some(), "named volume {} is declared", written.1);

    // The template variables fit the topology.
    let wasm_target = envoy_vols.iter().find(|v| v.1 == WASM_ON_HOST).map(|v| v.2).expect("wasm mount");
    assert_eq!(env["WASM_PATH"], wasm_target);
    assert_eq!((env["LISTEN_HOST"].as_str(), env["ADMIN_HOST"].as_str()), ("0.0.0.0", "0.0.0.0"));
    let ports = strings(&envoy["ports"]);
    for var in ["LISTEN_PORT", "ADMIN_PORT"] {
        let p = &env[var];
        assert!(ports.iter().any(|m| m.ends_with(&format!(":{p}"))), "{var}={p} is published: {ports:?}");
    }
    for (host, port, svc) in [("IDP_HOST", "IDP_PORT", "idp"), ("UPSTREAM_HOST", "UPSTREAM_PORT", "upstream")] {
        assert_eq!(env[host], svc, "{host} is the compose service name");
        assert_eq!(env[port], listen_port(service(&c, svc)), "{port} is where {svc} listens");
    }

    // Render it here exactly as the container does, and check the result.
    let tmp = std::env::temp_dir().join(format!("jwt-authn-wasm-compose-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let rendered_path = tmp.join("envoy.yaml");
    let out = Command::new("sh")
        .current_dir(repo())
        .arg("deploy/compose/render.sh")
        .envs(&env)
        .env("OUTPUT", &rendered_path)
        .output()
        .expect("run sh deploy/compose/render.sh");
    assert!(out.status.success(), "render.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let rendered = std::fs::read_to_string(&rendered_path).expect("rendered config");
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(
        rendered.lines().next(),
        read("envoy/envoy.yaml.tmpl").lines().next(),
        "the output is the template (its header comment is kept)"
    );
    let r: Value = serde_yaml::from_str(&rendered).expect("rendered config is YAML");
    let sock = |pointer: &str| {
        let s = r.pointer(pointer).unwrap_or_else(|| panic!("rendered config: no {pointer}"));
        (str_at(s, "/address").to_owned(), s["port_value"].to_string())
    };
    assert_eq!(sock("/admin/address/socket_address"), ("0.0.0.0".into(), env["ADMIN_PORT"].clone()));
    assert_eq!(
        sock("/static_resources/listeners/0/address/socket_address"),
        ("0.0.0.0".into(), env["LISTEN_PORT"].clone())
    );
    let clusters = r.pointer("/static_resources/clusters").and_then(Value::as_array).expect("clusters");
    for (name, host, port) in [("upstream", "UPSTREAM_HOST", "UPSTREAM_PORT"), ("idp", "IDP_HOST", "IDP_PORT")] {
        let cl = clusters.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("cluster {name}"));
        let s = cl
            .pointer("/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address")
            .expect("cluster endpoint");
        assert_eq!((str_at(s, "/address"), s["port_value"].to_string()), (env[host].as_str(), env[port].clone()));
    }
    let filters = r
        .pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters")
        .expect("http_filters");
    let wasm = filters
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "envoy.filters.http.wasm"))
        .expect("the wasm filter");
    assert_eq!(str_at(wasm, "/typed_config/config/vm_config/code/local/filename"), wasm_target);
    // Fail closed: a VM that fails to start or crashes refuses requests, never lets them by;
    // FAIL_RELOAD also gives the next request a fresh VM (FAIL_CLOSED: 503 until a restart).
    assert_eq!(wasm.pointer("/typed_config/config/fail_open"), Some(&Value::Bool(false)));
    assert_eq!(str_at(wasm, "/typed_config/config/failure_policy"), "FAIL_RELOAD");
    // Rules see :path after Envoy normalised it (README "Rules").
    let hcm = r.pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config").expect("HCM");
    assert_eq!((&hcm["normalize_path"], &hcm["merge_slashes"]), (&Value::Bool(true), &Value::Bool(true)));
    assert_eq!(str_at(hcm, "/path_with_escaped_slashes_action"), "UNESCAPE_AND_REDIRECT");
    let plugin_config = str_at(wasm, "/typed_config/config/configuration/value");
    let parsed = Config::parse(plugin_config.as_bytes()).unwrap_or_else(|e| panic!("rendered plugin config: {e}"));
    let JwksSource::Remote(jwks) = &parsed.providers[0].jwks else { panic!("the demo fetches its keys") };
    assert!(
        clusters.iter().any(|c| c["name"] == jwks.cluster.as_str()),
        "the JWKS cluster `{}` exists in the rendered config",
        jwks.cluster
    );
}

#[test]
fn there_is_no_second_envoy_config() {
    // Envoy's configuration only ever comes from the envoy/*.yaml.tmpl templates.
    let mut files = vec![repo().join(COMPOSE)];
    let mut dirs = vec![repo().join("deploy")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for marker in ["static_resources:", "envoy.filters.network.http_connection_manager"] {
            assert!(!text.contains(marker), "{} looks like a hand-written Envoy config ({marker})", f.display());
        }
    }
    let c = compose();
    for (_, source, _, _) in volumes(service(&c, "envoy")) {
        assert!(!source.ends_with(".yaml") && !source.ends_with(".yml"), "envoy mounts a config file: {source}");
    }
}

// ---------------------------------------------------------------------------------------------
// Istio

const WASMPLUGIN: &str = "deploy/istio/wasmplugin.yaml";
const SERVICEENTRY: &str = "deploy/istio/serviceentry.yaml";

fn wasmplugin() -> Value {
    yaml(WASMPLUGIN)
}

/// The WasmPlugin's pluginConfig as the plugin sees it (Istio passes it as JSON).
fn plugin_config(wp: &Value) -> (Value, Config) {
    let pc = wp.pointer("/spec/pluginConfig").cloned().expect("spec.pluginConfig");
    let json = serde_json::to_string(&pc).expect("to JSON");
    let config = Config::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{WASMPLUGIN} pluginConfig: {e}"));
    (pc, config)
}

fn remote_jwks(c: &Config) -> &RemoteJwks {
    assert_eq!(c.providers.len(), 1, "one provider");
    let JwksSource::Remote(r) = &c.providers[0].jwks else { panic!("the Istio example fetches its keys") };
    r
}

fn by_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "{SERVICEENTRY}: exactly one {kind}");
    found[0]
}

#[test]
fn wasmplugin_manifest_is_complete() {
    let wp = wasmplugin();
    assert_eq!(str_at(&wp, "/apiVersion"), "extensions.istio.io/v1alpha1");
    assert_eq!(str_at(&wp, "/kind"), "WasmPlugin");
    assert!(!str_at(&wp, "/metadata/name").is_empty());
    assert!(!str_at(&wp, "/metadata/namespace").is_empty());
    let labels = wp.pointer("/spec/selector/matchLabels").and_then(Value::as_object).expect("selector.matchLabels");
    assert!(!labels.is_empty());
    assert!(str_at(&wp, "/spec/url").starts_with("oci://"), "the plugin comes from an OCI image");
    assert!(["IfNotPresent", "Always"].contains(&str_at(&wp, "/spec/imagePullPolicy")));
    assert_eq!(str_at(&wp, "/spec/phase"), "AUTHN");
    assert_eq!(str_at(&wp, "/spec/failStrategy"), "FAIL_CLOSE");
    assert_eq!(str_at(&wp, "/spec/type"), "HTTP");

    let (_, config) = plugin_config(&wp);
    let p = &config.providers[0];
    assert_eq!(p.name, "descope");
    assert!(p.issuers.iter().any(|i| i.starts_with("https://api.descope.com/")), "{:?}", p.issuers);
}

#[test]
fn wasmplugin_config_is_the_descope_example() {
    // deploy/istio/wasmplugin.yaml carries examples/descope.json; only the cluster differs.
    let (pc, _) = plugin_config(&wasmplugin());
    let mut example: Value = serde_json::from_str(&read("examples/descope.json")).expect("examples/descope.json");
    let cluster = "/providers/descope/descope/cluster";
    assert_eq!(str_at(&example, cluster), "descope");
    *example.pointer_mut(cluster).expect("cluster") = pc.pointer(cluster).cloned().expect("cluster");
    assert_eq!(pc, example, "{WASMPLUGIN} pluginConfig and examples/descope.json differ");
}

#[test]
fn jwks_host_serviceentry_and_cluster_agree() {
    let wp = wasmplugin();
    let (_, config) = plugin_config(&wp);
    let jwks = remote_jwks(&config);
    let uri = jwks.uri.strip_prefix("https://").expect("the JWKS is fetched over https");
    let (host, port) = match jwks.authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u64>().expect("port")),
        None => (jwks.authority.as_str(), 443),
    };
    assert!(uri.starts_with(&jwks.authority));
    assert_eq!(host, "api.descope.com");

    let docs = yaml_docs(SERVICEENTRY);
    let se = by_kind(&docs, "ServiceEntry");
    assert_eq!(str_at(se, "/apiVersion"), "networking.istio.io/v1");
    assert!(!str_at(se, "/metadata/name").is_empty());
    assert_eq!(strings(&se["spec"]["hosts"]), [host], "the ServiceEntry host is the JWKS host");
    assert_eq!(str_at(se, "/spec/location"), "MESH_EXTERNAL");
    assert_eq!(str_at(se, "/spec/resolution"), "DNS");
    let se_ports = se.pointer("/spec/ports").and_then(Value::as_array).expect("ports");
    assert!(se_ports.iter().any(|p| p["number"] == port), "the ServiceEntry has port {port}");

    // Istio's cluster for that ServiceEntry port: outbound|<port>||<host>.
    assert_eq!(jwks.cluster, format!("outbound|{port}||{host}"));

    // The cluster originates TLS (the filter speaks HTTP to it), on the plugin's gateway only.
    let dr = by_kind(&docs, "DestinationRule");
    assert_eq!(str_at(dr, "/apiVersion"), "networking.istio.io/v1");
    assert!(!str_at(dr, "/metadata/name").is_empty());
    assert_eq!(str_at(dr, "/spec/host"), host);
    let pls = dr.pointer("/spec/trafficPolicy/portLevelSettings").and_then(Value::as_array).expect("portLevelSettings");
    let tls = pls.iter().find(|s| s.pointer("/port/number") == Some(&Value::from(port))).expect("settings for port");
    assert_eq!(str_at(tls, "/tls/mode"), "SIMPLE");
    assert_eq!(str_at(tls, "/tls/sni"), host);
    assert_eq!(strings(&tls["tls"]["subjectAltNames"]), [host], "the certificate must name the JWKS host");
    assert_eq!(dr.pointer("/spec/workloadSelector/matchLabels"), wp.pointer("/spec/selector/matchLabels"));
    for d in [se, dr] {
        assert_eq!(d.pointer("/metadata/namespace"), wp.pointer("/metadata/namespace"), "one namespace");
    }
}

#[test]
fn oci_dockerfile_is_istio_image_format() {
    let text = read("deploy/oci/Dockerfile");
    let instructions: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(instructions, ["FROM scratch", "COPY jwt_authn_wasm.wasm ./plugin.wasm"]);
}
