// bulb patch (see PATCH.md, "The direct HTTP/1 path"). Licensed as the rest
// of this crate (Apache-2.0).

//! The direct HTTP/1 path: a request with no body, no upgrade, no cache and
//! a plain HTTP/1 client, proxied to an HTTP/1 backend in one sequence.
//!
//! `proxy_1to1` runs two halves joined with `try_join!`, one per side, with
//! a pair of channels between them, so that a request body can stream up
//! while the response streams down. A request without a body has nothing to
//! stream up: its one request-side step is the end of the (empty) body. This
//! path takes that step, then reads the response and writes it task by task,
//! through the same filters in the same order, with no channel, no second
//! future and no batching vectors. It still watches the client while the
//! backend answers (the general path's idle read), so a client that leaves
//! ends the request as before.
//!
//! Everything else (a body, an upgrade, cache, HTTP/2, custom or subrequest
//! sessions, a retry buffer) keeps the general path.

use super::*;
use crate::proxy_cache::{range_filter::RangeBodyFilter, ServeFromCache};
use crate::proxy_h1::send_body_to1;
use futures::FutureExt;

impl<SV, C> HttpProxy<SV, C>
where
    C: custom::Connector,
{
    /// Whether this request can take the direct path. `upgrade`: the
    /// upstream request asks for a protocol upgrade.
    pub(crate) fn h1_direct_eligible(session: &mut Session, upgrade: bool) -> bool {
        let downstream = &session.downstream_session;
        !upgrade
            && !session.cache.enabled()
            && !downstream.is_http2()
            && !downstream.is_custom()
            && !downstream.is_subrequest()
            && !downstream.supports_proxy_task_api()
            && !session.was_upgraded()
            && session.as_ref().get_retry_buffer().is_none()
            && session.as_mut().is_body_empty()
    }

    /// Proxy the rest of an eligible request (its head is written): the end
    /// of its empty body, then the response. Returns whether the client and
    /// the backend connection can be reused, as `proxy_1to1` does.
    pub(crate) async fn proxy_1to1_direct(
        &self,
        session: &mut Session,
        client_session: &mut HttpSessionV1,
        ctx: &mut SV::CTX,
    ) -> Result<(bool, bool)>
    where
        SV: ProxyHttp + Send + Sync,
        SV::CTX: Send + Sync,
    {
        session.as_mut().enable_retry_buffering();

        // The request side: the end of the body, through the same filters
        // as `send_body_to_pipe`, then to the backend as `send_body_to1`.
        let mut data = None;
        session
            .downstream_modules_ctx
            .request_body_filter(&mut data, true)
            .await?;
        self.inner
            .request_body_filter(session, &mut data, true, ctx)
            .await?;
        let mut upstream_reuse = true;
        let mut send_error = None;
        if let Err(e) = send_body_to1(client_session, Some(HttpTask::Body(data, true))).await {
            // As the general path: the response may still be forwarded, but
            // the connection is unsafe to reuse.
            warn!("send error, draining read buf: {e}");
            upstream_reuse = false;
            send_error = Some(e);
        }

        // The response side, one task at a time.
        let mut serve_from_cache = ServeFromCache::new();
        let mut range_body_filter = RangeBodyFilter::new();
        let mut watch_client = true;
        loop {
            let read = tokio::select! {
                biased;
                // bulb patch (pingora-core PATCH.md, "The response head handed over").
                task = client_session.read_response_task_handover() => task,
                // The client is watched as in the general path: a close (or an
                // error) before the response is complete ends the request.
                idle = session.downstream_session.read_body_or_idle(true), if watch_client => {
                    if let Err(e) = idle {
                        return Err(e.into_down());
                    }
                    watch_client = false;
                    continue;
                }
            };
            let mut task = match read {
                Ok(task) => task,
                Err(e) => return Err(send_error.unwrap_or(e).into_up()),
            };
            let mut upstream_done = task.is_end();
            let mut batch = Vec::with_capacity(2);
            loop {
                #[cfg(feature = "upstream_modules")]
                if let HttpTask::Header(header, end_of_stream) = &task {
                    self.inner
                        .adjust_upstream_modules(session, header, *end_of_stream, ctx)
                        .await?;
                }
                #[cfg(feature = "upstream_modules")]
                session.upstream_modules_filter_task(&mut task).await?;
                session.upstream_compression.response_filter(&mut task);
                let filtered = self
                    .h1_response_filter(
                        session,
                        task,
                        ctx,
                        &mut serve_from_cache,
                        &mut range_body_filter,
                        false,
                    )
                    .await?;
                batch.push(filtered);
                // A head whose first body bytes were read with it is written
                // together with them (one write, see pingora-core's
                // `write_head_with_body`): the next task is taken only if it
                // is there without waiting.
                if batch.len() > 1 || upstream_done || !matches!(batch[0], HttpTask::Header(..)) {
                    break;
                }
                match client_session.read_response_task_handover().now_or_never() {
                    None => break,
                    Some(Ok(next)) => {
                        task = next;
                        upstream_done = task.is_end();
                    }
                    Some(Err(e)) => {
                        session.write_response_tasks(batch).await?;
                        return Err(send_error.unwrap_or(e).into_up());
                    }
                }
            }
            let downstream_done = session.write_response_tasks(batch).await?;
            if upstream_done {
                break;
            }
            if downstream_done {
                // The response ended for the client before the backend's did:
                // its connection has unread bytes.
                upstream_reuse = false;
                break;
            }
        }

        let downstream_reuse = match session.as_mut().finish_body().await {
            Ok(_) => true,
            Err(e) => {
                error!("Error finish sending body to downstream: {}", e);
                false
            }
        };
        Ok((downstream_reuse, upstream_reuse))
    }
}
