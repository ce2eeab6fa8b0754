//! `airlock-bench-probe`: the timing client of `bench/run`, `bench/controls`, `bench/mcp`
//! and `bench/egress`.
//!
//! Two HTTP modes, both sending the same request to several targets and
//! interleaving them (request i goes to target i mod T) so that every path
//! sees the same machine conditions:
//!
//! * `latency`: full request/response round trips over keep-alive
//!   connections; prints p50/p90/p99/mean and the rate of round trips
//!   (`rps`) per target. With `--expect TEXT`, a 2xx response whose body
//!   lacks TEXT counts as an error (e.g. a JSON-RPC error, which comes as 200).
//! * `stream`: SSE responses read frame by frame, each event timestamped as
//!   it arrives; prints time to first content delta and the gaps between
//!   content deltas per target.
//!
//! And one TCP mode:
//!
//! * `bulk`: per round, opens a connection to each `tcp://host:port` target in
//!   turn, writes the byte count `--bytes N` as a decimal line and reads to the
//!   end (a source such as `bench/lib/bulk_source.py` answers with N bytes and
//!   closes); prints per target the MB/s (10^6 bytes) of every measured round
//!   (`n` of them), their median, and the median time to open the connection.
//!
//! Output is one JSON object per target per line, for the bench scripts to parse.
//! Every target must be a plain `http://` URL (`tcp://` for `bulk`; the benchmark
//! only talks to 127.0.0.1). `--header` goes to every target, `--target-header
//! NAME='k: v'` to target NAME only (e.g. its MCP session id, or the
//! `Proxy-Authorization` of its proxy). `--proxy NAME=http://host:port` reaches
//! target NAME through that HTTP forward proxy: requests in absolute form
//! (`POST http://host:port/path`), `bulk` through a `CONNECT host:port` tunnel.
//! The first `{seq}` in the body, if any, is replaced by a number unique to each
//! request (e.g. a JSON-RPC id, which must not repeat among calls in flight).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "usage:
  airlock-bench-probe latency --target NAME=URL... [--header 'k: v']...
                              [--target-header NAME='k: v']... --body JSON
                              [--requests N] [--warmup N] [--concurrency C]
                              [--expect TEXT]
  airlock-bench-probe stream  --target NAME=URL... [--header 'k: v']...
                              [--target-header NAME='k: v']... --body JSON
                              [--streams N] [--warmup N]
  airlock-bench-probe bulk    --target NAME=tcp://HOST:PORT... --bytes N [--rounds N]
                              [--target-header NAME='k: v']...
  --proxy NAME=http://HOST:PORT (any mode): reach target NAME through that forward proxy.
The first `{seq}` in JSON is replaced by a number unique to each request.";

type Header = (HeaderName, HeaderValue);

#[derive(Clone)]
struct Target {
    name: String,
    uri: Uri,
    /// Sent to this target only, after the common headers.
    headers: Vec<Header>,
    /// `host:port` of the forward proxy this target is reached through, if any.
    proxy: Option<String>,
}

impl Target {
    fn authority(&self) -> String {
        let a = self.uri.authority().expect("checked in parse");
        format!("{}:{}", a.host(), a.port_u16().unwrap_or(80))
    }

    /// Where the TCP connection goes: the proxy, or the target itself.
    fn connect_to(&self) -> String {
        self.proxy.clone().unwrap_or_else(|| self.authority())
    }
}

