//! Signed webhooks (couriers): `X-Courier-Id` names the sender, `X-Courier-Signature:
//! t=<unix seconds>,v2=<hex HMAC-SHA256 of "<t>.<METHOD>.<path>.<raw body>">`. The signature
//! covers the method and the path (which names the shipment), so a captured event cannot be
//! replayed against another shipment. Checked before anything is read or written: an unknown
//! sender, a bad signature or a stale timestamp (replay) is refused. A courier may hold two
//! secrets at once (the current and the next) so that it rotates without downtime.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SENDER_HEADER: &str = "x-courier-id";
pub const SIGNATURE_HEADER: &str = "x-courier-signature";
/// How old (or how far in the future) a signed request may be.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature")]
    Missing,
    #[error("malformed signature header")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    /// A v1 signature (body only), which could be replayed against another shipment.
    #[error("v1 signatures are no longer accepted: sign the method, path and body (v2)")]
    Outdated,
    #[error("timestamp outside the accepted window (replay?)")]
    Stale,
}

/// Sign a request at `timestamp` (what a courier does; also used by tests). `None` only if the
/// key were refused, which HMAC never does.
pub fn sign(secret: &[u8], timestamp: i64, method: &str, path: &str, body: &[u8]) -> Option<String> {
    let mac = mac(secret, timestamp, method, path, body)?;
    Some(format!("t={timestamp},v2={}", hex::encode(mac.finalize().into_bytes())))
}

fn mac(secret: &[u8], timestamp: i64, method: &str, path: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    for part in [timestamp.to_string().as_bytes(), method.as_bytes(), path.as_bytes()] {
        mac.update(part);
        mac.update(b".");
    }
    mac.update(body);
    Some(mac)
}

/// Accept the request if one of `secrets` signed exactly this method, path and body, recently.
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    header: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signature = None;
    let mut v1 = false;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v2", value)) => signature = hex::decode(value).ok(),
            Some(("v1", _)) => v1 = true,
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(if v1 {
            SignatureError::Outdated
        } else {
            SignatureError::Malformed
        });
    };
    // Constant-time comparisons, then the clock: a forged request learns nothing about time.
    let signed = secrets.iter().any(|secret| {
        mac(secret.as_ref(), timestamp, method, path, body).is_some_and(|mac| mac.verify_slice(&signature).is_ok())
    });
    if !signed {
        return Err(SignatureError::Mismatch);
    }
    if (now_unix - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/shipments/SH-S-1/events";

    #[test]
    fn sign_and_verify() {
        let header = sign(b"s3cret", 1_000, "POST", PATH, b"{}").expect("HMAC takes any key");
        let verify_with = |secrets: &[&str], header: Option<&str>, method, path, body: &[u8], now| {
            verify(secrets, header, method, path, body, now)
        };
        assert_eq!(
            verify_with(&["s3cret"], Some(&header), "POST", PATH, b"{}", 1_100),
            Ok(())
        );
        assert_eq!(
            verify_with(&["other"], Some(&header), "POST", PATH, b"{}", 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_with(&["s3cret"], Some(&header), "POST", PATH, b"{ }", 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_with(
                &["s3cret"],
                Some(&header),
                "POST",
                PATH,
                b"{}",
                1_000 + TOLERANCE_SECS + 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_with(&["s3cret"], None, "POST", PATH, b"{}", 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_with(&["s3cret"], Some("t=x,v2=zz"), "POST", PATH, b"{}", 1_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_captured_event_does_not_replay_against_another_shipment_or_method() {
        let header = sign(b"s3cret", 1_000, "POST", PATH, b"{\"type\":\"DELIVERED\"}").expect("signed");
        let body = b"{\"type\":\"DELIVERED\"}";
        let other_shipment = "/shipments/SH-S-2/events";
        assert_eq!(
            verify(&["s3cret"], Some(&header), "POST", other_shipment, body, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&["s3cret"], Some(&header), "PUT", PATH, body, 1_000),
            Err(SignatureError::Mismatch)
        );
        // The old body-only scheme is refused by name.
        assert_eq!(
            verify(&["s3cret"], Some("t=1000,v1=00"), "POST", PATH, body, 1_000),
            Err(SignatureError::Outdated)
        );
    }

    #[test]
    fn two_secrets_are_valid_while_a_courier_rotates() {
        let old = sign(b"current", 1_000, "POST", PATH, b"{}").expect("signed");
        let new = sign(b"next", 1_000, "POST", PATH, b"{}").expect("signed");
        for header in [&old, &new] {
            assert_eq!(
                verify(&["current", "next"], Some(header), "POST", PATH, b"{}", 1_000),
                Ok(())
            );
        }
        assert_eq!(
            verify(&["next"], Some(&old), "POST", PATH, b"{}", 1_000),
            Err(SignatureError::Mismatch)
        );
    }
}
