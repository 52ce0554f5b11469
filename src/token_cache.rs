//! Verified-token cache, one per provider per VM: a token whose signature verified is not
//! verified again. Bounded LRU keyed by the whole token (as jwt_authn's own cache is): the
//! map hashes it with std's randomly keyed SipHash, and a hit compares every byte, so no
//! hash collision, crafted or not, can ever borrow another token's verdict — and no
//! cryptographic digest (several µs per token inside wasm) is needed on the hit path. What is cached is only
//! "this token parsed and its signature verified with this provider's keys"; the claims are
//! validated again on every hit (expiry, not-before, issuer, audience), so a cached token
//! expires exactly when an uncached one would. Cleared when the provider's keys change, so a
//! key removed from the JWKS stops admitting its tokens.

use crate::jws::Jwt;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Entries per provider when `jwt_cache_config.jwt_cache_size` is not set.
pub const DEFAULT_CAPACITY: usize = 512;
/// Tokens larger than this are not cached (`jwt_cache_config.jwt_max_token_size`).
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 4096;

/// The token itself, shared by the map and the LRU order.
type Key = Rc<str>;

/// What a verified token leaves behind. Shared, not copied: a hit costs two reference counts,
/// not a copy of every claim.
#[derive(Debug, Clone)]
pub struct Entry {
    pub claims: Rc<Map<String, Value>>,
    pub payload_b64: Rc<str>,
}

impl Entry {
    /// What a token that passed every check leaves behind.
    pub fn of(jwt: Jwt<'_>) -> Entry {
        Entry { claims: Rc::new(jwt.claims), payload_b64: jwt.jws.payload_b64.into() }
    }
}

#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    max_token_size: usize,
    inner: RefCell<Lru>,
    /// Hits and misses since the last [`TokenCache::take_counts`], for stats.
    counts: Cell<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<Key, (Entry, u64)>,
    /// Use stamp → key, oldest first.
    order: BTreeMap<u64, Key>,
    clock: u64,
}

impl TokenCache {
    pub fn new(capacity: usize, max_token_size: usize) -> TokenCache {
        TokenCache { capacity, max_token_size, inner: RefCell::new(Lru::default()), counts: Cell::new((0, 0)) }
    }

    pub fn get(&self, token: &str) -> Option<Entry> {
        let found = self.lookup(token);
        let (hits, misses) = self.counts.get();
        self.counts.set(if found.is_some() {
            (hits.saturating_add(1), misses)
        } else {
            (hits, misses.saturating_add(1))
        });
        found
    }

    /// The entry for `token`, if cached, without counting a hit or refreshing its place:
    /// for reading what the token says, not for using it as verified.
    pub fn peek(&self, token: &str) -> Option<Entry> {
        let lru = self.inner.try_borrow().ok()?;
        lru.entries.get(token).map(|(entry, _)| entry.clone())
    }

    /// Hits and misses counted since the last call.
    pub fn take_counts(&self) -> (u64, u64) {
        self.counts.replace((0, 0))
    }

    fn lookup(&self, token: &str) -> Option<Entry> {
        if token.len() > self.max_token_size || self.capacity == 0 {
            return None;
        }
        let mut lru = self.inner.try_borrow_mut().ok()?;
        let stamp = lru.next_stamp();
        let Lru { entries, order, .. } = &mut *lru;
        let (entry, old) = entries.get_mut(token)?;
        if let Some(key) = order.remove(old) {
            order.insert(stamp, key);
        }
        *old = stamp;
        Some(entry.clone())
    }

    pub fn insert(&self, token: &str, entry: Entry) {
        if token.len() > self.max_token_size || self.capacity == 0 {
            return;
        }
        let key: Key = Rc::from(token);
        let Ok(mut lru) = self.inner.try_borrow_mut() else { return };
        let stamp = lru.next_stamp();
        if let Some((_, old)) = lru.entries.insert(key.clone(), (entry, stamp)) {
            lru.order.remove(&old);
        }
        lru.order.insert(stamp, key);
        while lru.entries.len() > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else { break };
            lru.entries.remove(&oldest);
        }
    }

    pub fn remove(&self, token: &str) {
        if let Ok(mut lru) = self.inner.try_borrow_mut() {
            if let Some((_, stamp)) = lru.entries.remove(token) {
                lru.order.remove(&stamp);
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut lru) = self.inner.try_borrow_mut() {
            lru.entries.clear();
            lru.order.clear();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |l| l.entries.len())
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Lru {
    fn next_stamp(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sub: &str) -> Entry {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(sub.into()));
        Entry { claims: Rc::new(claims), payload_b64: sub.into() }
    }

    #[test]
    fn hits_and_misses() {
        let c = TokenCache::new(2, 100);
        assert!(c.get("a.b.c").is_none());
        c.insert("a.b.c", entry("1"));
        assert_eq!(&*c.get("a.b.c").unwrap().payload_b64, "1");
        assert!(c.get("a.b.d").is_none());
    }

    #[test]
    fn a_peek_neither_counts_nor_keeps_an_entry_alive() {
        let c = TokenCache::new(2, 100);
        c.insert("t1", entry("1"));
        c.insert("t2", entry("2"));
        assert_eq!(&*c.peek("t1").unwrap().payload_b64, "1");
        assert!(c.peek("t9").is_none());
        c.insert("t3", entry("3"));
        assert!(c.peek("t1").is_none(), "t1 stayed the oldest and was evicted");
        assert_eq!(c.take_counts(), (0, 0));
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let c = TokenCache::new(2, 100);
        c.insert("t1", entry("1"));
        c.insert("t2", entry("2"));
        assert!(c.get("t1").is_some()); // t2 is now the oldest
        c.insert("t3", entry("3"));
        assert_eq!(c.len(), 2);
        assert!(c.get("t2").is_none());
        assert!(c.get("t1").is_some() && c.get("t3").is_some());
        // Re-inserting an existing token does not grow the cache.
        c.insert("t3", entry("3b"));
        assert_eq!(c.len(), 2);
        assert_eq!(&*c.get("t3").unwrap().payload_b64, "3b");
    }

    #[test]
    fn large_tokens_and_zero_capacity_are_not_cached() {
        let c = TokenCache::new(2, 4);
        c.insert("12345", entry("x"));
        assert!(c.is_empty());
        let off = TokenCache::new(0, 100);
        off.insert("t", entry("x"));
        assert!(off.get("t").is_none());
    }

    #[test]
    fn counts_hits_and_misses() {
        let c = TokenCache::new(2, 100);
        c.get("t");
        c.insert("t", entry("1"));
        c.get("t");
        c.get("t");
        assert_eq!(c.take_counts(), (2, 1));
        assert_eq!(c.take_counts(), (0, 0));
    }

    #[test]
    fn remove_and_clear() {
        let c = TokenCache::new(4, 100);
        c.insert("t1", entry("1"));
        c.insert("t2", entry("2"));
        c.remove("t1");
        assert!(c.get("t1").is_none() && c.get("t2").is_some());
        c.clear();
        assert!(c.is_empty());
    }
}
