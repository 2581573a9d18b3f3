//! The local model's waiting line: requests as they were sent, readers' questions before
//! background work, and the counters `/metrics` reports.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::llm::{ChatRequest, LocalModelReport, ModelError, ModelEvent, Priority};

/// One request and where its events go.
pub struct Job {
    pub request: ChatRequest,
    pub events: mpsc::Sender<Result<ModelEvent, ModelError>>,
    /// When it was sent.
    pub queued: Instant,
}

/// Counters shared by the senders, the worker and the reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sent and not yet started (or given up).
    pub waiting: AtomicU64,
    /// Readers' questions among them.
    pub waiting_interactive: AtomicU64,
    pub started: AtomicU64,
    pub waited_micros: AtomicU64,
    pub refused_busy: AtomicU64,
    pub prompt_tokens_cached: AtomicU64,
    pub prompt_tokens_computed: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub cache_entries: AtomicU64,
}

impl Counters {
    /// Counts a request sent.
    pub fn sent(&self, priority: Priority) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if priority == Priority::Interactive {
            self.waiting_interactive.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request taken off the line (started or skipped).
    fn taken(&self, job: &Job) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        if job.request.priority == Priority::Interactive {
            self.waiting_interactive.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a reader's question is waiting.
    pub fn reader_waiting(&self) -> bool {
        self.waiting_interactive.load(Ordering::Relaxed) > 0
    }

    /// A snapshot for `/metrics`.
    pub fn report(&self) -> LocalModelReport {
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        LocalModelReport {
            waiting: read(&self.waiting),
            started: read(&self.started),
            waited_micros: read(&self.waited_micros),
            refused_busy: read(&self.refused_busy),
            prompt_tokens_cached: read(&self.prompt_tokens_cached),
            prompt_tokens_computed: read(&self.prompt_tokens_computed),
            cache_bytes: read(&self.cache_bytes),
            cache_entries: read(&self.cache_entries),
        }
    }
}

/// The requests sent to the worker, in the order it should take them.
pub struct Queue {
    receiver: mpsc::Receiver<Job>,
    interactive: VecDeque<Job>,
    background: VecDeque<Job>,
    counters: std::sync::Arc<Counters>,
}

impl Queue {
    pub fn new(receiver: mpsc::Receiver<Job>, counters: std::sync::Arc<Counters>) -> Self {
        Self {
            receiver,
            interactive: VecDeque::new(),
            background: VecDeque::new(),
            counters,
        }
    }

    /// Moves what has been sent into the two lines.
    fn drain(&mut self) {
        while let Ok(job) = self.receiver.try_recv() {
            match job.request.priority {
                Priority::Interactive => self.interactive.push_back(job),
                Priority::Background => self.background.push_back(job),
            }
        }
    }

    /// The next request whose asker still waits, readers' first; blocks while there is
    /// none; `None` once every sender is gone.
    pub fn next(&mut self) -> Option<Job> {
        loop {
            self.drain();
            let job = match self.interactive.pop_front() {
                Some(job) => job,
                None => match self.background.pop_front() {
                    Some(job) => job,
                    None => self.receiver.blocking_recv()?,
                },
            };
            if let Some(job) = self.start(job) {
                return Some(job);
            }
        }
    }

    /// The next reader's question, if one waits (background work calls this between its
    /// steps and answers it first).
    pub fn next_interactive(&mut self) -> Option<Job> {
        if !self.counters.reader_waiting() {
            return None;
        }
        loop {
            self.drain();
            let job = self.interactive.pop_front()?;
            if let Some(job) = self.start(job) {
                return Some(job);
            }
        }
    }

    /// Counts `job` as started; `None` when its asker has left meanwhile.
    fn start(&self, job: Job) -> Option<Job> {
        self.counters.taken(&job);
        if job.events.is_closed() {
            return None;
        }
        let waited = u64::try_from(job.queued.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        self.counters
            .waited_micros
            .fetch_add(waited, Ordering::Relaxed);
        Some(job)
    }
}
