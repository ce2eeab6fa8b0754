//! Fuzzing the framer and the usage tap with what an upstream can send: any bytes, cut
//! into chunks anywhere. The framer's promise is that the cuts do not matter — the same
//! events come out, in order, and with `finish()` they are the stream byte for byte.

use super::*;

/// Random inputs after the corpus in a `cargo test` run (about 0.3 s in a debug build);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 5_000;

/// The chunkings compared: the whole stream at once, one byte at a time (every event
/// boundary falls between chunks), and uneven cuts taken from the bytes themselves.
fn chunkings(stream: &[u8]) -> [Vec<Bytes>; 3] {
    let whole = vec![Bytes::copy_from_slice(stream)];
    let bytes = stream.chunks(1).map(Bytes::copy_from_slice).collect();
    let mut uneven = Vec::new();
    let mut rest = stream;
    while let Some(&b) = rest.first() {
        let (chunk, tail) = rest.split_at(rest.len().min(usize::from(b % 7) + 1));
        uneven.push(Bytes::copy_from_slice(chunk));
        rest = tail;
    }
    [whole, bytes, uneven]
}

fn frame(chunks: Vec<Bytes>) -> (Vec<Bytes>, Option<Bytes>) {
    let mut framer = SseFramer::default();
    let events = chunks.into_iter().flat_map(|c| framer.push(c)).collect();
    (events, framer.finish())
}

/// Corpus: `__fuzz__/sse__fuzz__streams/corpus`, real streams of the three LLM APIs.
#[test]
fn streams() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|stream: &[u8]| {
            let [whole, rest @ ..] = chunkings(stream);
            let (events, tail) = frame(whole);
            let mut joined: Vec<u8> = events.concat();
            joined.extend(tail.iter().flat_map(|t| t.iter()));
            assert_eq!(joined, stream, "events and the tail are the stream");
            for event in &events {
                assert_eq!(event_end(event), Some(event.len()), "one whole event each");
            }
            assert!(tail.as_deref().is_none_or(|t| event_end(t).is_none()));
            for chunks in rest {
                assert_eq!(frame(chunks), (events.clone(), tail.clone()));
            }
            tap(&events, tail.as_ref());
        });
}

/// The usage tap takes whatever events the framer makes, in every dialect.
fn tap(events: &[Bytes], tail: Option<&Bytes>) {
    for dialect in [
        Dialect::OpenAiChat,
        Dialect::OpenAiResponses,
        Dialect::Anthropic,
    ] {
        for hide in [false, true] {
            let mut meter = StreamMeter::new(dialect, hide);
            for event in events.iter().chain(tail) {
                meter.observe(event);
                let _ = event_name(event);
            }
            assert!(meter.relayed_events() <= events.len() as u64 + 1);
            let _ = meter.reported();
        }
    }
}
