//! S3 event notifications as they arrive through SQS, parsed tolerantly: S3's own test event,
//! emulators that omit fields `aws_lambda_events::s3::S3Event` requires, and percent-encoded keys.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "versionId", default)]
    version_id: Option<String>,
}

/// One created object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `s3:TestEvent`, sent when a notification is configured: nothing to do.
    TestEvent,
    Objects(Vec<CreatedObject>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an S3 event notification: {0}")]
pub struct NotAnS3Event(pub String);

pub fn parse(body: &str) -> Result<Parsed, NotAnS3Event> {
    let notification: Notification = serde_json::from_str(body).map_err(|e| NotAnS3Event(e.to_string()))?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Parsed::TestEvent);
    }
    if notification.records.is_empty() {
        return Err(NotAnS3Event("no Records".into()));
    }
    let objects = notification
        .records
        .into_iter()
        .filter(|r| r.event_name.starts_with("ObjectCreated:"))
        .map(|r| CreatedObject {
            bucket: r.s3.bucket.name,
            key: decode_key(&r.s3.object.key),
            version_id: r.s3.object.version_id.filter(|v| !v.is_empty() && v != "null"),
            size: r.s3.object.size,
        })
        .collect();
    Ok(Parsed::Objects(objects))
}

/// S3 URL-encodes keys in notifications, with `+` for a space. Invalid escapes stay as they are.
pub fn decode_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_events_and_records() {
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#),
            Ok(Parsed::TestEvent)
        );
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"rec"},"object":{"key":"calls%2Facme%2Fc1%2F2026%2F11%2F23%2Fcall+1.wav","size":44,"versionId":"v1"}}}]}"#;
        assert_eq!(
            parse(body),
            Ok(Parsed::Objects(vec![CreatedObject {
                bucket: "rec".into(),
                key: "calls/acme/c1/2026/11/23/call 1.wav".into(),
                version_id: Some("v1".into()),
                size: Some(44)
            }]))
        );
        assert!(parse("not json").is_err());
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"Records":[{"s3":{}}]}"#).is_err());
    }

    #[test]
    fn key_decoding() {
        assert_eq!(decode_key("a%2Fb+c%20d"), "a/b c d");
        assert_eq!(decode_key("100%"), "100%");
        assert_eq!(decode_key("%zz%2"), "%zz%2");
        assert_eq!(decode_key("caf%C3%A9"), "café");
    }
}
