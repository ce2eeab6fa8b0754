use std::process::ExitCode;

use airlock_core::keys::KeyDigest;
use airlock_gateway::new_key;

pub fn new(agent: &str) -> anyhow::Result<ExitCode> {
    let key = new_key();
    println!("key for agent `{agent}` (shown once; Airlock stores only its digest):\n  {key}\n");
    println!("add its digest to the agent in your config:");
    println!("  - id: {agent}\n    keys: [\"{}\"]", KeyDigest::of(&key));
    Ok(ExitCode::SUCCESS)
}
