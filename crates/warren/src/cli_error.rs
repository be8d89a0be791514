//! How a failed command's error reaches the person who ran it: one line,
//! each cause said once.
//!
//! Library errors often put their cause's text in their own message and
//! also return it as their `source()` (thiserror's `{0}` with `#[from]`);
//! printing the whole chain would then say the same cause two or three
//! times (`cannot read X: No such file: No such file`). A cause whose text
//! the line already holds is left out.

/// The one-line text of `err` and its causes.
pub(crate) fn sentence(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What thiserror's `#[error("...: {0}")]` with `#[from]` makes: the
    /// cause in the message and as the source.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read the CA file /x: {}", self.0)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::from(Outer(io)).context("the connector cannot start");
        assert_eq!(
            sentence(&err),
            "the connector cannot start: cannot read the CA file /x: No such file or directory"
        );
    }

    #[test]
    fn causes_not_yet_said_are_kept_in_order() {
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(sentence(&err), "outer: middle: inner");
    }
}
