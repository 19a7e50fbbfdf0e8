//! Amazon CloudWatch Logs: `PutLogEvents` into one log group and stream,
//! through the official AWS SDK for Rust (`aws-sdk-cloudwatchlogs`).
//!
//! Each event becomes one log event whose `message` is the event's JSON
//! body (UTF-8, unchanged) and whose `timestamp` is
//! [`Event::timestamp_ms`](crate::Event::timestamp_ms). The requests are
//! the service's JSON protocol (`POST /`, `x-amz-target:
//! Logs_20140328.PutLogEvents`, `application/x-amz-json-1.1`), signed with
//! SigV4 by the SDK. A body that is not UTF-8, or is empty, cannot be a
//! message: it is returned in [`Delivered::rejected`] without being sent.
//!
//! The wire contract, as AWS documents `PutLogEvents` today:
//! - at most 10,000 events and 1,048,576 bytes per request, counting each
//!   event's message in UTF-8 plus 26 bytes ([`CloudWatchSink::limits`]
//!   says exactly that, so the engine's batches fit);
//! - each event at most 1 MB (raised from 256 KB in April 2025). The 26
//!   bytes count against it too (the old limit refused messages over
//!   262,144 − 26 bytes), so the largest message is 1,048,550 bytes, which
//!   is also the largest that fits a request alone. AWS refuses a larger
//!   event (`InvalidParameterException: Log event too large`) rather than
//!   truncating it, so erring high costs one refused request before the
//!   engine dead-letters the event, while erring low would dead-letter
//!   events AWS would have taken: the limit is the high one;
//! - the events of a request in chronological order: a batch is sorted by
//!   timestamp (stably, so events of the same millisecond keep their order)
//!   and every answer about "the n-th event" is mapped back to its place in
//!   the batch;
//! - at most 24 hours between the earliest and the latest event of a
//!   request (AWS now applies this to the events it accepts, the engine to
//!   all of them, which is stricter);
//! - no sequence token: the service ignores it and accepts parallel
//!   `PutLogEvents` on one stream.
//!
//! Events more than 14 days old (or older than the group's retention) or
//! more than 2 hours in the future are refused one by one in a 200 answer's
//! `rejectedLogEventsInfo`, while the rest of the request is stored. Its
//! indexes are positions in the sorted request: `tooNewLogEventStartIndex`
//! is the first event too new (inclusive: it and every later one),
//! `tooOldLogEventEndIndex` is the end of the events too old (exclusive:
//! the events before it), and `expiredLogEventEndIndex` is read the same
//! way (AWS documents no bound for it; its own agent reads both end indexes
//! as counts). Those events are returned in [`Delivered::rejected`] with
//! their position in the batch, never counted as delivered.
//!
//! A missing log group or stream (`ResourceNotFoundException`) is created
//! (the stream first, the group only if the stream cannot be made without
//! it, so a role allowed only `logs:CreateLogStream` works with a group
//! made by someone else); `ResourceAlreadyExistsException` means another
//! instance made it first. Then the batch is put again.
//!
//! Answers: throttling (`ThrottlingException`), `ServiceUnavailableException`,
//! 5xx, timeouts and connection failures are retried; refused credentials
//! (`UnrecognizedClientException`, `AccessDeniedException`, expired
//! tokens, bad signatures, 401/403) are retried too, with a reason telling
//! the operator to fix them: the events wait rather than being
//! dead-lettered. `InvalidParameterException` and other client errors about
//! the request are permanent for the batch (the engine splits it, then
//! dead-letters a single event that still fails). The service sends no
//! `Retry-After`. `DataAlreadyAcceptedException` means delivered.
//!
//! The SDK's own retries are turned off (one attempt per call): the engine
//! retries with exponential backoff and full jitter and keeps the events in
//! the outbox meanwhile, so SDK retries would only multiply the attempts
//! (three per call by default, each with its own backoff), hold a batch
//! inside one `send` for longer than its timeout suggests, and hide from
//! the engine the errors it is there to handle.
//!
//! The SDK client is built on the first send (the sink is made
//! synchronously when the server starts; loading the AWS configuration is
//! asynchronous). With `access_key_id` and `secret_access_key` it signs
//! with those static keys; with neither it uses the default AWS credential
//! chain (environment, profile files, web identity, ECS or EC2 instance
//! roles).
//!
//! Under an egress policy (a tenant's sink, [`CloudWatchSink::with_egress`])
//! the sink signs only with its own static keys, never the default chain
//! (which holds the server's own credentials); its HTTP client resolves
//! through the policy and an endpoint written as an IP address is checked
//! before each call; and its reasons keep the service's error code and
//! status but not its message.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig;
use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::operation::put_log_events::{PutLogEventsError, PutLogEventsOutput};
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};
use tokio::sync::OnceCell;

