//! Answers bulb gives itself: refusals, and the status for a request that
//! could not be proxied.

use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The final response already sent to the client, if any (a `100
/// Continue` is not one).
pub fn final_response(session: &Session) -> Option<&ResponseHeader> {
    session
        .response_written()
        .filter(|r| !r.status.is_informational())
}

/// How a request that bulb does not (or cannot) proxy ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answer this status.
    Status(u16),
    /// The client went away: there is no one to answer.
    ClientGone,
}

impl Outcome {
    /// The status answered, if any.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Status(s) => Some(s),
            Outcome::ClientGone => None,
        }
    }
}

/// End the request as `outcome` says and close the connection: nothing of
/// this request, or what follows it on the connection, reaches a backend.
/// Returns Pingora's "request handled".
pub async fn refuse(session: &mut Session, outcome: Outcome) -> Result<bool> {
    session.set_keepalive(None);
    if let Some(status) = outcome.status() {
        session.respond_error(status).await?;
    }
    Ok(true)
}

/// How a request that failed with `e` ends: the status bulb chose, 504 for
/// an upstream timeout, 502 for any other upstream failure, 400 for a bad
/// request, nothing when the client left.
pub fn outcome_of(e: &Error) -> Outcome {
    Outcome::Status(match (e.etype(), e.esource()) {
        (ErrorType::HTTPStatus(c), _) => *c,
        (ErrorType::ReadTimedout | ErrorType::WriteTimedout, ErrorSource::Upstream) => 504,
        (_, ErrorSource::Upstream) => 502,
        (_, ErrorSource::Downstream) if client_gone(e) => return Outcome::ClientGone,
        (_, ErrorSource::Downstream) => 400,
        _ => 500,
    })
}

/// Whether `e` is the client going away (routine, not worth an error log):
/// a closed or failed connection, or an HTTP/2 stream it reset.
pub fn client_gone(e: &Error) -> bool {
    *e.esource() == ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed
                | ErrorType::ReadError
                | ErrorType::WriteError
                | ErrorType::H2Error
        )
}
