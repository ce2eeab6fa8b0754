//! Server-sent events framing and the usage tap that meters LLM streams as they pass.
//!
//! The relay forwards whole events as soon as they are complete and never holds more
//! than the one event still arriving, so metering adds no delay a client could notice.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::usage::{Dialect, Usage, UsageReport};

/// Splits a byte stream into complete SSE events (each including its blank-line end).
/// An event still arriving past [`MAX_HELD`] bytes is passed on in pieces instead.
#[derive(Default)]
pub struct SseFramer {
    partial: BytesMut,
}

/// The most of one event the framer holds. A peer (a provider, an MCP server, a remote
/// agent) that never ends an event must not grow the gateway's memory without bound: past
/// this, what arrived is passed on as a piece (not a whole event, so readers find nothing
/// in it) and framing resumes at the event's end.
pub const MAX_HELD: usize = 16 << 20;

impl SseFramer {
    /// Feeds one chunk; returns the events it completes, in order. Zero-copy when the
    /// chunk starts on an event boundary.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.partial.is_empty() {
            let mut rest = chunk;
            while let Some(end) = event_end(&rest) {
                out.push(rest.split_to(end));
            }
            self.partial.extend_from_slice(&rest);
            self.spill(&mut out);
            return out;
        }
        // The held bytes hold no terminator, so one can only end in the new bytes and start
        // at most 3 bytes before them. Scanning from there, not from the start, keeps an
        // event trickled in small chunks linear instead of quadratic.
        let mut from = self.partial.len().saturating_sub(3);
        self.partial.extend_from_slice(&chunk);
        while let Some(end) = event_end(&self.partial[from..]) {
            out.push(self.partial.split_to(from + end).freeze());
            from = 0;
        }
        self.spill(&mut out);
        out
    }

    /// Passes on all but the last 3 bytes (which may begin the terminator) of an event held
    /// past [`MAX_HELD`].
    fn spill(&mut self, out: &mut Vec<Bytes>) {
        if self.partial.len() > MAX_HELD {
            let piece = self.partial.len() - 3;
            out.push(self.partial.split_to(piece).freeze());
        }
    }

    /// What is left when the stream ends without a final blank line.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial).freeze())
    }
}

/// Index just past the first event terminator (`\n\n`, `\r\n\r\n` or `\r\r`).
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => return Some(i + 2),
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

/// The `event:` name of one event, if it has one.
pub fn event_name(event: &[u8]) -> Option<&[u8]> {
    event.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let value = line.strip_prefix(b"event:")?;
        Some(value.strip_prefix(b" ").unwrap_or(value))
    })
}

/// The `data:` payload of one event (multi-line data joined with `\n`), if any.
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    data
}

/// True when `json` has a member `"name"` whose value is an object: a cheap test that
/// spares parsing the many chunks that carry no usage (or `"usage":null`).
fn has_object_member(json: &[u8], name: &str) -> bool {
    let key = format!("\"{name}\"");
    let key = key.as_bytes();
    let mut from = 0;
    while let Some(pos) = json[from..].windows(key.len()).position(|w| w == key) {
        let after = &json[from + pos + key.len()..];
        let mut it = after.iter().skip_while(|b| b.is_ascii_whitespace());
        if it.next() == Some(&b':') && it.find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return true;
        }
        from += pos + key.len();
    }
    false
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<UsageReport>,
}

#[derive(Deserialize)]
struct Envelope {
    usage: Option<UsageReport>,
    response: Option<WithUsage>,
    message: Option<WithUsage>,
    choices: Option<Vec<IgnoredAny>>,
}

/// What the relay should do with one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Relay,
    /// The usage-only chunk Airlock asked for on the client's behalf: metered, not shown.
    Drop,
}

/// Meters an LLM stream from the provider's own usage events.
pub struct StreamMeter {
    dialect: Dialect,
    hide_usage_chunk: bool,
    report: Option<UsageReport>,
    relayed_events: u64,
}

impl StreamMeter {
    /// `hide_usage_chunk`: Airlock injected `stream_options.include_usage`, so the
    /// usage-only chunk must not reach a client that did not ask for it.
    pub fn new(dialect: Dialect, hide_usage_chunk: bool) -> Self {
        StreamMeter {
            dialect,
            hide_usage_chunk,
            report: None,
            relayed_events: 0,
        }
    }

    pub fn observe(&mut self, event: &[u8]) -> Verdict {
        let Some(data) = event_data(event) else {
            return Verdict::Relay;
        };
        if !has_object_member(&data, "usage") {
            self.relayed_events += 1;
            return Verdict::Relay;
        }
        let Ok(env) = serde_json::from_slice::<Envelope>(&data) else {
            self.relayed_events += 1;
            return Verdict::Relay;
        };
        let found = env
            .usage
            .or(env.response.and_then(|r| r.usage))
            .or(env.message.and_then(|m| m.usage));
        let usage_only = env.choices.as_ref().is_some_and(|c| c.is_empty()) && env.usage.is_some();
        if let Some(found) = found {
            self.report
                .get_or_insert_with(UsageReport::default)
                .merge(found);
        }
        if usage_only && self.hide_usage_chunk {
            return Verdict::Drop;
        }
        self.relayed_events += 1;
        Verdict::Relay
    }