use crate::egress::Egress;
use crate::{Delivered, Event, Limits, SendError, SendFuture, Sink};

/// Most log events in one `PutLogEvents` request.
pub const MAX_EVENTS: usize = 10_000;
/// Most bytes in one request: messages in UTF-8 plus [`EVENT_OVERHEAD`]
/// per event.
pub const MAX_REQUEST_BYTES: usize = 1_048_576;
/// Bytes CloudWatch Logs counts for each event on top of its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Largest message of one event: 1 MB counting the [`EVENT_OVERHEAD`].
pub const MAX_EVENT_BYTES: usize = MAX_REQUEST_BYTES - EVENT_OVERHEAD;
/// Most milliseconds between the earliest and the latest event of a request.
pub const MAX_SPAN_MS: i64 = 24 * 60 * 60 * 1000;

const TOO_NEW: &str = "CloudWatch Logs rejected the event as too new (more than 2 hours in the future)";
const TOO_OLD: &str =
    "CloudWatch Logs rejected the event as too old (more than 14 days or older than the group's retention)";
const EXPIRED: &str = "CloudWatch Logs rejected the event as expired (older than the log group's retention period)";

#[derive(Debug, Clone)]
pub struct CloudWatchConfig {
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// An endpoint URL instead of the region's (tests, other partitions,
    /// VPC endpoints), e.g. `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    pub log_group: String,
    pub log_stream: String,
    /// Static keys, both or neither; without them the default AWS
    /// credential chain is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// For each call to the service (a send makes one, or up to five when
    /// it creates the group and the stream).
    pub timeout: Duration,
}

pub struct CloudWatchSink {
    config: CloudWatchConfig,
    client: OnceCell<Client>,
    egress: Option<Arc<Egress>>,
}

impl CloudWatchSink {
    /// Makes no connection and loads no configuration: the SDK client is
    /// built on the first send.
    pub fn new(config: CloudWatchConfig) -> Self {
        Self {
            config,
            client: OnceCell::new(),
            egress: None,
        }
    }

