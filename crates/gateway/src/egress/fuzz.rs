//! Fuzzing the egress proxy's request line: any request target an agent writes after
//! `CONNECT` or `GET` is a destination or a 400, and a destination's host reads as an
//! address or a name. (The addresses themselves are fuzzed in `core::egress::addr`.)

use airlock_core::egress::addr::parse_host;
use http::{Method, Uri};

use super::destination;

/// Random inputs after the corpus in a `cargo test` run (about 0.3 s in a debug build);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 50_000;

/// Corpus: `__fuzz__/egress__fuzz__request_targets/corpus`, CONNECT and proxy targets.
#[test]
fn request_targets() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|bytes: &[u8]| {
            let Ok(uri) = Uri::try_from(bytes) else {
                return;
            };
            for method in [Method::CONNECT, Method::GET] {
                if let Ok((host, port)) = destination(&method, &uri) {
                    assert!(!host.is_empty() && port != 0, "{uri}");
                    let _ = parse_host(&host);
                }
            }
        });
}
