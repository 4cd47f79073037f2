//! The original runner's LAST model as serde sees it: the same field names, types,
//! optionality and enum spellings (`rename_all = "lowercase"`). No `deny_unknown_fields`:
//! like the original, fields it does not know are ignored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Normal,
    Dream,
    Explore,
    Chaos,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    PartialSuccess,
    Failure,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Timeout,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    File,
    Image,
    Text,
    Json,
    Log,
    Other,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Required,
    Optional,
    Conditional,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: String,
    pub execution_id: String,
    pub status: TaskStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub metadata: Option<HashMap<String, Value>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Artifact {
    pub id: String,
    pub name: String,
    pub artifact_type: ArtifactKind,
    pub task_id: String,
    pub path: String,
    pub created_at: DateTime<Utc>,
    pub size_bytes: Option<u64>,
    pub mime_type: Option<String>,
    pub metadata: Option<HashMap<String, Value>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub task_id: String,
    pub status: TaskStatus,
    pub duration_ms: Option<u64>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Edge {
    pub source: String,
    pub target: String,
    pub dependency_type: EdgeKind,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LastFile {
    pub id: String,
    pub execution_id: String,
    pub alt_file_id: String,
    pub title: String,
    pub mode: Mode,
    pub persona: Option<String>,
    pub status: RunStatus,
    pub success_rate: f64,
    pub execution_time_ms: u64,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub task_results: HashMap<String, TaskResult>,
    pub artifacts: Option<Vec<Artifact>>,
    pub metadata: Option<HashMap<String, Value>>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<Priority>,
    pub execution_graph: Option<Graph>,
    pub summary: Option<String>,
    pub version: String,
}
