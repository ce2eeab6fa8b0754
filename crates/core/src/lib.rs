//! Airlock's domain, free of I/O: configuration, model routing, pricing, usage
//! normalisation, reason codes, the ledger's event record, key digests and SSE framing.
//!
//! Everything here is a plain function or type so the gateway's decisions can be
//! tested by tables without sockets, files or a runtime.

pub mod a2a;
pub mod admission;
pub mod config;
pub mod egress;
pub mod event;
pub mod fingerprint;
pub mod glob;
pub mod guards;
pub mod http_url;
pub mod keys;
pub mod mcp;
pub mod money;
pub mod pricing;
pub mod reason;
pub mod sse;
pub mod tokens;
pub mod usage;
pub mod window;

pub use config::{Config, ConfigError};
pub use event::{Event, Kind, Outcome};
pub use reason::{Denial, Reason};
pub use usage::Usage;
