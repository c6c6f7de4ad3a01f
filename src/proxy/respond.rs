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

/// Answer `status` (0: nothing, the client is gone) and close the
/// connection: nothing of this request, or what follows it on the
/// connection, reaches a backend. Returns Pingora's "request handled".
pub async fn refuse(session: &mut Session, status: u16) -> Result<bool> {
    session.set_keepalive(None);
    if status > 0 {
        session.respond_error(status).await?;
    }
    Ok(true)
}

/// The status a client gets for a request that failed with `e`: the
/// status bulb chose, 504 for an upstream timeout, 502 for any other
/// upstream failure, 400 for a bad request, 0 (none) when the client left.
pub fn status_for(e: &Error) -> u16 {
    match (e.etype(), e.esource()) {
        (ErrorType::HTTPStatus(c), _) => *c,
        (ErrorType::ReadTimedout | ErrorType::WriteTimedout, ErrorSource::Upstream) => 504,
        (_, ErrorSource::Upstream) => 502,
        (_, ErrorSource::Downstream) if client_gone(e) => 0,
        (_, ErrorSource::Downstream) => 400,
        _ => 500,
    }
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
