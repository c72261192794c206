//! The page policy inside the browser ([`PagePolicy`]): with request interception on
//! (DevTools `Fetch`), every request the page makes is paused (the page itself, each
//! redirect, frames, subresources, fetches), its host checked by name and, for a name,
//! by the addresses it resolves to, then continued or failed as blocked. A refused main
//! document fails the load with the refusal; a refused subresource is logged (host only)
//! and the page goes on without it.
//!
//! Limits, documented for operators: the check resolves a name once and Chromium resolves
//! it again, so a DNS server that answers differently the second time (rebinding) is
//! not caught; service workers run in targets of their own and are not watched.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EventRequestPaused, FailRequestParams,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use futures_util::StreamExt;

use crate::request::page_policy::{PagePolicy, Refused};

/// The refusal of the page's main document, if one was refused.
pub type Blocked = Arc<Mutex<Option<Refused>>>;

/// Checks `url` against `policy`: its host as named, then (for a name) every address it
/// resolves to. A name that does not resolve passes: the browser's own lookup fails it.
pub async fn check(policy: PagePolicy, url: &url::Url) -> Result<(), Refused> {
    policy.check_url(url)?;
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(addrs) = tokio::net::lookup_host((name, port)).await else {
        return Ok(());
    };
    for addr in addrs {
        let ip: IpAddr = addr.ip();
        policy.check_ip(ip).map_err(|why| Refused {
            host: format!("{name} ({ip})"),
            why,
        })?;
    }
    Ok(())
}

/// Starts watching `page`'s requests (interception must be on in the handler's config);
/// the task ends with the page's event stream.
pub async fn watch(
    page: &Page,
    policy: PagePolicy,
    blocked: Blocked,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut paused = page
        .event_listener::<EventRequestPaused>()
        .await
        .map_err(|e| format!("listening to requests: {e}"))?;
    let page = page.clone();
    Ok(tokio::spawn(async move {
        while let Some(event) = paused.next().await {
            let verdict = match url::Url::parse(&event.request.url) {
                Ok(url) => check(policy, &url).await,
                // Chromium only asks about URLs it parsed; nothing to refuse by host.
                Err(_) => Ok(()),
            };
            let sent = match verdict {
                Ok(()) => page
                    .execute(ContinueRequestParams::new(event.request_id.clone()))
                    .await
                    .map(drop),
                Err(refused) => {
                    tracing::warn!(host = %refused.host, reason = %refused.why,
                        resource = ?event.resource_type, "page request refused");
                    if event.resource_type == ResourceType::Document {
                        blocked
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(refused);
                    }
                    page.execute(FailRequestParams::new(
                        event.request_id.clone(),
                        ErrorReason::BlockedByClient,
                    ))
                    .await
                    .map(drop)
                }
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "answering a paused request");
            }
        }
    }))
}
