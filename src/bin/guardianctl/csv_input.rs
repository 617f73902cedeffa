//! Reading the operators' CSV files: a header is required (`Student,Guardian` as GAM writes it,
//! or `student_email,guardian_email`); a BOM and CRLF are fine; blank lines are skipped; a bad
//! row is reported with its line number and the good rows around it are kept.

use std::path::Path;

/// One data row: its line in the file and its two values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// 1-based line number in the file.
    pub line: u64,
    /// The student's id or email.
    pub student: String,
    /// The guardian's email (or account id, for removals).
    pub guardian: String,
}

/// A line that could not be read as a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRow {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// The rows of a file and the lines that were refused.
#[derive(Debug, Default)]
pub(crate) struct Input {
    /// Good rows, in file order.
    pub rows: Vec<Row>,
    /// Refused lines.
    pub bad: Vec<BadRow>,
    /// SHA-256 of the file, from which request ids are derived.
    pub digest: [u8; 32],
}

const STUDENT_HEADERS: [&str; 3] = ["student", "student_email", "studentemail"];
const GUARDIAN_HEADERS: [&str; 3] = ["guardian", "guardian_email", "guardianemail"];

/// Reads `path`. Errors only when the file cannot be read or has no usable header.
pub(crate) fn read(path: &Path) -> Result<Input, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses CSV bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Input, String> {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: unreadable header: {e}"))?
        .clone();
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
    };
    let (Some(student_col), Some(guardian_col)) = (find(&STUDENT_HEADERS), find(&GUARDIAN_HEADERS))
    else {
        return Err(format!(
            "line 1: the header must name a student and a guardian column (\"Student,Guardian\" \
             or \"student_email,guardian_email\"), found {:?}",
            headers.iter().collect::<Vec<_>>()
        ));
    };
    let width = headers.len();
    // The line of a byte offset, counted here: csv's own line numbers drift on CRLF files.
    // A line ends at LF, CRLF (counted once, at the LF) or a lone CR, as csv reads them.
    let newlines: Vec<u64> = body
        .iter()
        .enumerate()
        .filter(|&(i, b)| *b == b'\n' || (*b == b'\r' && body.get(i + 1) != Some(&b'\n')))
        .map(|(i, _)| i as u64)
        .collect();
    // csv reports a record as starting where the previous line ended (and before any blank
    // lines), so skip line breaks to the record's first byte and count the lines before it.
    let line_of = |byte: u64| {
        let mut at = byte as usize;
        while at < body.len() && matches!(body[at], b'\r' | b'\n') {
            at += 1;
        }
        newlines.partition_point(|&n| n < at as u64) as u64 + 1
    };
    let mut input = Input {
        digest,
        ..Input::default()
    };
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = record.position().map(|p| line_of(p.byte())).unwrap_or(0);
                if record.iter().all(|f| f.is_empty()) {
                    continue;
                }
                if record.len() != width {
                    input.bad.push(BadRow {
                        line,
                        reason: format!("{} fields where the header has {width}", record.len()),
                    });
                    continue;
                }
                let student = record.get(student_col).unwrap_or_default().to_owned();
                let guardian = record.get(guardian_col).unwrap_or_default().to_owned();
                if student.is_empty() || guardian.is_empty() {
                    input.bad.push(BadRow {
                        line,
                        reason: "an empty student or guardian".into(),
                    });
                    continue;
                }
                input.rows.push(Row {
                    line,
                    student,
                    guardian,
                });
            }
            Err(err) => {
                let line = err.position().map(|p| line_of(p.byte())).unwrap_or(0);
                input.bad.push(BadRow {
                    line,
                    reason: format!("unreadable: {err}"),
                });
            }
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gam_files_with_bom_crlf_blank_lines_and_bad_rows_keep_their_good_rows() {
        let file = b"\xEF\xBB\xBFStudent,Guardian\r\ns1@x.org,p1@y.org\r\n\r\ns2@x.org,p2@y.org,extra\r\n\"s3@x.org\",\"p3@y.org\"\r\ns4@x.org,\r\n";
        let input = parse(file).unwrap();
        assert_eq!(
            input
                .rows
                .iter()
                .map(|r| (r.line, r.student.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "s1@x.org"), (5, "s3@x.org")]
        );
        assert_eq!(
            input.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![4, 6]
        );
    }

    #[test]
    fn old_mac_files_ending_lines_with_cr_alone_count_their_lines() {
        let input =
            parse(b"Student,Guardian\rs1@x.org,p1@y.org\r\rs2@x.org\rs3@x.org,p3@y.org\r").unwrap();
        let lines: Vec<u64> = input.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 5]);
        assert_eq!(
            input.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![4]
        );
    }

    #[test]
    fn the_other_header_spelling_and_column_order_work() {
        let input = parse(b"guardian_email,student_email\np@y.org,s@x.org\n").unwrap();
        assert_eq!(input.rows[0].student, "s@x.org");
        assert_eq!(input.rows[0].guardian, "p@y.org");
    }

    #[test]
    fn a_missing_header_is_refused_with_the_line() {
        let err = parse(b"s1@x.org,p1@y.org\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