    /// The same sink under an egress policy (a tenant's sink).
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.egress = Some(egress);
        self
    }

    async fn client(&self) -> Result<&Client, SendError> {
        if let (Some(policy), Some(endpoint)) = (&self.egress, &self.config.endpoint) {
            policy.check_url(endpoint).map_err(|refused| SendError::Retryable {
                reason: refused.to_string(),
                retry_after: None,
            })?;
        }
        let static_keys = match (&self.config.access_key_id, &self.config.secret_access_key) {
            (Some(id), Some(secret)) => Some(Credentials::new(id, secret, None, None, "warden-sink-config")),
            (None, None) if self.egress.is_some() => {
                return Err(SendError::Retryable {
                    reason: "CloudWatch Logs sink: a tenant's sink must set its own access_key_id and \
                             secret_access_key"
                        .into(),
                    retry_after: None,
                });
            }
            (None, None) => None,
            _ => {
                return Err(SendError::Retryable {
                    reason: "CloudWatch Logs sink: set both access_key_id and secret_access_key, or neither \
                             (to use the default AWS credential chain); fix the sink's credentials"
                        .into(),
                    retry_after: None,
                });
            }
        };
        Ok(self
            .client
            .get_or_init(|| async {
                let timeouts = TimeoutConfig::builder()
                    .connect_timeout(self.config.timeout)
                    .operation_attempt_timeout(self.config.timeout)
                    .operation_timeout(self.config.timeout)
                    .build();
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(self.config.region.clone()))
                    .timeout_config(timeouts)
                    .retry_config(RetryConfig::disabled());
                if let Some(endpoint) = &self.config.endpoint {
                    loader = loader.endpoint_url(endpoint);
                }
                if let Some(credentials) = static_keys {
                    loader = loader.credentials_provider(credentials);
                }
                if let Some(policy) = &self.egress {
                    let http = aws_smithy_http_client::Builder::new()
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
                        ))
                        .build_with_resolver(policy.aws_resolver());
                    loader = loader.http_client(http);
                }
                Client::new(&loader.load().await)
            })
            .await)
    }

    /// What a failed call means, said in full, or shortly under an egress
    /// policy.
    fn classify<E>(&self, op: &str, err: &SdkError<E>) -> SendError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if self.egress.is_some() {
            classify_quietly(op, err)
        } else {
            classify(op, err)
        }
    }

    async fn put(
        &self,
        client: &Client,
        events: &[InputLogEvent],
    ) -> Result<PutLogEventsOutput, SdkError<PutLogEventsError>> {
        client
            .put_log_events()
            .log_group_name(&self.config.log_group)
            .log_stream_name(&self.config.log_stream)
            .set_log_events(Some(events.to_vec()))
            .send()
            .await
    }

    /// Creates the log stream, and the log group first if the stream
    /// cannot be made without it; either already existing is fine.
    async fn create_destination(&self, client: &Client) -> Result<(), SendError> {
        let stream = || {
            client
                .create_log_stream()
                .log_group_name(&self.config.log_group)
                .log_stream_name(&self.config.log_stream)
                .send()
        };
        match stream().await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                return Ok(());
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(self.classify("CreateLogStream", &e)),
        }
        match client
            .create_log_group()
            .log_group_name(&self.config.log_group)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(self.classify("CreateLogGroup", &e)),
        }
        match stream().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.classify("CreateLogStream", &e)),
        }
    }
}

/// The batch's positions in chronological order (stable: events of the
/// same millisecond keep their order).
fn chronological(batch: &[Event]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].timestamp_ms);
    order
}

/// Refuses, before any request, a batch the service would refuse whole:
/// the engine's batches never are, but a batch from elsewhere might be.
fn check(batch: &[Event], order: &[usize]) -> Result<(), SendError> {
    let permanent = |reason: String| Err(SendError::Permanent { reason });
    if batch.len() > MAX_EVENTS {
        return permanent(format!(
            "a request of {} events is over CloudWatch Logs' {MAX_EVENTS}",
            batch.len()
        ));
    }
    let bytes: usize = batch.iter().map(|e| e.body.len() + EVENT_OVERHEAD).sum();
    if bytes > MAX_REQUEST_BYTES {
        return permanent(format!(
            "a request of {bytes} bytes (with {EVENT_OVERHEAD} per event) is over CloudWatch Logs' {MAX_REQUEST_BYTES}"
        ));
    }
    if let Some(e) = batch.iter().find(|e| e.body.len() > MAX_EVENT_BYTES) {
        return permanent(format!(
            "event {} of {} bytes is over CloudWatch Logs' {MAX_EVENT_BYTES} per event",
            e.event_id,
            e.body.len()
        ));
    }
    if let (Some(&first), Some(&last)) = (order.first(), order.last()) {
        let span = batch[last].timestamp_ms.saturating_sub(batch[first].timestamp_ms);
        if span > MAX_SPAN_MS {
            return permanent(format!(
                "a request spanning {span} ms is over CloudWatch Logs' {MAX_SPAN_MS} (24 hours)"
            ));
        }
    }
    Ok(())
}

/// The events of the sorted request that `info` names, as (position in
/// the batch, reason), by position. `order[i]` is the batch position of
/// the request's `i`-th event; indexes out of range are clamped.
fn rejected(info: &RejectedLogEventsInfo, order: &[usize]) -> Vec<(usize, String)> {
    let n = order.len();
    let index = |i: Option<i32>| i.map(|i| usize::try_from(i).unwrap_or(0).min(n));
    let too_new = index(info.too_new_log_event_start_index()).unwrap_or(n);
    let too_old = index(info.too_old_log_event_end_index()).unwrap_or(0);
    let expired = index(info.expired_log_event_end_index()).unwrap_or(0);
    let mut out: Vec<(usize, String)> = (0..n)
        .filter_map(|i| {
            let reason = if i >= too_new {
                TOO_NEW
            } else if i < too_old {
                TOO_OLD
            } else if i < expired {
                EXPIRED
            } else {
                return None;
            };
            Some((order[i], reason.to_string()))
        })
        .collect();
    out.sort_by_key(|(position, _)| *position);
    out
}

