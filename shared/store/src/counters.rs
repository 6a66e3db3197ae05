//! Counter items: `ADD` increments applied in the same transaction as a state change, so a
//! count can never disagree with the changes it counts. The pre-sales table keeps review
//! metrics this way, the contacts table KPI counters.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use crate::StoreError;
use crate::dynamo::{query_all, s, string_attr};

/// `ADD` increments on one counter item, applied atomically with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub pk: String,
    pub sk: String,
    pub increments: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub sk: String,
    pub values: std::collections::BTreeMap<String, i64>,
}

#[async_trait]
pub trait Counters: Send + Sync {
    /// Counter items under `pk` (e.g. a campaign's review metrics of one day).
    async fn counters(&self, pk: &str) -> Result<Vec<CounterRow>, StoreError>;
}

/// Every counter item of one partition, numbers only.
pub(crate) async fn counter_rows(client: &Client, table: &str, pk: &str) -> Result<Vec<CounterRow>, StoreError> {
    let query = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(pk))
        .consistent_read(true);
    Ok(query_all(query)
        .await?
        .into_iter()
        .map(|item| CounterRow {
            sk: string_attr(&item, "sk").unwrap_or_default(),
            values: item
                .iter()
                .filter_map(|(k, v)| {
                    v.as_n()
                        .ok()
                        .and_then(|n| n.parse::<i64>().ok())
                        .map(|n| (k.clone(), n))
                })
                .collect(),
        })
        .collect())
}

/// `ADD a :1, b :1` on one counter item (created on first use).
pub(crate) fn counter_update(table: &str, counter: &CounterDelta) -> Result<TransactWriteItem, StoreError> {
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("pk", s(counter.pk.clone()))
        .key("sk", s(counter.sk.clone()));
    // One clause per attribute: DynamoDB refuses an update that names an attribute twice.
    let mut merged: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (name, by) in &counter.increments {
        let total = merged.entry(name.as_str()).or_default();
        *total = total.saturating_add(*by);
    }
    let mut clauses = Vec::new();
    for (i, (name, by)) in merged.into_iter().enumerate() {
        clauses.push(format!("#c{i} :v{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), name)
            .expression_attribute_values(format!(":v{i}"), AttributeValue::N(by.to_string()));
    }
    let update = update
        .update_expression(format!("ADD {}", clauses.join(", ")))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_named_twice_is_added_once_with_the_sum() {
        let delta = CounterDelta {
            pk: "METRICS#c1#2026-11-23".into(),
            sk: "VALIDATOR#val-1".into(),
            increments: vec![
                ("reason_NO_CONSENT".into(), 1),
                ("rejected".into(), 1),
                ("reason_NO_CONSENT".into(), 1),
            ],
        };
        let item = counter_update("t", &delta).expect("an update");
        let update = item.update().expect("an update item");
        assert_eq!(update.update_expression(), "ADD #c0 :v0, #c1 :v1");
        let names = update.expression_attribute_names().expect("names");
        let values = update.expression_attribute_values().expect("values");
        assert_eq!(names.get("#c0").map(String::as_str), Some("reason_NO_CONSENT"));
        assert_eq!(values.get(":v0"), Some(&AttributeValue::N("2".into())));
        assert_eq!(names.get("#c1").map(String::as_str), Some("rejected"));
    }
}
