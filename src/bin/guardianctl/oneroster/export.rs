//! Reading a OneRoster CSV export, a folder or a .zip, into tables whose cells are found by
//! column name; every complaint names the file, the line and the column.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The files an import reads; `roles.csv` only when `users.csv` has no `role` column (1.2).
pub(crate) const REQUIRED: [&str; 5] = [
    "manifest.csv",
    "orgs.csv",
    "users.csv",
    "classes.csv",
    "enrollments.csv",
];

/// Largest file read from an export (a school's users file is a few megabytes).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// The export's files by name, as text, and a digest of them all (request ids come from it).
pub(crate) struct Export {
    files: BTreeMap<String, Vec<u8>>,
    pub(crate) digest: [u8; 32],
}

/// One CSV file: its header and rows, each with its line number.
pub(crate) struct Table {
    pub(crate) file: &'static str,
    header: Vec<String>,
    pub(crate) rows: Vec<(u64, csv::StringRecord)>,
}

impl Export {
    /// Reads a folder or a .zip file.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let mut files = BTreeMap::new();
        if path.is_dir() {
            for name in REQUIRED.iter().chain(&["roles.csv"]) {
                let file = path.join(name);
                if file.is_file() {
                    let bytes = std::fs::read(&file)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    files.insert((*name).to_owned(), bytes);
                }
            }
        } else {
            let zip = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut archive = zip::ZipArchive::new(zip).map_err(|e| {
                format!("{} is neither a folder nor a zip file: {e}", path.display())
            })?;
            for i in 0..archive.len() {
                let mut entry = archive
                    .by_index(i)
                    .map_err(|e| format!("{}: entry {i}: {e}", path.display()))?;
                let full_name = entry
                    .name()
                    .map_err(|e| format!("{}: entry {i}: {e}", path.display()))?
                    .into_owned();
                // Exports put the files at the top or in one folder: the name is what counts.
                let Some(name) = full_name
                    .rsplit('/')
                    .next()
                    .map(str::to_ascii_lowercase)
                    .filter(|n| REQUIRED.contains(&n.as_str()) || n == "roles.csv")
                else {
                    continue;
                };
                if entry.size() > MAX_FILE_BYTES {
                    return Err(format!("{name} in {} is too large", path.display()));
                }
                let mut bytes = Vec::new();
                entry
                    .by_ref()
                    .take(MAX_FILE_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{name} in {}: {e}", path.display()))?;
                files.insert(name, bytes);
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|name| !files.contains_key(**name))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} is not a OneRoster CSV export: {} missing",
                path.display(),
                missing.join(", ")
            ));
        }
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for (name, bytes) in &files {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(bytes);
        }
        Ok(Self {
            files,
            digest: hasher.finalize().into(),
        })
    }

    /// Whether the export holds `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Parses one file.
    pub(crate) fn table(&self, file: &'static str) -> Result<Table, String> {
        let bytes = self
            .files
            .get(file)
            .ok_or_else(|| format!("{file} is missing"))?;
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(body);
        let header = reader
            .headers()
            .map_err(|e| format!("{file} line 1: unreadable header: {e}"))?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                format!("{file} line {line}: {}", e.kind_description())
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.iter().all(str::is_empty) {
                continue;
            }
            rows.push((line, record));
        }
        Ok(Table { file, header, rows })
    }
}

/// A short reason from a CSV error.
trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for csv::Error {
    fn kind_description(&self) -> String {
        match self.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{len} fields where the header has {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
            _ => self.to_string(),
        }
    }
}

impl Table {
    /// The position of a column the import needs.
    pub(crate) fn column(&self, name: &str) -> Result<usize, String> {
        self.optional_column(name).ok_or_else(|| {
            format!(
                "{}: no column {name} (the header has: {})",
                self.file,
                self.header.join(", ")
            )
        })
    }

    /// The position of a column the import reads when present.
    pub(crate) fn optional_column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    /// A complaint about one cell.
    pub(crate) fn error(&self, line: u64, column: usize, why: impl std::fmt::Display) -> String {
        format!(
            "{} line {line}, column {}: {why}",
            self.file, self.header[column]
        )
    }
}

/// A cell, empty when the row is short.
pub(crate) fn cell(record: &csv::StringRecord, column: usize) -> &str {
    record.get(column).unwrap_or("")
}

/// A OneRoster list cell ("a,b,c", sometimes with spaces): its items.
pub(crate) fn list(record: &csv::StringRecord, column: Option<usize>) -> Vec<String> {
    column
        .map(|c| cell(record, c))
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
