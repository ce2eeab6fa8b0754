//! `airlock-mock --listen 127.0.0.1:9000 [--no-record]`: serves the mock
//! provider until killed, for end-to-end tests and benchmarks.

use std::io::Write;
use std::process::ExitCode;

use airlock_mock::Mock;
use tokio::net::TcpListener;

const USAGE: &str = "usage: airlock-mock [--listen ADDR] [--no-record]\n\
    \n  --listen ADDR   address to bind (default 127.0.0.1:0, an ephemeral port)\
    \n  --no-record     don't keep a log of requests (for benchmarks)";

struct Args {
    listen: String,
    record: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: "127.0.0.1:0".to_owned(),
        record: true,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => parsed.listen = args.next().ok_or("--listen needs an address")?,
            "--no-record" => parsed.record = false,
            _ => match arg.strip_prefix("--listen=") {
                Some(addr) => parsed.listen = addr.to_owned(),
                None => return Err(format!("unknown argument {arg}")),
            },
        }
    }
    Ok(parsed)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("airlock-mock: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("airlock-mock: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mock = Mock::start_on(listener, args.record).await;
    // Test harnesses wait for this line (and read the port from it).
    println!("listening on {}", mock.addr);
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