/// Delivered, but for `rejected` (set field by field, so that fields the
/// engine may add later keep their defaults).
fn rejecting(rejected: Vec<(usize, String)>) -> Delivered {
    let mut delivered = Delivered::all();
    delivered.rejected = rejected;
    delivered
}

/// Error codes meaning the credentials (or the clock that signs with them)
/// were refused.
const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "AccessDeniedException",
    "AccessDenied",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "NotAuthorized",
    "RequestExpired",
];

/// Error codes of a service that may take the same request later.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
    "OperationAbortedException",
    "LimitExceededException",
];

/// What a failed call means for the batch. `op` names the call in reasons.
fn classify<E>(op: &str, err: &SdkError<E>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retry = |reason: String| SendError::Retryable {
        reason,
        retry_after: None,
    };
    let detail = DisplayErrorContext(err);
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            // "400 ThrottlingException: Rate exceeded", "500", ...
            let mut answer = format!("{status} {code}").trim_end().to_string();
            if let Some(message) = service.err().message().filter(|m| !m.is_empty()) {
                answer = format!("{answer}: {message}");
            }
            if AUTH_CODES.contains(&code) || status == 401 || status == 403 {
                retry(format!(
                    "CloudWatch Logs refused the sink's credentials on {op} ({answer}); \
                     fix the sink's AWS credentials or their IAM permissions"
                ))
            } else if TRANSIENT_CODES.contains(&code) || status == 429 || status >= 500 {
                retry(format!("CloudWatch Logs {op} answered {answer}"))
            } else if code == "ResourceNotFoundException" {
                // Just created and not visible yet, or deleted meanwhile: the
                // next send creates it again.
                retry(format!(
                    "CloudWatch Logs {op}: the log group or stream is missing ({answer})"
                ))
            } else if code == "InvalidSequenceTokenException" {
                // Never sent by the service since sequence tokens are ignored;
                // an endpoint that still wants them needs another sink, not
                // dead-lettered events.
                retry(format!(
                    "the endpoint asks for a sequence token, which this sink does not send ({op}: {answer})"
                ))
            } else {
                SendError::Permanent {
                    reason: format!("CloudWatch Logs refused {op} ({answer})"),
                }
            }
        }
        SdkError::TimeoutError(_) => retry(format!("CloudWatch Logs {op} timed out: {detail}")),
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            retry(format!("CloudWatch Logs {op} got no answer: {detail}"))
        }
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => retry(format!(
            "CloudWatch Logs {op} could not be sent ({detail}); check the sink's region, endpoint and credentials"
        )),
        SdkError::ResponseError(_) => retry(format!("CloudWatch Logs {op} answered unreadably: {detail}")),
        _ => retry(format!("CloudWatch Logs {op} failed: {detail}")),
    }
}

/// As [`classify`], without the service's message or the SDK's detail: the
/// status and the error code only (a tenant's sink).
fn classify_quietly<E>(op: &str, err: &SdkError<E>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            // The code as a token of the service's vocabulary, not text an
            // endpoint could fill.
            let shown: String = code
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(64)
                .collect();
            let answer = format!("{status} {shown}").trim_end().to_string();
            let retry = AUTH_CODES.contains(&code)
                || status == 401
                || status == 403
                || TRANSIENT_CODES.contains(&code)
                || status == 429
                || status >= 500
                || code == "ResourceNotFoundException"
                || code == "InvalidSequenceTokenException";
            if retry {
                SendError::Retryable {
                    reason: format!("CloudWatch Logs {op} answered {answer}"),
                    retry_after: None,
                }
            } else {
                SendError::Permanent {
                    reason: format!("CloudWatch Logs refused {op} ({answer})"),
                }
            }
        }
        SdkError::TimeoutError(_) => SendError::Retryable {
            reason: format!("CloudWatch Logs {op} timed out"),
            retry_after: None,
        },
        other => {
            // An egress refusal is the reason itself.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(other);
            while let Some(e) = source {
                if let Some(r) = e.downcast_ref::<crate::egress::Refused>() {
                    return SendError::Retryable {
                        reason: r.to_string(),
                        retry_after: None,
                    };
                }
                if let Some(r) = e.downcast_ref::<crate::egress::ResolveError>() {
                    return SendError::Retryable {
                        reason: r.to_string(),
                        retry_after: None,
                    };
                }
                source = e.source();
            }
            SendError::Retryable {
                reason: format!("CloudWatch Logs {op}: the service was not reached"),
                retry_after: None,
            }
        }
    }
}