struct Args {
    mode: String,
    targets: Vec<Target>,
    headers: Vec<Header>,
    body: Bytes,
    /// The body split around its first `{seq}`, if it has one.
    seq_split: Option<(Bytes, Bytes)>,
    /// `latency`: text every response body must contain.
    expect: Option<Vec<u8>>,
    count: usize,
    warmup: usize,
    concurrency: usize,
    /// `bulk`: bytes to ask for per round.
    bytes: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("missing mode")?;
    if !["latency", "stream", "bulk"].contains(&mode.as_str()) {
        return Err(format!("unknown mode {mode}"));
    }
    let mut args = Args {
        mode,
        targets: Vec::new(),
        headers: Vec::new(),
        body: Bytes::new(),
        seq_split: None,
        expect: None,
        count: 0,
        warmup: 0,
        concurrency: 1,
        bytes: 0,
    };
    let scheme = if args.mode == "bulk" { "tcp" } else { "http" };
    let mut count = None;
    let mut target_headers = Vec::new();
    let mut proxies = Vec::new();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("bad number {v}"));
        match flag.as_str() {
            "--target" => {
                let v = value()?;
                let (name, url) = v.split_once('=').ok_or("--target is NAME=URL")?;
                let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
                if uri.scheme_str() != Some(scheme) || uri.authority().is_none() {
                    return Err(format!("{url}: only {scheme}://host:port/... URLs"));
                }
                args.targets.push(Target {
                    name: name.to_owned(),
                    uri,
                    headers: Vec::new(),
                    proxy: None,
                });
            }
            "--header" => args.headers.push(header(&value()?)?),
            "--target-header" => {
                let v = value()?;
                let (name, h) = v.split_once('=').ok_or("--target-header is NAME='k: v'")?;
                target_headers.push((name.to_owned(), header(h)?));
            }
            "--proxy" => {
                let v = value()?;
                let (name, url) = v
                    .split_once('=')
                    .ok_or("--proxy is NAME=http://host:port")?;
                let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
                let a = uri.authority().filter(|_| uri.scheme_str() == Some("http"));
                let a = a.ok_or(format!("{url}: the proxy is http://host:port"))?;
                proxies.push((
                    name.to_owned(),
                    format!("{}:{}", a.host(), a.port_u16().unwrap_or(80)),
                ));
            }
            "--bytes" => args.bytes = number(value()?)? as u64,
            "--body" => args.body = Bytes::from(value()?),
            "--expect" => args.expect = Some(value()?.into_bytes()).filter(|e| !e.is_empty()),
            "--requests" | "--streams" | "--rounds" => count = Some(number(value()?)?),
            "--warmup" => args.warmup = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?.max(1),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.targets.is_empty() {
        return Err("at least one --target".into());
    }
    for (name, h) in target_headers {
        let target = args.targets.iter_mut().find(|t| t.name == name);
        target
            .ok_or(format!("--target-header for an unknown target {name}"))?
            .headers
            .push(h);
    }
    for (name, proxy) in proxies {
        let target = args.targets.iter_mut().find(|t| t.name == name);
        target
            .ok_or(format!("--proxy for an unknown target {name}"))?
            .proxy = Some(proxy);
    }
    if args.mode == "bulk" && args.bytes == 0 {
        return Err("bulk needs --bytes N".into());
    }
    if let Some(at) = args.body.windows(5).position(|w| w == b"{seq}") {
        let (head, tail) = (args.body.slice(..at), args.body.slice(at + 5..));
        args.seq_split = Some((head, tail));
    }
    args.count = count.unwrap_or(match args.mode.as_str() {
        "latency" => 2000,
        "stream" => 20,
        _ => 5,
    });
    Ok(args)
}

fn header(v: &str) -> Result<Header, String> {
    let (k, val) = v.split_once(':').ok_or("a header is 'name: value'")?;
    let name = HeaderName::try_from(k.trim()).map_err(|e| e.to_string())?;
    let val = HeaderValue::try_from(val.trim()).map_err(|e| e.to_string())?;
    Ok((name, val))
}

/// The request body: `--body`, with its `{seq}` (if any) replaced by a fresh number.
fn body(args: &Args) -> Bytes {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    let Some((head, tail)) = &args.seq_split else {
        return args.body.clone();
    };
    let seq = SEQ.fetch_add(1, Ordering::Relaxed).to_string();
    let mut b = BytesMut::with_capacity(head.len() + seq.len() + tail.len());
    b.extend_from_slice(head);
    b.extend_from_slice(seq.as_bytes());
    b.extend_from_slice(tail);
    b.freeze()
}

