//! `bench-mint-many`: writes the benchmark's tokens and keys, signed by demo-idp's committed
//! TEST-ONLY fixed keys (the same keys `demo-idp serve` publishes).
//!
//!   bench-mint-many tokens --alg RS256|ES256 --count N [--ttl SECS] [--project-id P]
//!       N distinct Descope-shaped tokens, one per line (`sub` = bench-user-<i>, a tenant,
//!       roles and permissions): iss https://api.descope.com/<P>, aud <P>, exp now + ttl.
//!   bench-mint-many jwks
//!       The public JWKS of the RS256 and ES256 fixed keys.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::str::FromStr;

use demo_idp::{jwks, mint, Alg, DescopeClaims, SigningKey, DEFAULT_PROJECT_ID};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-mint-many: {e}");
            ExitCode::from(2)
        }
    }
}

fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn run(args: &[String]) -> Result<(), String> {
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    match args.first().map(String::as_str) {
        Some("jwks") => {
            let rs = SigningKey::fixed(Alg::RS256);
            let es = SigningKey::fixed(Alg::ES256);
            writeln!(out, "{}", jwks(&[&rs, &es])).map_err(|e| e.to_string())?;
        }
        Some("tokens") => {
            let alg = Alg::from_str(option(args, "--alg").unwrap_or("RS256"))?;
            let count: usize =
                option(args, "--count").unwrap_or("1").parse().map_err(|_| "--count must be a number".to_string())?;
            let ttl: i64 =
                option(args, "--ttl").unwrap_or("7200").parse().map_err(|_| "--ttl must be a number".to_string())?;
            let project = option(args, "--project-id").unwrap_or(DEFAULT_PROJECT_ID);
            let key = SigningKey::fixed(alg);
            for i in 0..count {
                let sub = format!("bench-user-{i:06}");
                let claims = DescopeClaims::new(project, &sub)
                    .ttl(ttl)
                    .tenant("T1bench", &["viewer", "editor"], &["orders.read", "orders.write"])
                    .dct("T1bench")
                    .build();
                writeln!(out, "{}", mint(&key, claims)).map_err(|e| e.to_string())?;
            }
        }
        _ => return Err("usage: bench-mint-many tokens --alg ALG --count N [--ttl S] [--project-id P] | jwks".into()),
    }
    out.flush().map_err(|e| e.to_string())
}
