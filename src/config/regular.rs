//! Reading the small files gemlive is pointed at (the config file, the API key) safely: only a
//! regular file, and only up to a size limit.
//!
//! A FIFO opened for reading blocks until a writer appears, so `--config some-fifo` would hang
//! start-up forever; `/dev/zero` or a mistyped path to a large file would be read into memory
//! without end. The type is checked before opening (opening some devices has side effects), the
//! open itself never blocks (`O_NONBLOCK`), and the opened file is checked again, so a path
//! swapped between the check and the open cannot get past.

use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// Not a regular file; says what it is instead (`"a FIFO (named pipe)"`).
    NotRegular(&'static str),
    /// Larger than the limit (bytes).
    TooLarge(u64),
}

/// What a file that is not a regular file is, for an error message.
pub(crate) fn kind(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "an unusual kind of file"
    }
}

/// Opens `path` for reading without ever blocking, whatever it is. For a regular file
/// `O_NONBLOCK` changes nothing; `O_NOCTTY` keeps a terminal from becoming ours.
pub(crate) fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Opens `path` if it is a regular file (symlinks followed), with its metadata.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), Refusal> {
    let before = std::fs::metadata(path).map_err(Refusal::Io)?;
    if !before.is_file() {
        return Err(Refusal::NotRegular(kind(before.file_type())));
    }
    let file = open_nonblocking(path).map_err(Refusal::Io)?;
    let meta = file.metadata().map_err(Refusal::Io)?;
    if !meta.is_file() {
        return Err(Refusal::NotRegular(kind(meta.file_type())));
    }
    Ok((file, meta))
}

/// Reads all of `file`, refusing it if it holds more than `limit` bytes. The size is checked
/// while reading as well as from the metadata: a file may grow, and some (in /proc) report 0.
pub(crate) fn read_capped(file: File, meta: &Metadata, limit: u64) -> Result<Vec<u8>, Refusal> {
    if meta.len() > limit {
        return Err(Refusal::TooLarge(limit));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Refusal::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Refusal::TooLarge(limit));
    }
    Ok(bytes)
}

/// [`open_regular`] then [`read_capped`].
pub(crate) fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, Refusal> {
    let (file, meta) = open_regular(path)?;
    read_capped(file, &meta, limit)
}

/// `1048576` → `"1 MiB"`, `4096` → `"4 KiB"`.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}
