//! What an etcd failure means for the storage contract.
//!
//! etcd reports most conditions as a gRPC status with a fixed message (`etcdserver: mvcc:
//! required revision has been compacted`, `etcdserver: request is too large`, ...). [`classify`]
//! sorts a client error into the few cases the store treats differently; the store then builds the
//! [`StorageError`] with the key and revisions it knows.

use std::time::Duration;

use ironplane_storage::StorageError;
use tonic::Code;

/// The kinds of etcd failure the store tells apart.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The requested revision is below etcd's compaction point.
    Compacted,
    /// The requested revision is above etcd's current revision.
    FutureRevision,
    /// etcd refused the request as larger than its `--max-request-bytes`.
    TooLarge,
    /// A lease the request named does not exist (it expired or was revoked).
    LeaseNotFound,
    /// etcd cannot be reached or did not answer: worth retrying later.
    Unavailable(String),
    /// The request could not be sent at all (no connection to the member): sending it again is
    /// safe even for a write.
    NotSent(String),
    /// Anything else.
    Other(etcd_client::Error),
}

/// Sort a client error.
pub(crate) fn classify(err: etcd_client::Error) -> Failure {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.contains("required revision has been compacted") {
                Failure::Compacted
            } else if message.contains("required revision is a future revision") {
                Failure::FutureRevision
            } else if message.contains("request is too large")
                || message.contains("larger than max")
                || message.contains("message length too large")
            {
                Failure::TooLarge
            } else if message.contains("requested lease not found") {
                Failure::LeaseNotFound
            } else if status.code() == Code::Unavailable && not_sent(message) {
                Failure::NotSent(format!("etcd: {message}"))
            } else if matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted
            ) || message.contains("transport")
                || message.contains("connection")
            {
                Failure::Unavailable(format!("etcd: {message}"))
            } else {
                Failure::Other(etcd_client::Error::GRpcStatus(status))
            }
        }
        etcd_client::Error::TransportError(err) => Failure::Unavailable(format!("etcd: {err}")),
        etcd_client::Error::IoError(err) => Failure::Unavailable(format!("etcd: {err}")),
        etcd_client::Error::WatchError(message) => {
            Failure::Unavailable(format!("etcd watch: {message}"))
        }
        other => Failure::Other(other),
    }
}

/// Whether a transport message says the connection was never made (so nothing was sent).
fn not_sent(message: &str) -> bool {
    [
        "tcp connect error",
        "error trying to connect",
        "Connection refused",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

/// The error for a request that got no answer within the deadline.
pub(crate) fn timed_out(what: &str, deadline: Duration) -> StorageError {
    StorageError::Unavailable(format!(
        "etcd did not answer {what} within {} ms",
        deadline.as_millis()
    ))
}

/// A failure that needs no key or revision to be reported: unavailability and the rest.
pub(crate) fn generic(failure: Failure) -> StorageError {
    match failure {
        Failure::Unavailable(message) | Failure::NotSent(message) => {
            StorageError::Unavailable(message)
        }
        Failure::Other(err) => StorageError::internal(err),
        Failure::Compacted => StorageError::Unavailable(
            "etcd reported a compacted revision where none was asked for".into(),
        ),
        Failure::FutureRevision => StorageError::Unavailable(
            "etcd reported a future revision where none was asked for".into(),
        ),
        Failure::TooLarge => StorageError::internal("etcd refused the request as too large"),
        Failure::LeaseNotFound => StorageError::internal("etcd lease not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::new(code, message))
    }

    #[test]
    fn classifies_etcd_messages() {
        let check = |err, expected: &str| {
            let got = format!("{:?}", classify(err));
            assert!(got.starts_with(expected), "{got} is not {expected}");
        };
        check(
            status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            "Compacted",
        );
        check(
            status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            "FutureRevision",
        );
        check(
            status(Code::InvalidArgument, "etcdserver: request is too large"),
            "TooLarge",
        );
        check(
            status(
                Code::ResourceExhausted,
                "grpc: received message larger than max (2000000 vs. 1572864)",
            ),
            "TooLarge",
        );
        check(
            status(Code::NotFound, "etcdserver: requested lease not found"),
            "LeaseNotFound",
        );
        check(
            status(Code::Unavailable, "etcdserver: no leader"),
            "Unavailable",
        );
        check(
            status(Code::Unavailable, "etcdserver: request timed out"),
            "Unavailable",
        );
        check(status(Code::DeadlineExceeded, "deadline"), "Unavailable");
        check(
            status(Code::PermissionDenied, "etcdserver: permission denied"),
            "Other",
        );
    }
}
