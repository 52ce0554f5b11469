//! Shared helpers for tests that run a real Envoy (`mod support;` from `tests/*.rs`).
//!
//! - [`envoy_bin`] / [`wasm_path`]: the Envoy binary and the built plugin; missing ones FAIL
//!   the test with a message saying how to get them (never a skip).
//! - [`render`]: the template renderer (same rules as `scripts/render-envoy-config.sh`).
//! - [`EnvoyProcess`]: renders a template from `envoy/` into a temp dir, runs Envoy on free
//!   loopback ports (the OS picks them: ports are 0 in the config and read back from the
//!   admin interface, so parallel tests never race for a port), waits until it is LIVE and
//!   its listener accepts, and kills it on drop (printing its log if the test failed).
//! - [`http_get`] / [`http_request`]: a tiny blocking HTTP/1.1 client with timeouts.
//!
//! Every wait has a deadline: a broken plugin or Envoy fails the test, never hangs it.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use demo_idp::http::{percent_encode, ClientResponse as Response, Timeouts};

/// How long Envoy may take to become LIVE (V8 compiles the plugin at start-up).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The wasm template (`envoy/envoy.yaml.tmpl`).
pub const WASM_TEMPLATE: &str = "envoy.yaml.tmpl";
/// The native jwt_authn template (`envoy/jwt_authn.yaml.tmpl`).
pub const JWT_AUTHN_TEMPLATE: &str = "jwt_authn.yaml.tmpl";

/// The repository root (the main crate's directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Envoy binary: `$ENVOY_BIN`, else `<repo>/.local/envoy/envoy/_bin/envoy`.
///
/// # Panics
/// If it does not exist (with instructions).
pub fn envoy_bin() -> PathBuf {
    let (path, from_env) = match std::env::var_os("ENVOY_BIN") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (repo_root().join(".local/envoy/envoy/_bin/envoy"), false),
    };
    if !path.is_file() {
        if from_env {
            panic!("ENVOY_BIN={} does not exist", path.display());
        }
        panic!(
            "Envoy not found at {}: run scripts/install-envoy.sh (or set ENVOY_BIN). \
             Real-Envoy tests never skip.",
            path.display()
        );
    }
    path
}

/// The built plugin: `$JWT_WASM_PATH`, else `<repo>/target/wasm32-wasip1/release/jwt_authn_wasm.wasm`
/// (always under `<repo>/target`, whatever `CARGO_TARGET_DIR` the tests were built with).
///
/// # Panics
/// If it does not exist (with the build command).
pub fn wasm_path() -> PathBuf {
    let (path, from_env) = match std::env::var_os("JWT_WASM_PATH") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (repo_root().join("target/wasm32-wasip1/release/jwt_authn_wasm.wasm"), false),
    };
    if !path.is_file() {
        if from_env {
            panic!("JWT_WASM_PATH={} does not exist", path.display());
        }
        panic!(
            "the plugin is not built: {} is missing. Build it with \
             `cargo build --release --target wasm32-wasip1 -p jwt-authn-wasm --lib` \
             (without CARGO_TARGET_DIR), or set JWT_WASM_PATH.",
            path.display()
        );
    }
    path
}

/// `<repo>/envoy/<name>`, or `name` itself if it is a path to an existing file.
pub fn template_path(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() || p.is_file() {
        return p.to_path_buf();
    }
    repo_root().join("envoy").join(name)
}