/// One keep-alive HTTP/1.1 connection to one target, reopened if it breaks.
struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(target: Target) -> Conn {
        Conn {
            target,
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if let Some(s) = &self.sender
            && (s.is_closed() || !s.is_ready())
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let addr = self.target.connect_to();
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake {addr}: {e}"))?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("just set");
        sender.ready().await.map_err(|e| e.to_string())?;
        Ok(sender)
    }

    fn request(&self, args: &Args) -> Request<Full<Bytes>> {
        let uri = &self.target.uri;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let body = body(args);
        let len = body.len();
        // Through a forward proxy the request-target is the absolute URL.
        let target = if self.target.proxy.is_some() {
            uri.clone()
        } else {
            Uri::try_from(path).expect("a path of a valid URL")
        };
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(target)
            .body(Full::new(body))
            .expect("valid request");
        let h = req.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(uri.authority().expect("checked").as_str()).expect("host"),
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        for (k, v) in args.headers.iter().chain(&self.target.headers) {
            h.insert(k.clone(), v.clone());
        }
        req
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "null".into()
    }
}

/// One full round trip; the time from sending to the last body byte.
async fn round_trip(conn: &mut Conn, args: &Args) -> Result<Duration, String> {
    let req = conn.request(args);
    let sender = conn.sender().await?;
    let start = Instant::now();
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    let body = body.to_bytes();
    let expected = args
        .expect
        .as_ref()
        .is_none_or(|e| body.windows(e.len()).any(|w| w == e.as_slice()));
    if !status.is_success() || !expected {
        let text = String::from_utf8_lossy(&body).into_owned();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(elapsed)
}

async fn latency(args: Args) -> Result<(), String> {
    let args = std::sync::Arc::new(args);
    let t = args.targets.len();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let args = args.clone();
        // Each worker owns one connection per target and walks the targets in
        // turn, starting at a different one so workers stay interleaved.
        tasks.push(tokio::spawn(async move {
            let mut conns: Vec<Conn> = args.targets.iter().cloned().map(Conn::new).collect();
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); t];
            // Time this connection spent on the target's measured round trips.
            let mut busy = vec![Duration::ZERO; t];
            let mut errors = vec![0usize; t];
            let mut first_error: Option<String> = None;
            let mut sent = vec![0usize; t];
            let per_worker = |total: usize| {
                total / args.concurrency + usize::from(worker < total % args.concurrency)
            };
            let (warm, count) = (per_worker(args.warmup), per_worker(args.count));
            for i in 0..(warm + count) * t {
                let k = (i + worker) % t;
                sent[k] += 1;
                match round_trip(&mut conns[k], &args).await {
                    Ok(d) if i >= warm * t => {
                        samples[k].push(us(d));
                        busy[k] += d;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors[k] += 1;
                        conns[k].sender = None;
                        first_error.get_or_insert(format!("{}: {e}", conns[k].target.name));
                    }
                }
            }
            // Round trips per second on each target: this connection's share.
            let rps: Vec<f64> = (0..t)
                .map(|k| match busy[k].as_secs_f64() {
                    b if b > 0.0 => samples[k].len() as f64 / b,
                    _ => 0.0,
                })
                .collect();
            (samples, errors, sent, first_error, rps)
        }));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut errors = vec![0usize; t];
    let mut sent = vec![0usize; t];
    // The rate each target answered at: the connections' rates summed (with requests
    // interleaved the targets share the wall clock, so each is timed only on its own
    // round trips; this is concurrency / mean latency).
    let mut rps = vec![0.0f64; t];
    for task in tasks {
        let (s, e, n, first, r) = task.await.map_err(|e| e.to_string())?;
        for k in 0..t {
            rps[k] += r[k];
            samples[k].extend(&s[k]);
            errors[k] += e[k];
            sent[k] += n[k];
        }
        if let Some(first) = first {
            eprintln!("probe: {first}");
        }
    }
    for (k, target) in args.targets.iter().enumerate() {
        let s = &mut samples[k];
        s.sort_by(f64::total_cmp);
        println!(
            "{{\"target\":\"{}\",\"sent\":{},\"n\":{},\"errors\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"mean_us\":{},\"max_us\":{},\"rps\":{}}}",
            target.name,
            sent[k],
            s.len(),
            errors[k],
            json_num(percentile(s, 50.0)),
            json_num(percentile(s, 90.0)),
            json_num(percentile(s, 99.0)),
            json_num(mean(s)),
            json_num(s.last().copied().unwrap_or(f64::NAN)),
            json_num(rps[k]),
        );
    }
    Ok(())
}

