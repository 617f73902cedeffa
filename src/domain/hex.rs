//! Lower-case hexadecimal: the one text form of digests (token hashes, request digests, derived
//! request ids).

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
