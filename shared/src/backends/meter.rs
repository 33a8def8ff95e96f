//! The AWS call meter: every AWS API call the SDK clients send, counted by service and
//! operation (a smithy interceptor), and an optional fixed latency added to each call for
//! benchmarks (an HTTP client wrapper: interceptors are synchronous and cannot wait).
//!
//! Speed on AWS is stated as calls and sequential round trips per unit of work: snapshot the
//! meter before and after the work ([`CallMeter::snapshot`], [`Calls::since`]); the round trips
//! are the wall time the added latency adds, divided by it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// A service and one of its operations, as the SDK names them (`DynamoDB`, `PutItem`).
pub type Operation = (String, String);

/// Counts AWS API calls by operation; cheap to clone (one shared set of atomic counters).
#[derive(Clone, Default)]
pub struct CallMeter(Arc<RwLock<BTreeMap<Operation, AtomicU64>>>);

impl fmt::Debug for CallMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallMeter").field(&self.snapshot()).finish()
    }
}

impl CallMeter {
    /// Counts one call. Known operations take a shared lock and an atomic add.
    pub fn record(&self, service: &str, operation: &str) {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = known.get(&(service.to_string(), operation.to_string())) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        drop(known);
        let mut all = self.0.write().unwrap_or_else(PoisonError::into_inner);
        all.entry((service.to_string(), operation.to_string())).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Every count so far.
    pub fn snapshot(&self) -> Calls {
        let all = self.0.read().unwrap_or_else(PoisonError::into_inner);
        Calls(all.iter().map(|(op, n)| (op.clone(), n.load(Ordering::Relaxed))).collect())
    }

    /// The interceptor that counts into this meter; register it on each service client.
    pub fn interceptor(&self) -> MeterInterceptor {
        MeterInterceptor(self.clone())
    }
}

/// Call counts by operation, at one moment or between two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls(pub BTreeMap<Operation, u64>);

impl Calls {
    /// All calls.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The calls made since `earlier` (a snapshot of the same meter); operations with none left out.
    pub fn since(&self, earlier: &Calls) -> Calls {
        Calls(
            self.0
                .iter()
                .map(|(op, n)| (op.clone(), n.saturating_sub(earlier.0.get(op).copied().unwrap_or(0))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// The count for one operation.
    pub fn get(&self, service: &str, operation: &str) -> u64 {
        self.0.get(&(service.to_string(), operation.to_string())).copied().unwrap_or(0)
    }
}

/// `DynamoDB.GetItem=1 DynamoDB.PutItem=2`.
impl fmt::Display for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ((service, operation), n)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{service}.{operation}={n}")?;
        }
        Ok(())
    }
}

/// Counts each attempt just before it goes on the wire (so retries count: each is a call).
#[derive(Debug)]
pub struct MeterInterceptor(CallMeter);

impl Intercept for MeterInterceptor {
    fn name(&self) -> &'static str {
        "forcelink::CallMeter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(meta) => self.0.record(meta.service(), meta.name()),
            None => self.0.record("unknown", "unknown"),
        }
        Ok(())
    }
}

/// `config` with `latency` added before every HTTP request its clients send (the SDK's default
/// HTTPS client underneath). For benchmarks: the settings refuse it on Lambda.
pub fn with_added_latency(config: &SdkConfig, latency: Duration) -> SdkConfig {
    let inner = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_https();
    config.to_builder().http_client(Delayed { inner, latency }).build()
}

#[derive(Debug)]
struct Delayed {
    inner: SharedHttpClient,
    latency: Duration,
}

impl HttpClient for Delayed {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(DelayedConnector { inner: self.inner.http_connector(settings, components), latency: self.latency })
    }
}

#[derive(Debug)]
struct DelayedConnector {
    inner: SharedHttpConnector,
    latency: Duration,
}

impl HttpConnector for DelayedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, latency) = (self.inner.clone(), self.latency);
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(latency).await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_diffs() {
        let meter = CallMeter::default();
        meter.record("DynamoDB", "PutItem");
        let before = meter.snapshot();
        meter.record("DynamoDB", "PutItem");
        meter.record("DynamoDB", "GetItem");
        meter.record("SQS", "SendMessage");
        let calls = meter.snapshot().since(&before);
        assert_eq!(calls.total(), 3);
        assert_eq!(calls.get("DynamoDB", "PutItem"), 1);
        assert_eq!(calls.to_string(), "DynamoDB.GetItem=1 DynamoDB.PutItem=1 SQS.SendMessage=1");
        assert_eq!(meter.snapshot().since(&meter.snapshot()), Calls::default());
    }
}
