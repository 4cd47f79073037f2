//! Reads LAST files with the original runner's serde model and says whether each loads.
//!
//! Usage: rust_wire FILE...  Prints `ok <path>` or `error <path>: <serde message>` per file
//! and exits 1 if any failed. Besides deserializing, it checks what the types alone do not:
//! the LAST id and execution id are UUIDs of 36 characters (the archive's VARCHAR(36)).

mod original;

use std::process::ExitCode;

fn check(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let last: original::LastFile = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    for (name, id) in [("id", &last.id), ("execution_id", &last.execution_id)] {
        if id.len() != 36 {
            return Err(format!("{name} '{id}' is {} characters, not 36", id.len()));
        }
        uuid::Uuid::parse_str(id).map_err(|e| format!("{name} '{id}' is not a UUID: {e}"))?;
    }
    // Serialising back must work too (the original writes what it read).
    serde_json::to_string(&last).map_err(|e| format!("cannot serialise back: {e}"))?;
    Ok(format!(
        "{} tasks, {} nodes, {} edges, {} artifacts",
        last.task_results.len(),
        last.execution_graph.as_ref().map_or(0, |g| g.nodes.len()),
        last.execution_graph.as_ref().map_or(0, |g| g.edges.len()),
        last.artifacts.as_ref().map_or(0, |a| a.len())
    ))
}

fn main() -> ExitCode {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match check(&path) {
            Ok(detail) => println!("ok {path}: {detail}"),
            Err(message) => {
                failed = true;
                println!("error {path}: {message}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
