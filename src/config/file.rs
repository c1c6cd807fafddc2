//! The one way synmon reads a file a user points it at: the config, journeys and the files they
//! `use:`, rule files, dashboards, flag registries, `file:` secrets and the JWT public key.
//!
//! Each of those is a path from a config, and a config can be wrong or hostile: `file:/dev/zero`
//! would read until memory runs out, a FIFO would block forever, a folder fails with an OS
//! message that says little. So the file is opened without blocking, the *opened handle* is
//! checked to be a regular file (checking the path first and opening it after would race with a
//! swap), and at most `limit + 1` bytes are read, so a file that grows while it is read cannot
//! pass the limit either.
//!
//! The limits are constants, not settings: nothing synmon reads legitimately comes near them.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The size limit of every file synmon reads from its configuration: the config itself,
/// journeys, rules, dashboards, flag registries, secrets and the JWT public key.
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Why a file could not be read. Displays as a predicate (`is larger than 1 MiB`), so callers
/// put the file's name in front in whatever form their message names it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It does not exist, or the OS refused to open or read it.
    #[error("cannot be read: {0}")]
    Io(#[source] std::io::Error),
    /// A folder, a device, a FIFO or a socket: nothing synmon reads is one.
    #[error("is not a regular file (it is {0})")]
    NotRegular(&'static str),
    #[error("is larger than {}", human_size(*.0))]
    TooLarge(u64),
    /// The text is not UTF-8; where the first bad byte sits (1-based line and column, the
    /// column counted in characters).
    #[error("is not UTF-8 text ({what} at line {line}, column {col})", what = utf8_detail(*.utf16, *.byte))]
    NotUtf8 {
        line: usize,
        col: usize,
        byte: u8,
        /// It starts with a UTF-16 byte-order mark: an editor saved it in the wrong encoding.
        utf16: bool,
    },
}

/// Reads at most `limit` bytes of the regular file at `path`.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads the regular file at `path` as UTF-8 text of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    decode_utf8(read_bytes(path, limit)?)
}

/// The bytes as a `String`, or where the first byte that is not UTF-8 sits.
pub fn decode_utf8(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // Everything before `at` is valid, so counting characters there is exact.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let col = before[line_start..].chars().count() + 1;
        ReadError::NotUtf8 {
            line,
            col,
            byte: bytes[at],
            utf16: bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]),
        }
    })
}

/// What the first bad byte is, in words.
pub fn utf8_detail(utf16: bool, byte: u8) -> String {
    if utf16 {
        "UTF-16 text".to_string()
    } else {
        format!("byte 0x{byte:02X}")
    }
}

/// `1 MiB`, `64 KiB`, `100 bytes`: the limit as the README states it.
pub fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Opens for reading without blocking: opening a FIFO for reading would otherwise wait for a
/// writer forever, before the handle could be checked. Reads of a regular file ignore the flag.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a folder" } else { "not a file" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "0123456789").unwrap();
        assert_eq!(read_text(&p, 10).unwrap(), "0123456789");
        assert!(matches!(read_text(&p, 9), Err(ReadError::TooLarge(9))));
    }

    #[test]
    fn a_file_over_one_mib_is_refused_with_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        std::fs::write(&p, vec![b'#'; MAX_INPUT_BYTES as usize + 1]).unwrap();
        let e = read_text(&p, MAX_INPUT_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "is larger than 1 MiB");
        std::fs::write(&p, vec![b'#'; MAX_INPUT_BYTES as usize]).unwrap();
        assert_eq!(read_text(&p, MAX_INPUT_BYTES).unwrap().len(), 1 << 20);
    }

    #[test]
    fn a_device_is_refused_before_reading() {
        // /dev/zero never ends: reaching `read` would fill memory up to the limit first and
        // report "larger"; the handle check says what it is instead.
        let e = read_bytes(Path::new("/dev/zero"), MAX_INPUT_BYTES).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is not a regular file (it is a character device)"
        );
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_bytes(dir.path(), MAX_INPUT_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "is not a regular file (it is a folder)");
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_bytes(&p, MAX_INPUT_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "is not a regular file (it is a FIFO)");
    }

    #[test]
    fn a_missing_file_says_so() {
        let e = read_bytes(Path::new("/nonexistent/synmon/x"), 10).unwrap_err();
        assert!(
            matches!(&e, ReadError::Io(io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column_of_the_first_bad_byte() {
        let e = decode_utf8(b"a: 1\nb: \xC3\xA9\xFF\n".to_vec()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is not UTF-8 text (byte 0xFF at line 2, column 5)"
        );
        let e = decode_utf8(b"\xFF\xFEa\x00".to_vec()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is not UTF-8 text (UTF-16 text at line 1, column 1)"
        );
    }

    #[test]
    fn sizes_read_as_the_readme_writes_them() {
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(100), "100 bytes");
    }
}
