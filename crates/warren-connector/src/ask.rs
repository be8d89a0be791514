//! Questions the connector asks the edge on a stream it opens on one of
//! its tunnel connections (a certificate for a hostname, the identity-token
//! keys): one control message up, one answer back, within a deadline.

use std::time::Duration;

use warren_proto::control::ControlMessage;
use warren_transport::framed::expect_frame;

/// Sends `question` and returns the edge's answer; a refusal comes back
/// as `Err` with the edge's sentence. `what` names the question in errors
/// ("certificate request", "key request").
pub(crate) async fn ask(
    conn: &quinn::Connection,
    question: &ControlMessage,
    what: &str,
    timeout: Duration,
) -> Result<ControlMessage, String> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&question.encode())
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        let frame = expect_frame(&mut recv).await.map_err(|e| e.to_string())?;
        ControlMessage::decode(&frame.payload).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(format!("the edge did not answer the {what} in time")),
        Ok(Err(e)) => Err(format!("the {what} failed: {e}")),
        Ok(Ok(ControlMessage::Refused(r))) => Err(r.message),
        Ok(Ok(answer)) => Ok(answer),
    }
}
