//! Guards on content: what an agent sends out and what comes back to it.
//!
//! [`dlp`] finds secrets and personal data in text and says where they are, so the gateway
//! can record, redact or refuse them without ever storing the secret itself.

pub mod dlp;
