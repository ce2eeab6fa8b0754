//! Checkpoints: where the chain's end was after each committed batch, kept outside the
//! ledger's tables. The hash chain shows a row edited or removed between others, but rows
//! deleted from the end leave a shorter chain that is still whole; a checkpoint file
//! written beside the ledger (or shipped off the host) remembers how far it went.
//!
//! The file is JSON lines `{"seq":…,"hash":"…","ts_ms":…}`: `seq` is the store's position
//! of the batch's last row (SQLite's rowid, PostgreSQL's seq), `hash` that row's link.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::LedgerError;
use super::chain::Break;

/// The row an append chained last: what a checkpoint records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub position: i64,
    pub hash: String,
}

/// One line of a checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub ts_ms: u64,
}

/// A file past this is rewritten with only its last lines.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// What a rewrite keeps of the file's end (about 800 checkpoints).
const KEEP_BYTES: usize = 64 << 10;

/// Appends a checkpoint after each committed batch. A failure is logged, once until
/// writes work again, and never fails the append: the ledger matters more than its
/// witness.
pub(super) struct CheckpointWriter {
    path: PathBuf,
    /// Opened on first use, and again after a failure.
    file: Option<File>,
    len: u64,
    failing: bool,
}

impl CheckpointWriter {
    pub fn new(path: PathBuf) -> CheckpointWriter {
        CheckpointWriter {
            path,
            file: None,
            len: 0,
            failing: false,
        }
    }

    pub fn record(&mut self, head: &ChainHead) {
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match self.append(head, ts_ms) {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(path = %self.path.display(), "checkpoint writes work again");
            }
            Ok(()) => {}
            Err(e) => {
                self.file = None;
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(path = %self.path.display(), error = %e,
                        "cannot write the ledger's checkpoint; truncation after this point will not be detectable");
                }
            }
        }
    }

    fn append(&mut self, head: &ChainHead, ts_ms: u64) -> std::io::Result<()> {
        let line = serde_json::to_string(&Checkpoint {
            seq: head.position,
            hash: head.hash.clone(),
            ts_ms,
        })? + "\n";
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.len = file.metadata()?.len();
                self.file.insert(file)
            }
        };
        file.write_all(line.as_bytes())?;
        self.len += line.len() as u64;
        if self.len > MAX_FILE_BYTES {
            self.keep_the_end()?;
        }
        Ok(())
    }

    /// Rewrites the file with its last lines only, through a temporary file renamed over
    /// it, so a crash leaves the old file or the new one, never half of one.
    fn keep_the_end(&mut self) -> std::io::Result<()> {
        let text = std::fs::read(&self.path)?;
        let from = text.len().saturating_sub(KEEP_BYTES);
        let start = text[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| from + i + 1);
        let tail = &text[start..];
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut file = File::create(&tmp)?;
        file.write_all(tail)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = None;
        self.len = tail.len() as u64;
        Ok(())
    }
}

/// A checkpoint as read back, with where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub checkpoint: Checkpoint,
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

/// Every checkpoint in the file at `path`. A last line cut short (the writer stopped in
/// the middle of it) is left out; any other line that is not a checkpoint is an error.
pub fn read(path: &Path) -> Result<Vec<Mark>, LedgerError> {
    let io = |source| LedgerError::Checkpoint {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    text[..complete]
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let checkpoint = serde_json::from_str(line).map_err(|e| io(e.into()))?;
            Ok(Mark {
                checkpoint,
                file: path.to_owned(),
                line: i + 1,
            })
        })
        .collect()
}

/// How the chain compared with one checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointUse {
    pub file: String,
    /// Checkpoints in the file.
    pub checkpoints: u64,
    /// The one furthest along, which the chain reached.
    pub latest: Option<MarkSeen>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarkSeen {
    pub seq: i64,
    pub ts_ms: u64,
    pub line: usize,
}

/// The checkpoints an audit checks the chain against, by position.
pub(super) struct Marks {
    files: Vec<CheckpointUse>,
    /// By seq: the file (an index into `files`) and the mark.
    pending: BTreeMap<i64, Vec<(usize, Mark)>>,
}

