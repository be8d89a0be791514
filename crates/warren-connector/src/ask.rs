//! Questions the connector asks the edge on a stream it opens on one of
//! its tunnel connections (a certificate for a hostname, the identity-token
//! keys): one control message up, one answer back, within a deadline.

use std::time::Duration;

use warren_proto::control::ControlMessage;
use warren_transport::framed::{expect_frame, FrameError};
use warren_transport::{StreamError, TunnelConnection};

/// Why a question to the edge got no usable answer. `what` names the
/// question ("certificate request", "key request").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AskError {
    /// No answer within the deadline.
    #[error("the edge did not answer the {what} in time")]
    Timeout { what: &'static str },
    /// The stream failed or carried something unreadable.
    #[error("the {what} failed: {reason}")]
    Failed { what: &'static str, reason: String },
    /// The edge refused, with its sentence.
    #[error("the edge refused the {what}: {message}")]
    Refused { what: &'static str, message: String },
}

/// Sends `question` and returns the edge's answer.
pub(crate) async fn ask(
    conn: &TunnelConnection,
    question: &ControlMessage,
    what: &'static str,
    timeout: Duration,
) -> Result<ControlMessage, AskError> {
    let failed = |reason: String| AskError::Failed { what, reason };
    let exchange = async {
        let (mut send, mut recv) = conn
            .open_stream()
            .await
            .map_err(|e| failed(StreamError::from(e).to_string()))?;
        send.write_all(&question.encode())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let _ = send.finish();
        let frame = expect_frame(&mut recv)
            .await
            .map_err(|e: FrameError| failed(e.to_string()))?;
        ControlMessage::decode(&frame.payload).map_err(|e| failed(e.to_string()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(AskError::Timeout { what }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(ControlMessage::Refused(r))) => Err(AskError::Refused {
            what,
            message: r.message,
        }),
        Ok(Ok(answer)) => Ok(answer),
    }
}