/// Renders an Envoy template. Placeholders (not on comment lines, whose first non-blank
/// character is `#`): `${NAME}` (verbatim), `${NAME:-default}`, `${NAME:json}` (the value
/// must be JSON; inserted compact), `${NAME:json-string}` (the value must be JSON; its
/// compact text inserted as a quoted string). Unset variables without default are errors.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("unclosed placeholder in line {line:?}"))?;
            out.push_str(&expand(&after[..end], vars)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

fn expand(inner: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let (name, default, mode) = if let Some((n, d)) = inner.split_once(":-") {
        (n, Some(d), None)
    } else if let Some((n, m)) = inner.split_once(':') {
        (n, None, Some(m))
    } else {
        (inner, None, None)
    };
    let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name || !matches!(mode, None | Some("json") | Some("json-string")) {
        return Err(format!("unsupported placeholder ${{{inner}}}"));
    }
    let value = match (vars.get(name), default) {
        (Some(v), _) => v.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err(format!("variable {name} is not set")),
    };
    match mode {
        None => Ok(value),
        Some(m) => {
            let parsed: serde_json::Value =
                serde_json::from_str(&value).map_err(|e| format!("{name} is not valid JSON: {e}"))?;
            // serde_json keeps the last of duplicate members; the plugin's parser refuses them.
            if parsed.is_object() {
                jwt_authn_wasm::json::parse_object(value.as_bytes(), 64)
                    .map_err(|e| format!("{name} is not valid JSON: {e}"))?;
            }
            let compact = parsed.to_string();
            Ok(if m == "json" { compact } else { serde_json::Value::String(compact).to_string() })
        }
    }
}

/// `GET path` on `addr` with `Connection: close` (5 s to connect, 10 s per read).
///
/// # Panics
/// On any I/O error or timeout, naming the request.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    http_request(addr, "GET", path, headers, b"")
}

/// One request with `Connection: close`; panics on I/O errors and timeouts.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_http_request(addr, method, path, headers, body, Timeouts::default())
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path} failed: {e}"))
}

/// One request with `Connection: close`, with explicit timeouts.
pub fn try_http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeouts: Timeouts,
) -> io::Result<Response> {
    demo_idp::http::request(addr, method, path, headers, body, timeouts)
}

/// `Authorization: Bearer <token>` as a header pair (the String owns the value).
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A temp directory removed on drop (kept, with its path printed, if the test failed).
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Do not remove the directory on drop.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() {
            eprintln!("(kept {} for inspection)", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A distinct `--base-id` for every Envoy this process starts: pid and a counter.
fn next_base_id() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst) % 1000;
    (std::process::id() % 1_000_000) * 1000 + n
}

/// A running Envoy. Killed (and waited for) on drop; if the test is failing, its log is
/// printed to stderr first.
pub struct EnvoyProcess {
    child: Option<Child>,
    admin: SocketAddr,
    listener: SocketAddr,
    config_path: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    base_id: u32,
    // Last: removed after the child is gone.
    dir: TempDir,
}

