//! Value buffers for large reads: many values copied into a few pooled chunks.
//!
//! A list of 10,000 values would otherwise make 10,000 allocations, and the memory they use is
//! fresh (page faults) each time because the allocator returns it to the system when the list is
//! dropped. Here values are copied into 256 KiB chunks taken from a per-store pool; every value is
//! a `Bytes` slice of its chunk, and the chunk goes back to the pool when the last slice is
//! dropped. The pool keeps at most `MAX_POOLED` chunks.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::engine::lock;

const CHUNK: usize = 256 * 1024;
const MAX_POOLED: usize = 64;

/// Free chunks, shared by the reads of one store.
#[derive(Default)]
pub(crate) struct ChunkPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl ChunkPool {
    fn take(&self) -> Vec<u8> {
        lock(&self.free)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    fn put(&self, mut chunk: Vec<u8>) {
        chunk.clear();
        let mut free = lock(&self.free);
        if free.len() < MAX_POOLED && chunk.capacity() == CHUNK {
            free.push(chunk);
        }
    }
}

/// A chunk owned by the `Bytes` slices made from it; back to the pool when they are all gone.
struct PooledChunk {
    data: Vec<u8>,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.data));
    }
}

/// Where a value landed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    chunk: usize,
    start: usize,
    end: usize,
}

/// Collects the values of one read.
pub(crate) struct ValueArena {
    pool: Arc<ChunkPool>,
    current: Vec<u8>,
    chunks: Vec<Bytes>,
}

impl ValueArena {
    pub(crate) fn new(pool: Arc<ChunkPool>) -> Self {
        Self {
            pool,
            current: Vec::new(),
            chunks: Vec::new(),
        }
    }

    fn seal(&mut self) {
        if self.current.is_empty() {
            self.pool.put(std::mem::take(&mut self.current));
            return;
        }
        let data = std::mem::take(&mut self.current);
        self.chunks.push(Bytes::from_owner(PooledChunk {
            data,
            pool: self.pool.clone(),
        }));
    }

    /// Copy `value` in; [`Values::get`] gives it back once the arena is finished.
    pub(crate) fn push(&mut self, value: &[u8]) -> Ticket {
        if value.len() * 4 > CHUNK {
            // Large values get a buffer of their own, after the chunk being filled (whose
            // tickets expect it at the next index).
            self.seal();
            self.chunks.push(Bytes::copy_from_slice(value));
            return Ticket {
                chunk: self.chunks.len() - 1,
                start: 0,
                end: value.len(),
            };
        }
        if self.current.capacity() - self.current.len() < value.len() {
            self.seal();
            self.current = self.pool.take();
        }
        let start = self.current.len();
        self.current.extend_from_slice(value);
        Ticket {
            chunk: self.chunks.len(),
            start,
            end: self.current.len(),
        }
    }

    /// Seal the last chunk.
    pub(crate) fn finish(mut self) -> Values {
        self.seal();
        Values {
            chunks: std::mem::take(&mut self.chunks),
        }
    }
}

/// The sealed chunks of a finished arena.
pub(crate) struct Values {
    chunks: Vec<Bytes>,
}

impl Values {
    pub(crate) fn get(&self, ticket: Ticket) -> Bytes {
        self.chunks
            .get(ticket.chunk)
            .map(|chunk| chunk.slice(ticket.start..ticket.end))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_and_chunks_return_to_the_pool() {
        let pool = Arc::new(ChunkPool::default());
        let mut arena = ValueArena::new(pool.clone());
        let small: Vec<_> = (0..2000)
            .map(|i| format!("value-{i}-{}", "x".repeat(300)))
            .collect();
        let big = vec![7u8; CHUNK];
        let mut tickets: Vec<_> = small.iter().map(|v| arena.push(v.as_bytes())).collect();
        tickets.push(arena.push(&big));
        tickets.push(arena.push(b""));
        let after_big = arena.push(b"after");
        let values = arena.finish();
        for (ticket, expected) in tickets.iter().zip(&small) {
            assert_eq!(values.get(*ticket), Bytes::from(expected.clone()));
        }
        assert_eq!(values.get(tickets[2000]), Bytes::from(big));
        assert_eq!(values.get(tickets[2001]), Bytes::new());
        assert_eq!(values.get(after_big), Bytes::from_static(b"after"));
        let kept = values.get(tickets[0]);
        drop(values);
        let pooled = lock(&pool.free).len();
        assert!(pooled >= 2, "chunks are back in the pool: {pooled}");
        assert_eq!(
            kept,
            Bytes::from(small[0].clone()),
            "a slice outlives the others"
        );
    }
}
