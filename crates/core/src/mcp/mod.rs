//! Tool-safety checks for the MCP gateway, as pure functions over tool definitions
//! (`tools/list` entries): [`pin`] hashes what a tool tells the model, so a definition that
//! changes after approval (a rug pull) is noticed; [`scan`] looks for instructions aimed at the
//! model hidden in that text (tool poisoning).

pub mod pin;
pub mod scan;
