//! The edge's checks on every call, before any service is asked: who the
//! caller is (a token that does not verify is UNAUTHENTICATED, never
//! anonymous), where they call from (trusted proxies only), and their rate
//! limits; and what of the inbound call travels on to the services.

use std::sync::Arc;

use tonic::Request;
use tonic::metadata::{MetadataMap, MetadataValue};

use cityevents_authn::{Principal, Verifier};
use cityevents_runtime::client_addr::ClientAddress;
use cityevents_runtime::error::{REASON_METADATA, RETRY_AFTER_METADATA};
use cityevents_runtime::ratelimit::{Limit, RateLimiter};
use cityevents_runtime::{Error, ErrorCode, Result};

/// The inbound metadata passed on to services, besides `authorization` and
/// the deadline (the runtime's client forwards those).
const FORWARDED: &[&str] = &["idempotency-key"];

/// Shared by every handler.
pub struct Edge {
    pub verifier: Arc<Verifier>,
    pub limiter: RateLimiter,
    pub client_address: ClientAddress,
    pub per_user: Limit,
    pub per_address: Limit,
}

/// A caller who passed the edge.
pub struct Caller {
    /// `None` for anonymous calls.
    pub principal: Option<Principal>,
    /// The client's address (for the services' own per-address limits).
    pub address: String,
}

impl Edge {
    /// Admits a call that may be anonymous: a present token must verify.
    pub async fn admit<T>(&self, req: &Request<T>) -> Result<Caller> {
        let principal = if req.metadata().contains_key("authorization") {
            Some(self.verifier.authenticate(req.metadata()).await?)
        } else {
            None
        };
        let address = self.client_address.of(req);
        // Both budgets in one Redis call; a refusal takes from neither.
        let by_address = ("edge:address", address.as_str(), self.per_address);
        match &principal {
            Some(p) => {
                let user = p.user_id.to_string();
                let by_user = ("edge:user", user.as_str(), self.per_user);
                self.limiter.check_all(&[by_address, by_user]).await?;
            }
            None => self.limiter.check_all(&[by_address]).await?,
        }
        Ok(Caller { principal, address })
    }

    /// Admits a call that needs a signed-in caller.
    pub async fn signed_in<T>(&self, req: &Request<T>) -> Result<(Caller, Principal)> {
        if !req.metadata().contains_key("authorization") {
            return Err(Error::new(
                ErrorCode::Unauthenticated,
                "sign in first: send `authorization: Bearer <access_token>`",
            ));
        }
        let caller = self.admit(req).await?;
        let principal = caller
            .principal
            .clone()
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "sign in first"))?;
        Ok((caller, principal))
    }
}

impl Caller {
    /// A request to a service carrying `msg`, the forwarded metadata of
    /// `inbound` and the client's address in `x-forwarded-for` (the
    /// services trust the BFF as a proxy).
    pub fn outbound<T, U>(&self, inbound: &Request<U>, msg: T) -> Request<T> {
        let mut out = Request::new(msg);
        copy(inbound.metadata(), out.metadata_mut());
        if let Ok(v) = MetadataValue::try_from(self.address.as_str()) {
            out.metadata_mut().insert("x-forwarded-for", v);
        }
        out
    }
}

fn copy(from: &MetadataMap, to: &mut MetadataMap) {
    for key in FORWARDED {
        if let Some(v) = from.get(*key) {
            to.insert(*key, v.clone());
        }
    }
}

/// A service's error, passed on with its code, message, reason and
/// `retry-after` only (never the service's other response metadata). A
/// failure that did not come from a service's error table (the transport's
/// "tcp connect error", say) gets the table's fixed sentence instead.
pub fn relay(status: tonic::Status) -> tonic::Status {
    if status.metadata().get(REASON_METADATA).is_none() {
        use tonic::Code as C;
        let fixed = match status.code() {
            C::Unavailable => Some(ErrorCode::Unavailable),
            C::Unknown | C::Internal | C::DataLoss => Some(ErrorCode::Internal),
            _ => None,
        };
        if let Some(code) = fixed {
            return Error::new(code, status.message()).into();
        }
    }
    let mut out = tonic::Status::new(status.code(), status.message());
    for key in [REASON_METADATA, RETRY_AFTER_METADATA] {
        if let Some(v) = status.metadata().get(key) {
            out.metadata_mut().insert(key, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_text_never_reaches_the_caller() {
        let out = relay(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(out.code(), tonic::Code::Unavailable);
        assert!(!out.message().contains("tcp"), "{}", out.message());
        assert_eq!(out.metadata().get(REASON_METADATA).unwrap(), "UNAVAILABLE");
    }

    #[test]
    fn a_services_own_error_passes_with_its_reason_and_retry_after_only() {
        let mut s = tonic::Status::resource_exhausted("the event is full");
        s.metadata_mut()
            .insert(REASON_METADATA, "WAITLIST_FULL".parse().unwrap());
        s.metadata_mut()
            .insert(RETRY_AFTER_METADATA, "1".parse().unwrap());
        s.metadata_mut()
            .insert("x-internal", "secret".parse().unwrap());
        let out = relay(s);
        assert_eq!(out.message(), "the event is full");
        assert_eq!(
            out.metadata().get(REASON_METADATA).unwrap(),
            "WAITLIST_FULL"
        );
        assert_eq!(out.metadata().get(RETRY_AFTER_METADATA).unwrap(), "1");
        assert!(out.metadata().get("x-internal").is_none());
    }
}
