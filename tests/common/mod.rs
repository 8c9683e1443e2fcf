//! Helpers shared by the end-to-end tests: run the real binary, validate against the schema.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The crate root: tests run the binary from there so file names in reports are relative.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory of the test's own (`tcplife-TAG-` and a unique suffix), made by the
/// `tempfile` crate the program itself uses and removed when dropped, so that test runs leave
/// nothing behind.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tcplife-{tag}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `bytes` to `name` in the directory; returns the full path as a string.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.path()
    }
}

/// Runs `tcplife` with `args` from the crate root.
pub fn tcplife(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcplife"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("run tcplife")
}

/// Runs `tcplife` feeding `input` on standard input.
pub fn tcplife_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcplife"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcplife");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait tcplife");
    writer.join().expect("writer");
    out
}

/// `analyze --format json` of one capture, which must exit 0.
pub fn analyze_json(capture: &str) -> Value {
    let out = tcplife(&["analyze", "--format", "json", "--quiet", capture]);
    assert!(
        out.status.success(),
        "{capture}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("schema/tcplife.schema.json"))
            .expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    })
}

/// Fails the test with every schema violation in `doc`.
pub fn assert_schema_valid(doc: &Value, what: &str) {
    let errors: Vec<String> = validator()
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} violates the schema:\n{}",
        errors.join("\n")
    );
}

/// Capture files directly in `dir` (sorted), by extension.
pub fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng" | "gz" | "zst")
        )
    });
    files.sort();
    files
}

/// A path relative to the crate root, with forward slashes.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// One side's state changes in a JSON record, as (from, to) pairs.
pub fn transitions(conn: &Value, side: &str) -> Vec<(String, String)> {
    conn["states"][side]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
