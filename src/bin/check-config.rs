//! `check-config FILE...`: checks plugin configurations as the plugin would at load, without
//! Envoy. Prints `FILE: ok (...)` and any warning, or the plugin's one-line error; exits 1 if
//! any file is refused. `-` reads standard input.

use jwt_authn_wasm::config::Config;
use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!("usage: check-config FILE... (the plugin's JSON configuration; - for stdin)");
        return ExitCode::from(2);
    }
    let mut refused = false;
    for file in &files {
        let bytes = if file == "-" {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map(|_| buf)
        } else {
            std::fs::read(file)
        };
        let outcome = match bytes {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(bytes) => Config::parse(&bytes).map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(config) => {
                println!("{file}: ok ({} provider(s), {} rule(s))", config.providers.len(), config.rules.len());
                for (provider, skipped) in &config.skipped_keys {
                    println!("{file}: warning: provider {provider}: {skipped}");
                }
                for warning in config.warnings() {
                    println!("{file}: warning: {warning}");
                }
            }
            Err(e) => {
                refused = true;
                println!("{file}: {e}");
            }
        }
    }
    if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
