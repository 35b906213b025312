//! The one closed set of error codes every service and the BFF share.
//!
//! A handler returns [`Error`]; it becomes a `tonic::Status` with the mapped
//! gRPC code, a message a person can act on, and the stable reason in the
//! `x-cityevents-error` metadata. Internal and unavailable failures log their
//! cause chain and answer a fixed message: SQL and driver text never leave.

use std::fmt;
use std::time::Duration;

/// Metadata key carrying the stable reason (`ErrorCode::as_str`).
pub const REASON_METADATA: &str = "x-cityevents-error";
/// Metadata key carrying the seconds to wait before retrying.
pub const RETRY_AFTER_METADATA: &str = "retry-after";
/// The finer reason of a FAILED_PRECONDITION naming an image that is still
/// being processed (media answers it; event passes it on): retry after
/// `retry-after`.
pub const IMAGE_PROCESSING: &str = "IMAGE_PROCESSING";

/// Every error a CityEvents API can return, with one gRPC and one HTTP status each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A field is missing or malformed; the message names it.
    InvalidArgument,
    /// No valid credentials, or they were revoked.
    Unauthenticated,
    /// Authenticated, but not allowed to do this.
    PermissionDenied,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// Creating something that exists already (a taken email, say).
    AlreadyExists,
    /// The resource is in a state that does not allow the operation.
    FailedPrecondition,
    /// An optimistic-concurrency check failed: re-read and retry.
    Conflict,
    /// A rate limit or a cap was hit; see `retry-after`.
    ResourceExhausted,
    /// A dependency is down; safe to retry later.
    Unavailable,
    /// The deadline passed before the work finished.
    DeadlineExceeded,
    /// A bug or an unexpected failure; the cause is in the logs.
    Internal,
}

impl ErrorCode {
    /// The stable, machine-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Conflict => "CONFLICT",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Internal => "INTERNAL",
        }
    }

    /// The gRPC status code.
    pub fn grpc(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Conflict => Code::Aborted,
            Self::ResourceExhausted => Code::ResourceExhausted,
            Self::Unavailable => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal => Code::Internal,
        }
    }

    /// The HTTP status for REST/JSON callers.
    pub fn http(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists | Self::Conflict => S::CONFLICT,
            Self::FailedPrecondition => S::UNPROCESSABLE_ENTITY,
            Self::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The HTTP status of any gRPC code (the BFF's REST answers): the
    /// table's mapping, and the usual one for codes the table never sends.
    pub fn http_of(code: tonic::Code) -> http::StatusCode {
        use http::StatusCode as S;
        use tonic::Code as C;
        let ours = [
            Self::InvalidArgument,
            Self::Unauthenticated,
            Self::PermissionDenied,
            Self::NotFound,
            Self::AlreadyExists,
            Self::FailedPrecondition,
            Self::Conflict,
            Self::ResourceExhausted,
            Self::Unavailable,
            Self::DeadlineExceeded,
            Self::Internal,
        ];
        if let Some(c) = ours.into_iter().find(|c| c.grpc() == code) {
            return c.http();
        }
        match code {
            C::Ok => S::OK,
            C::OutOfRange => S::BAD_REQUEST,
            C::Unimplemented => S::NOT_IMPLEMENTED,
            // The caller went away: nginx's 499 is no standard; 408 is close.
            C::Cancelled => S::REQUEST_TIMEOUT,
            _ => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The fixed message for codes whose cause must not reach the caller.
    fn fixed_message(self) -> Option<&'static str> {
        match self {
            Self::Internal => Some("internal error; it has been logged, please retry later"),
            Self::Unavailable => Some("service temporarily unavailable, please retry"),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error on its way to a caller.
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    reason: Option<&'static str>,
    message: String,
    retry_after: Option<Duration>,
    cause: Option<anyhow::Error>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a message meant for the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: None,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// InvalidArgument naming the field: `"<field>: <problem>"`.
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidArgument, format!("{field}: {problem}"))
    }

    /// An internal failure: the cause is logged, the caller sees a fixed text.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::new(ErrorCode::Internal, "").with_cause(cause)
    }

    /// The one "no such event" every service answers (also for events the
    /// caller may not see).
    pub fn no_such_event() -> Self {
        Self::new(ErrorCode::NotFound, "event_id: no such event").with_reason("EVENT_NOT_FOUND")
    }

    /// A dependency is unavailable; the cause is logged.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self::new(ErrorCode::Unavailable, "").with_cause(cause)
    }

    /// Attaches the underlying cause (logged, never returned).
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// A finer, documented reason than the code (e.g. `EVENT_CANCELLED`),
    /// sent in `x-cityevents-error` instead of the code's name.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The stable reason callers branch on.
    pub fn reason(&self) -> &'static str {
        self.reason.unwrap_or(self.code.as_str())
    }

    /// Tells the caller when to retry.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message the caller will see.
    pub fn message(&self) -> &str {
        self.code.fixed_message().unwrap_or(&self.message)
    }

    /// Seconds to wait before retrying, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message())
    }
}

