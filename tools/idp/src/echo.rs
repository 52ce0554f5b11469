//! The echo upstream: answers every request `200` with a JSON description of what it received.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::http::{lock, Handler, HttpServer, Reply, Request, Response};

/// A running echo server. Every request gets `200` and the body
/// `{"method", "path", "headers": {name: value}, "header_list": [[name, value], ...], "body"}`
/// where `path` is the full request target (with the query string), header names are
/// lowercase, repeated headers are joined with `", "` in `headers` and kept apart in
/// `header_list`, and `body` is the request body as (lossy) UTF-8. Stops on drop.
pub struct EchoServer {
    http: HttpServer,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl EchoServer {
    /// Starts on `addr` (e.g. `"127.0.0.1:0"`); panics if it cannot be bound.
    pub fn start(addr: &str) -> EchoServer {
        match EchoServer::try_start(addr) {
            Ok(s) => s,
            Err(e) => panic!("echo server cannot listen on {addr}: {e}"),
        }
    }

    pub fn try_start(addr: &str) -> io::Result<EchoServer> {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = {
            let seen = seen.clone();
            Arc::new(move |req: &Request, _stop: &AtomicBool| {
                lock(&seen).push(req.clone());
                Reply::Respond(Response::json(200, &echo_body(req)))
            })
        };
        Ok(EchoServer { http: HttpServer::start(addr, handler)?, seen })
    }

    pub fn address(&self) -> SocketAddr {
        self.http.address()
    }

    /// `http://<address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.seen).clone()
    }

    /// The newest request received.
    pub fn last_request(&self) -> Option<Request> {
        lock(&self.seen).last().cloned()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        lock(&self.seen).clear();
    }

    /// Stops the server and closes every connection (also done on drop).
    pub fn stop(mut self) {
        self.http.stop();
    }
}

/// The JSON an echo server answers for `req`.
pub fn echo_body(req: &Request) -> Value {
    let mut headers = Map::new();
    for (n, v) in &req.headers {
        match headers.get_mut(n) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(v);
            }
            _ => {
                headers.insert(n.clone(), Value::String(v.clone()));
            }
        }
    }
    json!({
        "method": req.method,
        "path": req.target,
        "headers": headers,
        "header_list": req.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "body": String::from_utf8_lossy(&req.body),
    })
}