impl Sink for CloudWatchSink {
    fn kind(&self) -> &'static str {
        "cloudwatch_logs"
    }

    fn limits(&self) -> Limits {
        Limits {
            per_event_overhead: EVENT_OVERHEAD,
            max_span_ms: Some(MAX_SPAN_MS),
            ..Limits::new(MAX_EVENTS, MAX_REQUEST_BYTES, MAX_EVENT_BYTES)
        }
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a> {
        Box::pin(async move {
            let order = chronological(batch);
            check(batch, &order)?;
            // A message is UTF-8 text of at least one character: a body that
            // is not can never be sent intact.
            let mut refused = Vec::new();
            let mut sent = Vec::with_capacity(batch.len());
            let mut events = Vec::with_capacity(batch.len());
            for &i in &order {
                let e = &batch[i];
                match std::str::from_utf8(&e.body) {
                    Ok(message) if !message.is_empty() => {
                        let event = InputLogEvent::builder()
                            .timestamp(e.timestamp_ms)
                            .message(message)
                            .build()
                            .map_err(|err| SendError::Permanent {
                                reason: format!("event {}: {err}", e.event_id),
                            })?;
                        events.push(event);
                        sent.push(i);
                    }
                    Ok(_) => refused.push((i, "an empty event cannot be a CloudWatch Logs message".to_string())),
                    Err(_) => refused.push((
                        i,
                        "the event is not UTF-8, as a CloudWatch Logs message must be".to_string(),
                    )),
                }
            }
            if events.is_empty() {
                return Ok(rejecting(refused));
            }
            let client = self.client().await?;
            let put = match self.put(client, &events).await {
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    self.create_destination(client).await?;
                    self.put(client, &events).await
                }
                other => other,
            };
            let output = match put {
                Ok(output) => output,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_data_already_accepted_exception()) =>
                {
                    return Ok(rejecting(refused));
                }
                Err(e) => return Err(self.classify("PutLogEvents", &e)),
            };
            let mut rejected = refused;
            if let Some(info) = output.rejected_log_events_info() {
                rejected.extend(self::rejected(info, &sent));
            }
            rejected.sort_by_key(|(position, _)| *position);
            Ok(rejecting(rejected))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> Event {
        Event {
            tenant_id: "t".into(),
            index: 0,
            event_id: format!("evt_{ts}"),
            workflow_id: None,
            timestamp_ms: ts,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn the_sort_is_stable_and_remembers_positions() {
        let batch = [at(30), at(10), at(20), at(10)];
        assert_eq!(chronological(&batch), vec![1, 3, 2, 0]);
    }

    #[test]
    fn rejected_indexes_follow_the_documented_bounds() {
        // Sorted request of 6: positions in the batch.
        let order = [5, 0, 3, 1, 4, 2];
        let info = RejectedLogEventsInfo::builder()
            .too_old_log_event_end_index(2) // events 0 and 1, exclusive
            .too_new_log_event_start_index(4) // events 4 and 5, inclusive
            .build();
        let got: Vec<usize> = rejected(&info, &order).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, vec![0, 2, 4, 5]);
        let info = RejectedLogEventsInfo::builder().expired_log_event_end_index(1).build();
        let got = rejected(&info, &order);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 5);
        assert!(got[0].1.contains("expired"));
        // Out of range and negative indexes are clamped, not trusted.
        let info = RejectedLogEventsInfo::builder()
            .too_old_log_event_end_index(-3)
            .too_new_log_event_start_index(99)
            .build();
        assert!(rejected(&info, &order).is_empty());
    }
}