impl std::error::Error for Error {
    /// The underlying cause, so `{:#}` and log lines show the whole chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<sqlx::Error> for Error {
    /// Constraint violations a handler did not turn into a precise answer
    /// become client errors with a fixed message (never the constraint's or
    /// the driver's text); a lost connection or exhausted pool is
    /// UNAVAILABLE; a deadlock or serialization failure is CONFLICT (retry).
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind as Kind;
        let (code, message) = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                return Self::unavailable(e);
            }
            sqlx::Error::Database(db) => match db.kind() {
                Kind::UniqueViolation => (ErrorCode::AlreadyExists, "this already exists"),
                Kind::ForeignKeyViolation => (
                    ErrorCode::FailedPrecondition,
                    "this refers to something that does not exist (any more)",
                ),
                Kind::CheckViolation | Kind::NotNullViolation => (
                    ErrorCode::InvalidArgument,
                    "a value is outside what is allowed",
                ),
                _ if matches!(db.code().as_deref(), Some("40P01" | "40001")) => (
                    ErrorCode::Conflict,
                    "the change met a concurrent one; retry it",
                ),
                _ => return Self::internal(e),
            },
            _ => return Self::internal(e),
        };
        Self::new(code, message).with_cause(e)
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Self::unavailable(e)
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        if let Some(cause) = &e.cause {
            tracing::error!(code = %e.code, error = format!("{cause:#}"), "request failed");
        }
        let mut status = tonic::Status::new(e.code.grpc(), e.message());
        let md = status.metadata_mut();
        md.insert(
            REASON_METADATA,
            tonic::metadata::MetadataValue::from_static(e.reason()),
        );
        if let Some(after) = e.retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = secs.to_string().parse() {
                md.insert(RETRY_AFTER_METADATA, v);
            }
        }
        status
    }
}

/// What a tonic handler returns.
pub type Reply<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

/// Turns a handler's result into a tonic reply (errors through the table).
pub fn reply<T>(r: Result<T>) -> Reply<T> {
    r.map(tonic::Response::new).map_err(tonic::Status::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_show_their_cause() {
        let status: tonic::Status =
            Error::internal(anyhow::anyhow!("relation \"users\" does not exist")).into();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("users"));
        assert_eq!(status.metadata().get(REASON_METADATA).unwrap(), "INTERNAL");
    }

    /// A database error as PostgreSQL would report it.
    #[derive(Debug)]
    struct Pg(&'static str);

    impl fmt::Display for Pg {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("duplicate key value violates unique constraint \"users_email_key\"")
        }
    }
    impl std::error::Error for Pg {}
    impl sqlx::error::DatabaseError for Pg {
        fn message(&self) -> &str {
            "duplicate key value violates unique constraint \"users_email_key\""
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            use sqlx::error::ErrorKind as K;
            match self.0 {
                "23505" => K::UniqueViolation,
                "23503" => K::ForeignKeyViolation,
                "23514" => K::CheckViolation,
                _ => K::Other,
            }
        }
    }

    #[test]
    fn constraint_violations_are_client_errors_without_the_database_text() {
        let cases = [
            (Pg("23505"), tonic::Code::AlreadyExists),
            (Pg("23503"), tonic::Code::FailedPrecondition),
            (Pg("23514"), tonic::Code::InvalidArgument),
            (Pg("40P01"), tonic::Code::Aborted),
            (Pg("42P01"), tonic::Code::Internal),
        ];
        for (pg, code) in cases {
            let status: tonic::Status = Error::from(sqlx::Error::Database(Box::new(pg))).into();
            assert_eq!(status.code(), code);
            assert!(
                !status.message().contains("users_email_key"),
                "{}",
                status.message()
            );
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let status: tonic::Status = Error::new(ErrorCode::ResourceExhausted, "slow down")
            .with_retry_after(Duration::from_millis(1200))
            .into();
        assert_eq!(status.metadata().get(RETRY_AFTER_METADATA).unwrap(), "2");
    }

    #[test]
    fn every_code_maps_to_a_distinct_reason() {
        use ErrorCode::*;
        let all = [
            InvalidArgument,
            Unauthenticated,
            PermissionDenied,
            NotFound,
            AlreadyExists,
            FailedPrecondition,
            Conflict,
            ResourceExhausted,
            Unavailable,
            DeadlineExceeded,
            Internal,
        ];
        let reasons: std::collections::HashSet<_> = all.iter().map(|c| c.as_str()).collect();
        for c in all {
            assert_eq!(ErrorCode::http_of(c.grpc()), c.http(), "{c}");
        }
        assert_eq!(
            ErrorCode::http_of(tonic::Code::Unimplemented),
            http::StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(reasons.len(), all.len());
        assert!(all.iter().all(|c| c.http().as_u16() >= 400));
    }
}
