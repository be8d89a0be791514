//! Reading a local text file with a bound on its size.
//!
//! Config files are read whole and parsed into memory many times their
//! size; a path such as `/dev/zero`, or a generated file gone wrong, must
//! be refused with a sentence before it is read, not after the process
//! has run out of memory.

use std::io::Read;
use std::path::Path;

/// Why [`read_bounded`] returned no text.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file holds more than the bound.
    #[error("it is larger than {limit} bytes")]
    TooLarge {
        /// The bound, in bytes.
        limit: u64,
    },
    /// The bytes are not UTF-8.
    #[error("it is not UTF-8 text")]
    NotText,
}

/// Reads the file at `path` as UTF-8 text, refusing one over `limit` bytes:
/// by its length when it is a regular file, before reading any of it, and
/// otherwise (a pipe, a device) after at most `limit + 1` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, BoundedReadError> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(BoundedReadError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(BoundedReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| BoundedReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_up_to_the_bound_and_refuses_larger_ones() {
        let dir = std::env::temp_dir().join(format!("warren-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.yml");
        std::fs::write(&path, "x".repeat(10)).unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap().len(), 10);
        assert!(matches!(
            read_bounded(&path, 9),
            Err(BoundedReadError::TooLarge { limit: 9 })
        ));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_bounded(&path, 10),
            Err(BoundedReadError::NotText)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_endless_device_is_refused_after_the_bound() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 4096),
            Err(BoundedReadError::TooLarge { limit: 4096 })
        ));
    }
}