impl EnvoyProcess {
    /// Renders `template` (a name in `envoy/`, or a path) with `vars` and starts Envoy with
    /// `--concurrency concurrency`. Defaults: `LISTEN_PORT=0`, `ADMIN_PORT=0` (the OS picks;
    /// read back afterwards), `WASM_PATH` = [`wasm_path`] (only checked if the template uses
    /// it), `IDP_HOST=127.0.0.1`, `IDP_PORT=1` (nothing listens: for configs without remote
    /// JWKS). `UPSTREAM_HOST`/`UPSTREAM_PORT` and `PLUGIN_CONFIG_JSON` must be given.
    ///
    /// # Panics
    /// If Envoy is missing, the config does not render, Envoy exits, or it is not LIVE with a
    /// listening listener within [`START_TIMEOUT`] — with Envoy's log in the message.
    pub fn start(template: &str, vars: &[(&str, &str)], concurrency: u32) -> EnvoyProcess {
        match EnvoyProcess::launch(template, vars, concurrency, true) {
            Ok(e) => e,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// The plugin's topology on loopback: `upstream` behind the listener, the `idp` cluster
    /// pointing at `idp`, `config` as the plugin configuration.
    pub fn start_with(
        template: &str,
        upstream: SocketAddr,
        idp: Option<SocketAddr>,
        config: &str,
        concurrency: u32,
    ) -> EnvoyProcess {
        let up_port = upstream.port().to_string();
        let idp_port = idp.map_or_else(|| "1".to_owned(), |a| a.port().to_string());
        let vars = [
            ("UPSTREAM_HOST", "127.0.0.1"),
            ("UPSTREAM_PORT", up_port.as_str()),
            ("IDP_HOST", "127.0.0.1"),
            ("IDP_PORT", idp_port.as_str()),
            ("PLUGIN_CONFIG_JSON", config),
        ];
        EnvoyProcess::start(template, &vars, concurrency)
    }

    /// Like [`EnvoyProcess::start`], returning the failure (with Envoy's log) instead of panicking.
    /// Its temp directory is removed on failure ([`EnvoyProcess::start`] keeps it).
    pub fn try_start(template: &str, vars: &[(&str, &str)], concurrency: u32) -> Result<EnvoyProcess, String> {
        EnvoyProcess::launch(template, vars, concurrency, false)
    }

    fn launch(
        template: &str,
        vars: &[(&str, &str)],
        concurrency: u32,
        keep_on_failure: bool,
    ) -> Result<EnvoyProcess, String> {
        let bin = envoy_bin();
        let tpath = template_path(template);
        let text = fs::read_to_string(&tpath).map_err(|e| format!("cannot read template {}: {e}", tpath.display()))?;
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        map.insert("LISTEN_PORT".into(), "0".into());
        map.insert("ADMIN_PORT".into(), "0".into());
        map.insert("IDP_HOST".into(), "127.0.0.1".into());
        map.insert("IDP_PORT".into(), "1".into());
        let uses_wasm = text.lines().any(|l| !l.trim_start().starts_with('#') && l.contains("${WASM_PATH"));
        if uses_wasm && !vars.iter().any(|(k, _)| *k == "WASM_PATH") {
            map.insert("WASM_PATH".into(), wasm_path().display().to_string());
        }
        for (k, v) in vars {
            map.insert((*k).to_string(), (*v).to_string());
        }
        let config = render(&text, &map).map_err(|e| format!("cannot render {}: {e}", tpath.display()))?;

        let dir = TempDir::new("jwt-authn-envoy");
        let config_path = dir.path().join("envoy.yaml");
        let log_path = dir.path().join("envoy.log");
        let stderr_path = dir.path().join("envoy.stderr");
        let admin_path = dir.path().join("admin-address.txt");
        fs::write(&config_path, &config).map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let stdio = |p: &Path| fs::File::create(p).map(Stdio::from).map_err(|e| format!("{}: {e}", p.display()));
        let base_id = next_base_id();
        let log_level = std::env::var("ENVOY_LOG_LEVEL").unwrap_or_else(|_| "warn".to_string());
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .args(["--base-id", &base_id.to_string()])
            .arg("--disable-hot-restart")
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--log-level", &log_level])
            .arg("--log-path")
            .arg(&log_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(stdio(&dir.path().join("envoy.stdout"))?)
            .stderr(stdio(&stderr_path)?)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;

        let unspecified: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut envoy = EnvoyProcess {
            child: Some(child),
            admin: unspecified,
            listener: unspecified,
            config_path,
            log_path,
            stderr_path,
            base_id,
            dir,
        };
        // On failure `envoy` is dropped here: the child is killed.
        if let Err(why) = envoy.wait_ready(&admin_path) {
            envoy.stop();
            if keep_on_failure {
                envoy.dir.keep();
            }
            return Err(format!("Envoy did not start: {why}\n{}", envoy.describe()));
        }
        Ok(envoy)
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(format!("Envoy exited early ({status})")),
            Some(Err(e)) => Some(format!("cannot check Envoy: {e}")),
            _ => None,
        }
    }

    fn wait_ready(&mut self, admin_path: &Path) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let short = Timeouts { connect: Duration::from_secs(2), io: Duration::from_secs(5) };
        let mut last = String::from("admin address file not written");
        loop {
            if let Some(why) = self.exited() {
                return Err(why);
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {START_TIMEOUT:?} (last: {last})"));
            }
            if self.admin.port() == 0 {
                if let Some(a) = fs::read_to_string(admin_path).ok().and_then(|s| s.trim().parse().ok()) {
                    self.admin = a;
                }
            }
            if self.admin.port() != 0 && self.listener.port() == 0 {
                match try_http_request(self.admin, "GET", "/ready", &[], b"", short) {
                    Ok(r) if r.status == 200 && r.text().trim() == "LIVE" => match self.find_listener(short) {
                        Ok(l) => self.listener = l,
                        Err(e) => last = e,
                    },
                    Ok(r) => last = format!("/ready answered {} {:?}", r.status, r.text().trim()),
                    Err(e) => last = format!("/ready: {e}"),
                }
            }
            if self.listener.port() != 0 {
                match TcpStream::connect_timeout(&self.listener, Duration::from_secs(2)) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("listener {} does not accept: {e}", self.listener),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn find_listener(&self, t: Timeouts) -> Result<SocketAddr, String> {
        let r = try_http_request(self.admin, "GET", "/listeners?format=json", &[], b"", t)
            .map_err(|e| format!("/listeners: {e}"))?;
        let v = r.json()?;
        let sa = &v["listener_statuses"][0]["local_address"]["socket_address"];
        match (sa["address"].as_str(), sa["port_value"].as_u64()) {
            (Some(a), Some(p)) if p != 0 => {
                format!("{a}:{p}").parse().map_err(|e| format!("listener address {a}:{p}: {e}"))
            }
            _ => Err(format!("no bound listener yet: {}", r.text())),
        }
    }

    /// The listener (where requests go).
    pub fn addr(&self) -> SocketAddr {
        self.listener
    }

    /// The admin interface.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn base_id(&self) -> u32 {
        self.base_id
    }

    /// The rendered configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// `GET path` through Envoy's listener (see [`http_get`]).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http_get(self.listener, path, headers)
    }

    /// `GET path` on the admin interface.
    pub fn admin_get(&self, path: &str) -> Response {
        http_get(self.admin, path, &[])
    }

    /// `GET /stats?filter=<regex>` parsed into `name → value` (values as text: counters and
    /// gauges are numbers, histograms are summaries), once settled: the plugin hands its
    /// request counters to Envoy on its 200 ms tick, so this reads until the stats have not
    /// changed for a whole second, five ticks, so that one late tick cannot pass for the last
    /// (for at most ~15 s).
    pub fn admin_stats(&self, filter: &str) -> BTreeMap<String, String> {
        let mut last = self.admin_stats_now(filter);
        let mut unchanged = 0;
        for _ in 0..60 {
            std::thread::sleep(Duration::from_millis(250));
            let next = self.admin_stats_now(filter);
            unchanged = if next == last { unchanged + 1 } else { 0 };
            last = next;
            if unchanged == 4 {
                break;
            }
        }
        last
    }

    /// One read of `GET /stats?filter=<regex>`.
    pub fn admin_stats_now(&self, filter: &str) -> BTreeMap<String, String> {
        let r = self.admin_get(&format!("/stats?filter={}", percent_encode(filter)));
        assert_eq!(r.status, 200, "admin /stats answered {}: {}", r.status, r.text());
        r.text()
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect()
    }

    /// The numeric value of the stat named exactly `name`, if it exists.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let filter = format!("^{}$", name.replace('.', "\\."));
        self.admin_stats(&filter).get(name).and_then(|v| v.parse().ok())
    }

    /// Envoy's log so far (the `--log-path` file, then stderr).
    pub fn logs(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let err = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        if err.trim().is_empty() {
            log
        } else {
            format!("{log}\n--- stderr ---\n{err}")
        }
    }

    fn describe(&self) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let tail = lines[lines.len().saturating_sub(200)..].join("\n");
        format!(
            "--- Envoy (base-id {}, config {}) log, last {} lines ---\n{tail}\n--- end of Envoy log ---",
            self.base_id,
            self.config_path.display(),
            lines.len().min(200)
        )
    }

    /// Stops Envoy now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.describe());
        }
    }
}
