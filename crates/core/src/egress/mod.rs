//! The egress proxy's decisions, free of I/O: which hosts an agent may reach ([`hosts`]) and
//! which addresses the proxy refuses to connect to whatever the host lists say ([`addr`]).
//!
//! The gateway applies them in this order for each CONNECT or proxied request:
//! 1. [`addr::parse_host`] reads the requested host, so `0x7f.1` is an address, not a name;
//! 2. [`hosts::decide_for`] applies `egress.allow`/`egress.deny` and the agent's own lists;
//! 3. each address the host resolves to (or the literal address) passes [`addr::check`]
//!    against `egress.allow_private` before the proxy connects to *that* address, so DNS
//!    cannot swap in a private one between the check and the connect.

pub mod addr;
pub mod catalogue;
pub mod hosts;
