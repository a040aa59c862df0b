//! What a run used (requests, bytes received, the module's peak memory) and the store limiter
//! that records it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use wasmtime::{ResourceLimiter, StoreLimits};

/// What one run used: requests sent, response bytes received, the module's peak memory, and
/// whether a response was cut at the size limit.
#[derive(Debug, Default)]
pub struct Usage {
    pub requests: AtomicU64,
    pub bytes_received: AtomicU64,
    pub peak_memory_bytes: AtomicU64,
    pub response_cut: AtomicBool,
}

impl Usage {
    /// The figures, for a report.
    pub fn meter(&self, wall_ms: u64) -> Meter {
        Meter {
            wall_ms,
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            peak_memory_bytes: self.peak_memory_bytes.load(Ordering::Relaxed),
        }
    }
}

/// What a run used, as a report's `meter` prints it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Meter {
    pub wall_ms: u64,
    pub requests: u64,
    pub bytes_received: u64,
    pub peak_memory_bytes: u64,
}

/// The store's limits, recording the largest memory the module was granted.
pub struct MeteredLimits {
    pub(super) inner: StoreLimits,
    pub(super) usage: Arc<Usage>,
}

impl ResourceLimiter for MeteredLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let granted = self.inner.memory_growing(current, desired, maximum)?;
        if granted {
            self.usage.peak_memory_bytes.fetch_max(desired as u64, Ordering::Relaxed);
        }
        Ok(granted)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