impl Marks {
    pub fn new(marks: Vec<Mark>) -> Marks {
        let mut files: Vec<CheckpointUse> = Vec::new();
        let mut pending: BTreeMap<i64, Vec<(usize, Mark)>> = BTreeMap::new();
        for mark in marks {
            let name = mark.file.display().to_string();
            let file = match files.iter().position(|f| f.file == name) {
                Some(i) => i,
                None => {
                    files.push(CheckpointUse {
                        file: name,
                        checkpoints: 0,
                        latest: None,
                    });
                    files.len() - 1
                }
            };
            files[file].checkpoints += 1;
            pending
                .entry(mark.checkpoint.seq)
                .or_default()
                .push((file, mark));
        }
        Marks { files, pending }
    }

    /// A chained row at `position` with `hash`, walked in order: a break if a checkpoint
    /// there saw another row, or named a position the chain passed without a row.
    pub fn check(&mut self, position: i64, hash: &str) -> Option<Break> {
        if let Some(gone) = self.skipped(position) {
            return Some(gone);
        }
        for (file, mark) in self.pending.remove(&position).unwrap_or_default() {
            if mark.checkpoint.hash != hash {
                return Some(diverged(&mark));
            }
            let seen = MarkSeen {
                seq: position,
                ts_ms: mark.checkpoint.ts_ms,
                line: mark.line,
            };
            self.files[file].latest = Some(seen);
        }
        None
    }

    /// After the last row (at `last`, if any): a break if a checkpoint is past it.
    pub fn finish(&mut self, last: Option<i64>) -> Option<Break> {
        if let Some(gone) = self.skipped(last.map_or(i64::MIN, |l| l + 1)) {
            return Some(gone);
        }
        let (_, marks) = self.pending.pop_first()?;
        let (_, mark) = marks.into_iter().next()?;
        Some(Break::Truncated {
            seq: mark.checkpoint.seq,
            ts_ms: mark.checkpoint.ts_ms,
            checkpoint: mark.file.display().to_string(),
            line: mark.line,
            last_seq: last,
        })
    }

    /// A checkpoint before `position` that no row matched: its row is gone.
    fn skipped(&mut self, position: i64) -> Option<Break> {
        let (&seq, marks) = self.pending.first_key_value()?;
        (seq < position).then(|| diverged(&marks[0].1))
    }

    pub fn into_uses(self) -> Vec<CheckpointUse> {
        self.files
    }
}

fn diverged(mark: &Mark) -> Break {
    Break::Diverged {
        seq: mark.checkpoint.seq,
        ts_ms: mark.checkpoint.ts_ms,
        checkpoint: mark.file.display().to_string(),
        line: mark.line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_file_is_rewritten_with_its_end() {
        let dir = std::env::temp_dir().join(format!("airlock-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.checkpoint");
        let mut writer = CheckpointWriter::new(path.clone());
        let hash = "h".repeat(64);
        let mut last = 0;
        while std::fs::metadata(&path).map_or(0, |m| m.len()) <= KEEP_BYTES as u64 * 2
            || last < 20_000
        {
            last += 1;
            writer.record(&ChainHead {
                position: last,
                hash: hash.clone(),
            });
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= MAX_FILE_BYTES, "{size} bytes");
        let marks = read(&path).unwrap();
        assert_eq!(
            marks.last().unwrap().checkpoint.seq,
            last,
            "the newest is kept"
        );
        assert!(marks.len() > 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_a_bad_one_named() {
        let dir =
            std::env::temp_dir().join(format!("airlock-checkpoint-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c");
        std::fs::write(
            &path,
            "{\"seq\":1,\"hash\":\"a\",\"ts_ms\":5}\n{\"seq\":2,\"ha",
        )
        .unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        std::fs::write(&path, "{\"seq\":1,\"hash\":\"a\",\"ts_ms\":5}\nnonsense\n").unwrap();
        assert!(matches!(read(&path), Err(LedgerError::Checkpoint { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
