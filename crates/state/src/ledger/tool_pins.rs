//! Tool pins, the rug-pull defence: the first definition the gateway sees of an upstream
//! MCP tool is pinned, and a later, different one waits as pending until an operator
//! approves it. The rules live here, on plain values; each store only loads the rows under
//! a lock, applies them and writes back what changed, so both stores answer alike.

use std::collections::BTreeMap;

/// What the gateway saw of one upstream tool on one listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenTool {
    pub tool: String,
    pub hash: String,
    /// The definition as JSON text.
    pub definition: String,
    /// Poisoning-scan rule ids found in it (may be empty).
    pub flags: Vec<String>,
}

/// One tool's pin.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolPin {
    pub server: String,
    pub tool: String,
    pub approved_hash: String,
    pub approved_definition: String,
    /// The latest definition seen when it differs from the approved one.
    pub pending_hash: Option<String>,
    pub pending_definition: Option<String>,
    pub flags: Vec<String>,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub approved_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinStatus {
    /// Serving the definition that was pinned or approved, and no scan rule matched it.
    Approved,
    /// Upstream now lists a definition other than the approved one.
    Changed,
    /// The latest definition matched a poisoning-scan rule.
    Flagged,
}

impl PinStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PinStatus::Approved => "approved",
            PinStatus::Changed => "changed",
            PinStatus::Flagged => "flagged",
        }
    }
}

impl ToolPin {
    /// A change outranks a flag: what an operator must act on first is a definition that
    /// is not the one they (or first sight) approved.
    pub fn status(&self) -> PinStatus {
        if self.pending_hash.is_some() {
            PinStatus::Changed
        } else if !self.flags.is_empty() {
            PinStatus::Flagged
        } else {
            PinStatus::Approved
        }
    }

    /// Takes in one more sight of this tool.
    fn observe(&mut self, seen: &SeenTool, now_ms: u64, auto_approve: bool) {
        if seen.hash == self.approved_hash {
            // Upstream went back to the approved version: nothing is waiting any more.
            self.pending_hash = None;
            self.pending_definition = None;
        } else if auto_approve {
            self.approved_hash = seen.hash.clone();
            self.approved_definition = seen.definition.clone();
            self.pending_hash = None;
            self.pending_definition = None;
            self.approved_ms = now_ms;
        } else {
            self.pending_hash = Some(seen.hash.clone());
            self.pending_definition = Some(seen.definition.clone());
        }
        self.flags = seen.flags.clone();
        self.last_seen_ms = now_ms;
    }

    /// Makes the pending definition the approved one; `false` when none was pending.
    pub(super) fn approve(&mut self, now_ms: u64) -> bool {
        match (self.pending_hash.take(), self.pending_definition.take()) {
            (Some(hash), Some(definition)) => {
                self.approved_hash = hash;
                self.approved_definition = definition;
                self.approved_ms = now_ms;
                true
            }
            _ => false,
        }
    }
}

/// One listing's tools by name, the last sight of a name winning. Sorted, so every
/// transaction inserts and locks rows in the same order and two replicas observing at
/// once wait for each other instead of deadlocking.
pub(super) fn by_tool(seen: &[SeenTool]) -> BTreeMap<&str, &SeenTool> {
    seen.iter().map(|s| (s.tool.as_str(), s)).collect()
}

/// Applies a listing to every stored pin of its server (which by now includes a
/// first-sight row for each tool seen) and returns those that changed, to be written back.
pub(super) fn observe_all<'p>(
    pins: &'p mut [ToolPin],
    seen: &BTreeMap<&str, &SeenTool>,
    now_ms: u64,
    auto_approve: bool,
) -> Vec<&'p ToolPin> {
    pins.iter_mut()
        .filter_map(|pin| {
            let seen = seen.get(pin.tool.as_str())?;
            let before = pin.clone();
            pin.observe(seen, now_ms, auto_approve);
            (*pin != before).then_some(&*pin)
        })
        .collect()
}

/// The columns every store reads a pin from, in [`pin_from_columns`]'s order.
pub(super) const PIN_COLUMNS: &str = "server, tool, approved_hash, approved_definition, \
    pending_hash, pending_definition, flags, first_seen_ms, last_seen_ms, approved_ms";

/// Flags are stored as a JSON array of rule ids.
pub(super) fn flags_text(flags: &[String]) -> String {
    serde_json::to_string(flags).unwrap_or_else(|_| "[]".into())
}

/// Reads a pin from a row through two column readers (text by index, integer by index),
/// so both stores map the `tool_pins` columns the same way.
pub(super) fn pin_from_columns<E>(
    text: impl Fn(usize) -> Result<Option<String>, E>,
    int: impl Fn(usize) -> Result<i64, E>,
) -> Result<ToolPin, E> {
    let s = |i: usize| -> Result<String, E> { Ok(text(i)?.unwrap_or_default()) };
    let n = |i: usize| -> Result<u64, E> { Ok(int(i)?.max(0) as u64) };
    Ok(ToolPin {
        server: s(0)?,
        tool: s(1)?,
        approved_hash: s(2)?,
        approved_definition: s(3)?,
        pending_hash: text(4)?,
        pending_definition: text(5)?,
        // A flags value this build cannot read counts as none rather than failing a listing.
        flags: serde_json::from_str(&s(6)?).unwrap_or_default(),
        first_seen_ms: n(7)?,
        last_seen_ms: n(8)?,
        approved_ms: n(9)?,
    })
}
