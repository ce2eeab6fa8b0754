//! Airlock's gateway: the listeners, the request pipeline and the protocol adapters.
//!
//! A request enters through [`server`], is routed by protocol ([`llm`], [`mcp`], later a2a,
//! egress) and travels the stages in [`pipeline`]: classify → identify → decide →
//! forward → settle. The admin listener ([`admin`]) is separate from the agent-facing one.

pub mod admin;
mod alerts;
mod controls;
mod gateway;
mod http;
mod identity;
pub mod llm;
mod mcp;
mod metrics;
mod pipeline;
mod rebuild;
mod reload;
mod server;
mod upstream;

pub use gateway::{Gateway, Runtime};
pub use identity::new_key;
pub use server::{Running, StartError, start};
