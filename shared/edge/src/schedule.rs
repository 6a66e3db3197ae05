//! What a scheduled invocation asks for. EventBridge Scheduler passes the target's input (`{}`
//! unless the schedule says otherwise); an EventBridge rule passes its own envelope (with
//! `detail-type`); an operator invoking by hand passes the fields that narrow the run.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The request of a scheduled run: the default for a rule's envelope, else the payload read as
/// `T` (a typo in a hand-written field is an error, not a silently wider run, when `T` denies
/// unknown fields).
pub fn request<T: DeserializeOwned + Default>(payload: &Value) -> Result<T, serde_json::Error> {
    if payload.get("detail-type").is_some() {
        return Ok(T::default());
    }
    serde_json::from_value(payload.clone())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Narrow {
        #[serde(default)]
        client_id: Option<String>,
    }

    #[test]
    fn a_rule_s_envelope_is_the_default_and_a_hand_written_request_is_read_strictly() {
        let envelope = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(request::<Narrow>(&envelope).expect("default"), Narrow::default());
        assert_eq!(request::<Narrow>(&json!({})).expect("empty"), Narrow::default());
        assert_eq!(
            request::<Narrow>(&json!({"client_id": "acme"})).expect("narrowed"),
            Narrow {
                client_id: Some("acme".into())
            }
        );
        assert!(request::<Narrow>(&json!({"clientid": "acme"})).is_err());
    }
}