/// Timings of one stream.
struct StreamTiming {
    headers: Duration,
    /// Arrival of each content delta, from the request's start.
    deltas: Vec<Duration>,
}

/// Whether an SSE event carries a non-empty content delta (OpenAI chat
/// chunk `"delta":{"content":"…"}`; the role chunk's `"content":""` is not one).
fn is_content_delta(event: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"content\":\"";
    event
        .windows(NEEDLE.len())
        .position(|w| w == NEEDLE)
        .is_some_and(|at| event.get(at + NEEDLE.len()).is_some_and(|&c| c != b'"'))
}

async fn one_stream(conn: &mut Conn, args: &Args) -> Result<StreamTiming, String> {
    let req = conn.request(args);
    let sender = conn.sender().await?;
    let start = Instant::now();
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let headers = start.elapsed();
    if !res.status().is_success() {
        return Err(format!("HTTP {}", res.status()));
    }
    let mut body = res.into_body();
    let mut buf = BytesMut::new();
    let mut deltas = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let at = start.elapsed();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // Every complete event in the buffer arrived with this frame.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event = buf.split_to(end + 2);
            if is_content_delta(&event) {
                deltas.push(at);
            }
        }
    }
    Ok(StreamTiming { headers, deltas })
}

async fn stream(args: Args) -> Result<(), String> {
    let t = args.targets.len();
    let mut conns: Vec<Conn> = args.targets.iter().cloned().map(Conn::new).collect();
    let mut ttft: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut head: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut gaps: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut deltas: Vec<Vec<usize>> = vec![Vec::new(); t];
    let mut errors = vec![0usize; t];
    let mut sent = vec![0usize; t];
    for i in 0..(args.warmup + args.count) * t {
        let k = i % t;
        sent[k] += 1;
        match one_stream(&mut conns[k], &args).await {
            Ok(timing) if i >= args.warmup * t => {
                head[k].push(us(timing.headers));
                if let Some(first) = timing.deltas.first() {
                    ttft[k].push(us(*first));
                }
                for pair in timing.deltas.windows(2) {
                    gaps[k].push(us(pair[1] - pair[0]));
                }
                deltas[k].push(timing.deltas.len());
            }
            Ok(_) => {}
            Err(e) => {
                errors[k] += 1;
                conns[k].sender = None;
                eprintln!("probe: {}: {e}", conns[k].target.name);
            }
        }
    }
    for (k, target) in args.targets.iter().enumerate() {
        ttft[k].sort_by(f64::total_cmp);
        gaps[k].sort_by(f64::total_cmp);
        let per_stream = if deltas[k].is_empty() {
            0.0
        } else {
            deltas[k].iter().sum::<usize>() as f64 / deltas[k].len() as f64
        };
        let mut line = String::new();
        let _ = write!(
            line,
            "{{\"target\":\"{}\",\"sent\":{},\"streams\":{},\"errors\":{},\"deltas_per_stream\":{:.1},\
             \"headers_mean_us\":{},\"ttft_mean_us\":{},\"ttft_p50_us\":{},\"ttft_max_us\":{},\
             \"gap_mean_us\":{},\"gap_p50_us\":{},\"gap_p99_us\":{},\"gap_max_us\":{}}}",
            target.name,
            sent[k],
            ttft[k].len(),
            errors[k],
            per_stream,
            json_num(mean(&head[k])),
            json_num(mean(&ttft[k])),
            json_num(percentile(&ttft[k], 50.0)),
            json_num(ttft[k].last().copied().unwrap_or(f64::NAN)),
            json_num(mean(&gaps[k])),
            json_num(percentile(&gaps[k], 50.0)),
            json_num(percentile(&gaps[k], 99.0)),
            json_num(gaps[k].last().copied().unwrap_or(f64::NAN)),
        );
        println!("{line}");
    }
    Ok(())
}

