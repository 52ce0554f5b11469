//! What the plugin computes inside wasm for one token, without the host: `jws::parse` (strict
//! base64url and JSON), a verified-token cache miss (lookup, parse, insert, evict the oldest)
//! and a cache hit. Tokens come one per line from the file named by the first argument.
//! JSON to stdout, a table to stderr; exits 1 if a token fails to parse or a hit is missed.
//!
//!   bench-token-wasm TOKENS_FILE [--smoke]
use jwt_authn_wasm::jws::{self, Limits};
use jwt_authn_wasm::token_cache::{Entry, TokenCache};
use std::hint::black_box;
use std::time::Instant;

const LIMITS: Limits = Limits { max_token_size: 8192, max_json_depth: 16 };

fn entry(token: &str) -> Option<Entry> {
    jws::parse(token, &LIMITS).ok().map(Entry::of)
}

/// Median, min and max µs per token over `batches` passes of `pass` over all tokens.
fn measure(batches: usize, tokens: usize, mut pass: impl FnMut() -> bool) -> Result<[f64; 3], String> {
    let mut per_token = Vec::new();
    for _ in 0..batches {
        let start = Instant::now();
        if !pass() {
            return Err("a token was refused or a hit missed".into());
        }
        per_token.push(start.elapsed().as_secs_f64() * 1e6 / tokens as f64);
    }
    per_token.sort_by(f64::total_cmp);
    Ok([per_token[per_token.len() / 2], per_token[0], per_token[per_token.len() - 1]])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: bench-token-wasm TOKENS_FILE [--smoke]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let tokens: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let n = tokens.len();
    if n == 0 {
        eprintln!("{path}: no tokens");
        std::process::exit(2);
    }
    // Misses need more tokens than the cache holds, as in bench/run.sh's distinct workloads.
    let capacity = (n / 4).max(1);
    let batches = if smoke { 2 } else { 25 };

    let parse = measure(batches, n, || tokens.iter().all(|t| black_box(jws::parse(t, &LIMITS)).is_ok()));
    let missing = TokenCache::new(capacity, 8192);
    let miss = measure(batches, n, || {
        tokens.iter().all(|t| {
            if missing.get(t).is_some() {
                return false; // cycled in order through 4x the capacity: never a hit
            }
            entry(t).map(|e| missing.insert(t, e)).is_some()
        })
    });
    let full = TokenCache::new(n, 8192);
    let filled = tokens.iter().all(|t| entry(t).map(|e| full.insert(t, e)).is_some());
    let hit = measure(batches, n, || filled && tokens.iter().all(|t| black_box(full.get(t)).is_some()));

    let rows = [("parse", parse), ("cache miss: lookup, parse, insert, evict", miss), ("cache hit", hit)];
    let mut failed = false;
    let mut json = Vec::new();
    eprintln!("{:<42} {:>10} {:>8} {:>8}", "per token", "median µs", "min", "max");
    for (name, r) in rows {
        match r {
            Ok([median, min, max]) => {
                eprintln!("{name:<42} {median:>10.2} {min:>8.2} {max:>8.2}");
                json.push(format!(
                    "{{\"name\": \"{name}\", \"median_us\": {median:.3}, \"min_us\": {min:.3}, \"max_us\": {max:.3}}}"
                ));
            }
            Err(e) => {
                eprintln!("{name}: FAILED: {e}");
                failed = true;
            }
        }
    }
    println!(
        "{{\"tokens\": {n}, \"cache_capacity_for_misses\": {capacity}, \"batches\": {batches}, \"results\": [{}]}}",
        json.join(", ")
    );
    std::process::exit(i32::from(failed));
}
