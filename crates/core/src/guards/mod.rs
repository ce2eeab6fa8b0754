//! Guards on content: what an agent sends out and what comes back to it.
//!
//! [`dlp`] finds secrets and personal data in text and says where they are, so the gateway
//! can record, redact or refuse them without ever storing the secret itself; [`json`]
//! applies it to raw JSON bodies and [`outbound`] applies an agent's rules. [`injection`]
//! reads replies for instructions aimed at the agent.

pub mod dlp;
pub mod injection;
pub mod json;
pub mod outbound;
mod path;

#[cfg(test)]
mod fuzz;