/// Opens a connection to the target, through a `CONNECT` tunnel if it has a proxy.
/// Returns the stream and any bytes that came after the proxy's answer.
async fn open_tcp(target: &Target) -> Result<(TcpStream, Vec<u8>), String> {
    let addr = target.connect_to();
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    if target.proxy.is_none() {
        return Ok((stream, Vec::new()));
    }
    let dest = target.authority();
    let mut head = format!("CONNECT {dest} HTTP/1.1\r\nhost: {dest}\r\n");
    for (k, v) in &target.headers {
        let _ = write!(head, "{k}: {}\r\n", v.to_str().unwrap_or(""));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || got.len() > 16 * 1024 {
            return Err(format!("{addr}: no answer to CONNECT {dest}"));
        }
        got.extend_from_slice(&buf[..n]);
    };
    let status_line = String::from_utf8_lossy(&got[..end]);
    let status_line = status_line.lines().next().unwrap_or("").to_owned();
    if status_line.split(' ').nth(1) != Some("200") {
        return Err(format!("CONNECT {dest} via {addr}: {status_line}"));
    }
    Ok((stream, got.split_off(end)))
}

/// One round of `bulk` on one target: (time to open, time from the request to the last byte).
async fn one_bulk(target: &Target, bytes: u64) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let (mut stream, early) = open_tcp(target).await?;
    let opened = start.elapsed();
    let start = Instant::now();
    stream
        .write_all(format!("{bytes}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut got = early.len() as u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut buf).await.map_err(|e| e.to_string())? {
            0 => break,
            n => got += n as u64,
        }
    }
    let elapsed = start.elapsed();
    if got != bytes {
        return Err(format!("{}: read {got} bytes of {bytes}", target.name));
    }
    Ok((opened, elapsed))
}

async fn bulk(args: Args) -> Result<(), String> {
    let t = args.targets.len();
    let mut mbps: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut open_us: Vec<Vec<f64>> = vec![Vec::new(); t];
    let mut errors = vec![0usize; t];
    for round in 0..args.warmup + args.count {
        // Each round starts at a different target, so none is always first.
        for j in 0..t {
            let k = (round + j) % t;
            match one_bulk(&args.targets[k], args.bytes).await {
                Ok((opened, took)) if round >= args.warmup => {
                    mbps[k].push(args.bytes as f64 / took.as_secs_f64() / 1e6);
                    open_us[k].push(us(opened));
                }
                Ok(_) => {}
                Err(e) => {
                    errors[k] += 1;
                    eprintln!("probe: {}: {e}", args.targets[k].name);
                }
            }
        }
    }
    for (k, target) in args.targets.iter().enumerate() {
        let rounds: Vec<String> = mbps[k].iter().map(|x| format!("{x:.1}")).collect();
        mbps[k].sort_by(f64::total_cmp);
        open_us[k].sort_by(f64::total_cmp);
        println!(
            "{{\"target\":\"{}\",\"bytes\":{},\"n\":{},\"errors\":{},\"mbps\":[{}],\"median_mbps\":{},\"open_median_us\":{}}}",
            target.name,
            args.bytes,
            mbps[k].len(),
            errors[k],
            rounds.join(","),
            json_num(percentile(&mbps[k], 50.0)),
            json_num(percentile(&open_us[k], 50.0)),
        );
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("airlock-bench-probe: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.mode.as_str() {
        "latency" => latency(args).await,
        "stream" => stream(args).await,
        _ => bulk(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock-bench-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_deltas_are_told_from_the_role_chunk() {
        assert!(is_content_delta(
            br#"data: {"choices":[{"delta":{"content":"w1"}}]}"#
        ));
        assert!(!is_content_delta(
            br#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(!is_content_delta(br#"data: {"choices":[{"delta":{}}]}"#));
        assert!(!is_content_delta(b"data: [DONE]"));
    }

    #[test]
    fn seq_is_replaced_by_a_fresh_number() {
        let mut args = Args {
            mode: "latency".into(),
            targets: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            seq_split: Some((Bytes::from_static(b"{\"id\":"), Bytes::from_static(b"}"))),
            expect: None,
            count: 0,
            warmup: 0,
            concurrency: 1,
            bytes: 0,
        };
        let (a, b) = (body(&args), body(&args));
        assert!(a.starts_with(b"{\"id\":") && a.ends_with(b"}") && a != b);
        args.seq_split = None;
        args.body = Bytes::from_static(b"{}");
        assert_eq!(body(&args), Bytes::from_static(b"{}"));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }
}
