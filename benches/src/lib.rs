//! Benchmarks of Refbook: criterion micro-benchmarks (`benches/`) and the load tool
//! (`src/bin/refbook-load.rs`), which drives a real server over loopback.

#![warn(missing_docs)]

pub mod answer_spoilers;
#[cfg(feature = "local-model")]
pub mod beside_indexing;
pub mod fast_mock;
pub mod latency;
pub mod model_runs;
pub mod reading;
pub mod retrieval;
