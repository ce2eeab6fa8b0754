//! Airlock's gateway: the listeners, the request pipeline and the protocol adapters.
//!
//! A request enters through [`server`], is routed by protocol ([`llm`], [`mcp`], [`a2a`], later
//! egress) and travels the stages in [`pipeline`]: classify → identify → decide →
//! forward → settle. The admin listener ([`admin`]) is separate from the agent-facing one.

mod a2a;
pub mod admin;
mod alerts;
mod connection;
mod content;
mod controls;
mod durable;
mod egress;
mod gateway;
#[cfg(test)]
mod hostile_json;
mod http;
mod identity;
mod in_flight;
mod jsonrpc;
pub mod llm;
mod mcp;
mod metrics;
mod pipeline;
mod rebuild;
mod reload;
mod server;
mod traces;
mod unwind;
mod upstream;

pub use egress::ca;
pub use gateway::{Gateway, Runtime};
pub use identity::new_key;
pub use server::{Running, StartError, start};