    /// The provider's usage, if its stream reported any.
    pub fn reported(&self) -> Option<Usage> {
        self.report.map(|r| r.normalise(self.dialect))
    }

    /// Events relayed to the client: the estimate of output tokens for a stream cut
    /// short before the provider's usage report (one delta is about one token).
    pub fn relayed_events(&self) -> u64 {
        self.relayed_events
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_that_never_ends_is_passed_on_in_pieces_not_held() {
        let mut framer = SseFramer::default();
        let chunk = Bytes::from(vec![b'x'; 1 << 20]);
        let mut passed = 0;
        for _ in 0..20 {
            passed += framer
                .push(chunk.clone())
                .iter()
                .map(Bytes::len)
                .sum::<usize>();
            assert!(
                framer.partial.len() <= MAX_HELD,
                "held {}",
                framer.partial.len()
            );
        }
        assert!(passed > 0);
        // The event ends; framing goes on with the next one.
        let tail = Bytes::from_static(b"\n\ndata: next\n\n");
        let out = framer.push(tail.clone());
        assert_eq!(out.last().map(|e| &e[..]), Some(&b"data: next\n\n"[..]));
        passed += out.iter().map(Bytes::len).sum::<usize>();
        assert_eq!(
            passed,
            20 * (1 << 20) + tail.len(),
            "every byte passed on once"
        );
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn framer_reassembles_split_events() {
        let mut f = SseFramer::default();
        assert!(f.push(Bytes::from_static(b"data: {\"a\"")).is_empty());
        let ev = f.push(Bytes::from_static(b":1}\n\ndata: [DONE]\n\nevent: x\r\n"));
        assert_eq!(
            ev,
            vec![
                Bytes::from_static(b"data: {\"a\":1}\n\n"),
                Bytes::from_static(b"data: [DONE]\n\n")
            ]
        );
        let ev = f.push(Bytes::from_static(b"data: y\r\n\r\n"));
        assert_eq!(ev, vec![Bytes::from_static(b"event: x\r\ndata: y\r\n\r\n")]);
        assert_eq!(event_data(&ev[0]).unwrap(), b"y");
        assert!(f.finish().is_none());
        f.push(Bytes::from_static(b"data: tail"));
        assert_eq!(f.finish().unwrap(), Bytes::from_static(b"data: tail"));
    }

    #[test]
    fn usage_member_detection() {
        assert!(has_object_member(br#"{"usage": {"x":1}}"#, "usage"));
        assert!(!has_object_member(br#"{"usage":null}"#, "usage"));
        assert!(!has_object_member(br#"{"content":"usage"}"#, "usage"));
        assert!(has_object_member(
            br#"{"a":"\"usage\"","usage":{}}"#,
            "usage"
        ));
    }

    #[test]
    fn openai_injected_usage_chunk_is_metered_and_hidden() {
        let mut m = StreamMeter::new(Dialect::OpenAiChat, true);
        assert_eq!(
            m.observe(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n"),
            Verdict::Relay
        );
        assert_eq!(
            m.observe(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n"),
            Verdict::Drop
        );
        assert_eq!(m.observe(b"data: [DONE]\n\n"), Verdict::Relay);
        let u = m.reported().unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (9, 2));
        // A client that asked for usage sees the chunk.
        let mut m = StreamMeter::new(Dialect::OpenAiChat, false);
        assert_eq!(
            m.observe(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9}}\n\n"),
            Verdict::Relay
        );
    }

    #[test]
    fn compatible_servers_with_usage_on_the_last_content_chunk_are_relayed() {
        let mut m = StreamMeter::new(Dialect::OpenAiChat, true);
        let last = b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n";
        assert_eq!(m.observe(last), Verdict::Relay);
        assert_eq!(m.reported().unwrap().input_tokens, 4);
    }

    #[test]
    fn anthropic_stream_merges_start_and_delta() {
        let mut m = StreamMeter::new(Dialect::Anthropic, false);
        m.observe(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n");
        m.observe(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"a\"}}\n\n");
        m.observe(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n");
        let u = m.reported().unwrap();
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (15, 3, 7)
        );
    }

    #[test]
    fn responses_completed_event_carries_usage() {
        let mut m = StreamMeter::new(Dialect::OpenAiResponses, false);
        m.observe(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}}\n\n");
        assert_eq!(m.reported().unwrap().output_tokens, 6);
    }
}
