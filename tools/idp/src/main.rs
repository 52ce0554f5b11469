//! `demo-idp`: a demo identity provider, an echo upstream and a token minting tool.

use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;

use demo_idp::{fixed_keys_all_algs, jwks_value, Alg, DescopeClaims, EchoServer, IdpConfig, IdpServer, SigningKey};

const USAGE: &str = "\
demo-idp — demo identity provider and test tooling (TEST-ONLY keys)

USAGE:
  demo-idp serve [--listen ADDR] [--project-id P] [--issuer URL]
        Serve the JWKS (GET /.well-known/jwks.json, /v2/keys/<P>), discovery
        (/.well-known/openid-configuration), GET /mint?sub=&tenant=&roles=a,b&permissions=&ttl=&alg=,
        POST /admin/rotate, POST /admin/fault?mode=ok|500|hang|bad-body|delay&ms=N, GET /admin/stats.
        Default --listen 127.0.0.1:8081, --project-id P2demoproject,
        --issuer https://api.descope.com/<P>.
  demo-idp echo [--listen ADDR]
        Answer every request 200 with JSON {method, path, headers, header_list, body}.
        Default --listen 127.0.0.1:8082.
  demo-idp mint [--alg ALG] [--sub S] [--tenant T] [--roles a,b] [--permissions x,y]
                [--ttl SECS] [--project-id P] [--issuer URL]
        Print a Descope-shaped token signed by the fixed key for ALG (default RS256).
        With --tenant, roles/permissions go under tenants.<T> (and dct=T); otherwise top level.
  demo-idp jwks
        Print the public JWKS of the fixed keys (the same keys `serve` publishes).

Runs until killed (serve, echo).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-idp: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Opts {
    pairs: Vec<(String, String)>,
}

impl Opts {
    fn parse(args: &[String], allowed: &[&str]) -> Result<Opts, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), v.to_string()),
                _ => {
                    if !a.starts_with("--") {
                        return Err(format!("unexpected argument {a:?}"));
                    }
                    let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                    (a.clone(), v.clone())
                }
            };
            let bare = name.trim_start_matches("--");
            if !allowed.contains(&bare) {
                return Err(format!("unknown option {name}"));
            }
            pairs.push((bare.to_string(), value));
        }
        Ok(Opts { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn list(v: Option<&str>) -> Vec<&str> {
    v.map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// Prints a line; a closed pipe (`demo-idp jwks | head`) is not an error.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn block_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing subcommand".to_string());
    };
    match cmd.as_str() {
        "serve" => {
            let o = Opts::parse(rest, &["listen", "project-id", "issuer"])?;
            let listen = o.get("listen").unwrap_or("127.0.0.1:8081");
            let mut config = IdpConfig::default();
            if let Some(p) = o.get("project-id") {
                config = config.project_id(p);
            }
            if let Some(i) = o.get("issuer") {
                config = config.issuer(i);
            }
            let server = IdpServer::try_start(listen, config).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            out(&format!(
                "demo-idp serving on {} (project {}, issuer {}, jwks {})",
                server.base_url(),
                server.project_id(),
                server.issuer(),
                server.jwks_uri()
            ));
            block_forever()
        }
        "echo" => {
            let o = Opts::parse(rest, &["listen"])?;
            let listen = o.get("listen").unwrap_or("127.0.0.1:8082");
            let server = EchoServer::try_start(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            out(&format!("demo-idp echo serving on {}", server.base_url()));
            block_forever()
        }
        "mint" => {
            let o =
                Opts::parse(rest, &["alg", "sub", "tenant", "roles", "permissions", "ttl", "project-id", "issuer"])?;
            let alg = Alg::from_str(o.get("alg").unwrap_or("RS256"))?;
            let ttl: i64 =
                o.get("ttl").unwrap_or("3600").parse().map_err(|_| "--ttl must be an integer".to_string())?;
            let project = o.get("project-id").unwrap_or(demo_idp::DEFAULT_PROJECT_ID);
            let roles = list(o.get("roles"));
            let perms = list(o.get("permissions"));
            let mut b = DescopeClaims::new(project, o.get("sub").unwrap_or("demo-user")).ttl(ttl);
            if let Some(i) = o.get("issuer") {
                b = b.claim("iss", serde_json::Value::String(i.to_string()));
            }
            b = match o.get("tenant") {
                Some(t) => b.tenant(t, &roles, &perms).dct(t),
                None => b.roles(&roles).permissions(&perms),
            };
            out(&demo_idp::mint(&SigningKey::fixed(alg), b.build()));
            Ok(())
        }
        "jwks" => {
            Opts::parse(rest, &[])?;
            let keys = fixed_keys_all_algs();
            let refs: Vec<&SigningKey> = keys.iter().collect();
            let pretty = serde_json::to_string_pretty(&jwks_value(&refs)).map_err(|e| e.to_string())?;
            out(&pretty);
            Ok(())
        }
        "help" | "--help" | "-h" => {
            out(USAGE);
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}")),
    }
}
