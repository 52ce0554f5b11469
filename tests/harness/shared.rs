//! What one Envoy shares between its VMs (one per worker thread): shared data, metrics, shared
//! queues, the cluster list and the clock. Guarded by mutexes because VMs run on their own
//! threads, as Envoy workers do.

use proxy_wasm::types::Status;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// 2025-01-01T00:00:00Z: a fixed start, so tests never depend on the real clock.
pub const EPOCH_NANOS: u64 = 1_735_689_600 * 1_000_000_000;

pub struct Shared {
    clock_nanos: AtomicU64,
    data: Mutex<SharedData>,
    metrics: Mutex<Metrics>,
    queues: Mutex<Queues>,
    clusters: Mutex<Option<HashSet<String>>>,
}

/// A lock that survives a panicking test thread: the state stays usable for the report.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            clock_nanos: AtomicU64::new(EPOCH_NANOS),
            data: Mutex::new(SharedData { map: HashMap::new(), next_cas: 1 }),
            metrics: Mutex::new(Metrics::default()),
            queues: Mutex::new(Queues::default()),
            clusters: Mutex::new(None),
        }
    }

    // Clock.

    pub fn now_nanos(&self) -> u64 {
        self.clock_nanos.load(Ordering::SeqCst)
    }

    pub fn set_now_nanos(&self, nanos: u64) {
        self.clock_nanos.store(nanos, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.clock_nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
    }

    // Shared data.

    pub fn get_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.data).map.get(key).cloned()
    }

    pub fn set_data(&self, key: &str, value: &[u8], cas: u32) -> Status {
        lock(&self.data).set(key, value, cas)
    }

    pub fn data_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.data).map.keys().cloned().collect();
        keys.sort();
        keys
    }

    // Clusters.

    pub fn set_clusters(&self, names: Option<&[&str]>) {
        *lock(&self.clusters) = names.map(|n| n.iter().map(|s| s.to_string()).collect());
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        lock(&self.clusters).as_ref().map_or(true, |c| c.contains(name))
    }

    // Metrics.

    pub fn metrics(&self) -> MutexGuard<'_, Metrics> {
        lock(&self.metrics)
    }

    // Queues.

    pub fn queues(&self) -> MutexGuard<'_, Queues> {
        lock(&self.queues)
    }
}

/// Envoy's `SharedData` (proxy-wasm-cpp-host `shared_data.cc`): one CAS counter for the whole
/// store, never 0; a set with cas 0 is unconditional; a set on an absent key ignores the cas.
struct SharedData {
    map: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Status {
        if let Some((_, current)) = self.map.get(key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        let next = self.next_cas();
        self.map.insert(key.to_string(), (value.to_vec(), next));
        Status::Ok
    }

    fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// The metric kinds, numbered as the ABI (`MetricType`) and Envoy's id tag bits number them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl Kind {
    pub fn from_abi(t: u32) -> Option<Kind> {
        match t {
            0 => Some(Kind::Counter),
            1 => Some(Kind::Gauge),
            2 => Some(Kind::Histogram),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    pub value: u64,
    pub samples: Vec<u64>,
}

/// Envoy's stats as the wasm host sees them. Ids carry the kind in their low two bits like
/// Envoy's (`kMetricTypeMask`); unlike Envoy, where every `define_metric` call hands out a new
/// per-VM id bound to the same underlying stat, one name maps to one id everywhere.
#[derive(Default)]
pub struct Metrics {
    by_id: BTreeMap<u32, Metric>,
    ids: HashMap<(Kind, String), u32>,
    next: u32,
}

impl Metrics {
    pub fn define(&mut self, kind: Kind, name: &str) -> u32 {
        if let Some(id) = self.ids.get(&(kind, name.to_string())) {
            return *id;
        }
        self.next = self.next.wrapping_add(1);
        let id = (self.next << 2) | kind as u32;
        self.ids.insert((kind, name.to_string()), id);
        self.by_id.insert(id, Metric { name: name.to_string(), kind, value: 0, samples: Vec::new() });
        id
    }

    /// Envoy: counters only go up (offset <= 0 is BadArgument), gauges go both ways,
    /// histograms cannot be incremented.
    pub fn increment(&mut self, id: u32, offset: i64) -> Status {
        let Some(m) = self.by_id.get_mut(&id) else { return Status::NotFound };
        match m.kind {
            Kind::Counter if offset > 0 => m.value = m.value.saturating_add(offset.unsigned_abs()),
            Kind::Counter | Kind::Histogram => return Status::BadArgument,
            Kind::Gauge if offset >= 0 => m.value = m.value.saturating_add(offset.unsigned_abs()),
            Kind::Gauge => m.value = m.value.saturating_sub(offset.unsigned_abs()),
        }
        Status::Ok
    }

    /// Envoy: a counter adds, a gauge is set, a histogram records a sample.
    pub fn record(&mut self, id: u32, value: u64) -> Status {
        let Some(m) = self.by_id.get_mut(&id) else { return Status::NotFound };
        match m.kind {
            Kind::Counter => m.value = m.value.saturating_add(value),
            Kind::Gauge => m.value = value,
            Kind::Histogram => m.samples.push(value),
        }
        Status::Ok
    }

    /// Envoy: histograms cannot be read back (BadArgument).
    pub fn get(&self, id: u32) -> Result<u64, Status> {
        match self.by_id.get(&id) {
            None => Err(Status::NotFound),
            Some(m) if m.kind == Kind::Histogram => Err(Status::BadArgument),
            Some(m) => Ok(m.value),
        }
    }

    /// By name, counters first, then gauges, then histograms.
    pub fn by_name(&self, name: &str) -> Option<&Metric> {
        [Kind::Counter, Kind::Gauge, Kind::Histogram]
            .iter()
            .find_map(|k| self.ids.get(&(*k, name.to_string())))
            .and_then(|id| self.by_id.get(id))
    }

    pub fn all(&self) -> Vec<Metric> {
        self.by_id.values().cloned().collect()
    }
}

/// Shared queues, keyed like Envoy's by (vm_id, name).
#[derive(Default)]
pub struct Queues {
    ids: HashMap<(String, String), u32>,
    items: HashMap<u32, VecDeque<Vec<u8>>>,
    next: u32,
}

impl Queues {
    /// Registering an existing name returns its id again, as Envoy does.
    pub fn register(&mut self, vm_id: &str, name: &str) -> u32 {
        if let Some(id) = self.ids.get(&(vm_id.to_string(), name.to_string())) {
            return *id;
        }
        self.next = self.next.wrapping_add(1);
        let id = self.next;
        self.ids.insert((vm_id.to_string(), name.to_string()), id);
        self.items.insert(id, VecDeque::new());
        id
    }

    pub fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.ids.get(&(vm_id.to_string(), name.to_string())).copied()
    }

    pub fn enqueue(&mut self, id: u32, value: &[u8]) -> Status {
        match self.items.get_mut(&id) {
            Some(q) => {
                q.push_back(value.to_vec());
                Status::Ok
            }
            None => Status::NotFound,
        }
    }

    /// `Err(Empty)` for an empty queue, `Err(NotFound)` for an unknown one.
    pub fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, Status> {
        match self.items.get_mut(&id) {
            Some(q) => q.pop_front().ok_or(Status::Empty),
            None => Err(Status::NotFound),
        }
    }
}
