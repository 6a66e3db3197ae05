//! Contacts and dispositions: the port, its DynamoDB adapter and an in-memory one.
//!
//! ContactsTable layout (keys in infra/template.yaml):
//!
//! | item                   | pk                               | sk                      | index |
//! |------------------------|----------------------------------|-------------------------|-------|
//! | contact                | `CONTACT#{id}`                   | `META`                  | by-customer (gsi1), callbacks (gsi2, sparse) |
//! | external id (dedupe)   | `EXT#{client}#{channel}#{ext id}`| `META`                  |       |
//! | customer state         | `CUSTOMER#{client}#{key}`        | `CLIENT` / `CAMPAIGN#{id}` |    |
//! | KPI counters           | `COUNTERS#{campaign}#{day}`      | `TOTAL` / `AGENT#{id}`  |       |
//!
//! Disposition catalogs live in ConfigTable: `CAMPAIGN#{id}` / `DISPOSITIONS#v{version:06}`, and
//! `DISPOSITIONS#ACTIVE` pointing at the active version.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use backoffice_domain::tipification::{Catalog, Contact, Family, Node};

use crate::counters::{CounterRow, counter_rows};
use crate::dynamo::{TransactFailure, corrupt, page_size, s, sdk_error, transact, transact_put};
use crate::{ConflictKind, Page, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Created,
    /// The same (channel, external id) was recorded before: that contact, unchanged.
    Duplicate(Box<Contact>),
}

/// What contactability needs to know about a customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerState {
    pub do_not_contact: Option<String>,
    pub attempts_today: i64,
    pub next_callback: Option<OffsetDateTime>,
}

#[async_trait]
pub trait ContactStore: Send + Sync {
    async fn active_catalog(&self, campaign_id: &str) -> Result<Option<Catalog>, StoreError>;
    /// Store `nodes` as the next version and make it active, unless another version was
    /// activated since `expected_active` was read.
    async fn publish_catalog(
        &self,
        campaign_id: &str,
        nodes: &[Node],
        expected_active: Option<u32>,
        at: OffsetDateTime,
    ) -> Result<Catalog, StoreError>;
    /// The contact, its de-duplication key, the customer's state and the KPI counters, in one
    /// transaction: a resent interaction changes nothing and counts once.
    async fn record(&self, contact: &Contact) -> Result<Recorded, StoreError>;
    async fn history(
        &self,
        client_id: &str,
        customer_key: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Contact>, StoreError>;
    async fn customer_state(
        &self,
        client_id: &str,
        customer_key: &str,
        campaign_id: &str,
        day: time::Date,
    ) -> Result<CustomerState, StoreError>;
    async fn callbacks_due(
        &self,
        client_id: &str,
        agent_id: &str,
        due_before: OffsetDateTime,
    ) -> Result<Vec<Contact>, StoreError>;
    async fn counters(&self, campaign_id: &str, day: time::Date) -> Result<Vec<CounterRow>, StoreError>;
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Effective => "effective",
        Family::NonEffective => "non_effective",
        Family::NoContact => "no_contact",
    }
}

/// Counter increments of one contact (per campaign/day, total and per agent).
pub fn counter_increments(contact: &Contact) -> Vec<(String, i64)> {
    let mut increments = vec![
        ("attempts".to_owned(), 1),
        (family_name(contact.disposition.family).to_owned(), 1),
    ];
    if contact.disposition.family != Family::NoContact {
        increments.push(("contacts".into(), 1));
    }
    if contact.disposition.flags.sale {
        increments.push(("sales".into(), 1));
    }
    if contact.disposition.flags.callback {
        increments.push(("callbacks".into(), 1));
    }
    increments.push((format!("channel_{}", contact.channel.as_str()), 1));
    increments
}

fn day_attr(day: time::Date) -> String {
    format!("attempts_{}", day.to_string().replace('-', ""))
}

// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoContactStore {
    client: Client,
    contacts_table: String,
    config_table: String,
}

impl DynamoContactStore {
    pub fn new(client: Client, contacts_table: impl Into<String>, config_table: impl Into<String>) -> Self {
        Self {
            client,
            contacts_table: contacts_table.into(),
            config_table: config_table.into(),
        }
    }

    fn add(
        table: &str,
        pk: String,
        sk: String,
        increments: &[(String, i64)],
        extra_set: &[(String, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder().table_name(table).key("pk", s(pk)).key("sk", s(sk));
        let mut adds = Vec::new();
        for (i, (name, by)) in increments.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), AttributeValue::N(by.to_string()));
        }
        let mut sets = Vec::new();
        for (i, (name, value)) in extra_set.iter().enumerate() {
            sets.push(format!("#s{i} = :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), name)
                .expression_attribute_values(format!(":s{i}"), value.clone());
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {} ", sets.join(", ")));
        }
        if !adds.is_empty() {
            expression.push_str(&format!("ADD {}", adds.join(", ")));
        }
        let update = update
            .update_expression(expression.trim())
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn get(
        &self,
        table: &str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }
}

fn ext_pk(contact: &Contact) -> String {
    format!(
        "EXT#{}#{}#{}",
        contact.client_id,
        contact.channel.as_str(),
        contact.external_id
    )
}

#[async_trait]
impl ContactStore for DynamoContactStore {
    async fn active_catalog(&self, campaign_id: &str) -> Result<Option<Catalog>, StoreError> {
        let pk = format!("CAMPAIGN#{campaign_id}");
        let Some(pointer) = self.get(&self.config_table, &pk, "DISPOSITIONS#ACTIVE").await? else {
            return Ok(None);
        };
        let version: u32 = pointer
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("catalog pointer without version".into()))?;
        let item = self
            .get(&self.config_table, &pk, &format!("DISPOSITIONS#v{version:06}"))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("catalog version {version} missing")))?;
        let nodes_json = item
            .get("nodes")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("catalog without nodes".into()))?;
        let nodes: Vec<Node> = serde_json::from_str(nodes_json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(Catalog { version, nodes }))
    }

    async fn publish_catalog(
        &self,
        campaign_id: &str,
        nodes: &[Node],
        expected_active: Option<u32>,
        at: OffsetDateTime,
    ) -> Result<Catalog, StoreError> {
        let version = expected_active.unwrap_or(0) + 1;
        let pk = format!("CAMPAIGN#{campaign_id}");
        let nodes_json = serde_json::to_string(nodes).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut item = HashMap::new();
        item.insert("pk".to_owned(), s(pk.clone()));
        item.insert("sk".to_owned(), s(format!("DISPOSITIONS#v{version:06}")));
        item.insert("nodes".to_owned(), s(nodes_json));
        item.insert("published_at".to_owned(), s(at.to_string()));
        let mut pointer = HashMap::new();
        pointer.insert("pk".to_owned(), s(pk));
        pointer.insert("sk".to_owned(), s("DISPOSITIONS#ACTIVE"));
        pointer.insert("version".to_owned(), AttributeValue::N(version.to_string()));
        let mut pointer_put = Put::builder().table_name(&self.config_table).set_item(Some(pointer));
        pointer_put = match expected_active {
            None => pointer_put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => pointer_put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        let pointer_put = pointer_put.build().map_err(|e| StoreError::Backend(e.to_string()))?;
        let items = vec![
            transact_put(&self.config_table, item, Some("attribute_not_exists(pk)"))?,
            TransactWriteItem::builder().put(pointer_put).build(),
        ];
        match transact(&self.client, items).await {
            Ok(()) => Ok(Catalog {
                version,
                nodes: nodes.to_vec(),
            }),
            Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict(ConflictKind::StaleVersion)),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn record(&self, contact: &Contact) -> Result<Recorded, StoreError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(contact).map_err(corrupt("serializing contact"))?;
        let started = format!("{:020}#{}", contact.started_at.unix_timestamp_nanos(), contact.id);
        item.insert("pk".into(), s(format!("CONTACT#{}", contact.id)));
        item.insert("sk".into(), s("META"));
        item.insert(
            "gsi1pk".into(),
            s(format!("CUST#{}#{}", contact.client_id, contact.customer_key.as_str())),
        );
        item.insert("gsi1sk".into(), s(started));
        if let Some(at) = contact.callback_at {
            item.insert(
                "gsi2pk".into(),
                s(format!("CALLBACK#{}#{}", contact.client_id, contact.agent_id)),
            );
            item.insert(
                "gsi2sk".into(),
                s(format!("{:020}#{}", at.unix_timestamp_nanos(), contact.id)),
            );
        }
        let mut ext = HashMap::new();
        ext.insert("pk".to_owned(), s(ext_pk(contact)));
        ext.insert("sk".to_owned(), s("META"));
        ext.insert("contact_id".to_owned(), s(contact.id.clone()));
        let day = contact.day();
        let increments = counter_increments(contact);
        let counters_pk = format!("COUNTERS#{}#{day}", contact.campaign_id);
        let customer_pk = format!("CUSTOMER#{}#{}", contact.client_id, contact.customer_key.as_str());
        let mut campaign_set = vec![("last_disposition".to_owned(), s(contact.disposition.code.clone()))];
        if let Some(at) = contact.callback_at {
            campaign_set.push((
                "next_callback_at".to_owned(),
                AttributeValue::N(at.unix_timestamp().to_string()),
            ));
        }
        let mut items = vec![
            transact_put(&self.contacts_table, item, Some("attribute_not_exists(pk)"))?,
            transact_put(&self.contacts_table, ext, Some("attribute_not_exists(pk)"))?,
            Self::add(
                &self.contacts_table,
                counters_pk.clone(),
                "TOTAL".into(),
                &increments,
                &[],
            )?,
            Self::add(
                &self.contacts_table,
                counters_pk,
                format!("AGENT#{}", contact.agent_id),
                &increments,
                &[],
            )?,
            Self::add(
                &self.contacts_table,
                customer_pk.clone(),
                format!("CAMPAIGN#{}", contact.campaign_id),
                &[(day_attr(day), 1)],
                &campaign_set,
            )?,
        ];
        if contact.disposition.flags.do_not_contact {
            items.push(Self::add(
                &self.contacts_table,
                customer_pk,
                "CLIENT".into(),
                &[],
                &[("do_not_contact".to_owned(), s(contact.disposition.code.clone()))],
            )?);
        }
        // Concurrent contacts of one campaign update the same counter items: DynamoDB cancels
        // all but one of such transactions (TransactionConflict). Retry those with backoff; a
        // failed condition on the external id means this interaction was already recorded.
        for attempt in 0..6u32 {
            // Items: 0 the contact, 1 its external-id guard, then counters and customer state.
            let duplicate = match transact(&self.client, items.clone()).await {
                Ok(()) => return Ok(Recorded::Created),
                Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => true,
                Err(TransactFailure::Cancelled(c)) if c.conflicted() => false,
                Err(TransactFailure::Cancelled(c)) => return Err(c.into()),
                Err(TransactFailure::Failed(e @ StoreError::Unavailable(_))) => {
                    tracing::debug!(error = %e, "contact transaction unavailable; retrying");
                    false
                }
                Err(TransactFailure::Failed(e)) => return Err(e),
            };
            if duplicate {
                let ext = self
                    .get(&self.contacts_table, &ext_pk(contact), "META")
                    .await?
                    .ok_or(StoreError::Conflict(ConflictKind::AlreadyExists))?;
                let id = ext
                    .get("contact_id")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let existing = self
                    .get(&self.contacts_table, &format!("CONTACT#{id}"), "META")
                    .await?
                    .ok_or(StoreError::Conflict(ConflictKind::AlreadyExists))?;
                return Ok(Recorded::Duplicate(Box::new(
                    serde_dynamo::from_item(existing).map_err(corrupt("reading contact"))?,
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(
                20 * u64::from(attempt + 1) + u64::from(attempt) * 13,
            ))
            .await;
        }
        Err(StoreError::Unavailable(
            "too many concurrent updates of the same counters; retry".into(),
        ))
    }

    async fn history(
        &self,
        client_id: &str,
        customer_key: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Contact>, StoreError> {
        use base64::Engine;
        let pk = format!("CUST#{client_id}#{customer_key}");
        let start = match cursor {
            None => None,
            Some(raw) => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(raw)
                    .map_err(|_| StoreError::InvalidCursor)?;
                let key: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
                if key.get("gsi1pk") != Some(&pk) || key.len() != 4 {
                    return Err(StoreError::InvalidCursor);
                }
                Some(key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
            }
        };
        let output = self
            .client
            .query()
            .table_name(&self.contacts_table)
            .index_name("by-customer")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .limit(page_size(limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(corrupt("reading contact")))
            .collect::<Result<Vec<Contact>, _>>()?;
        let next_cursor = output.last_evaluated_key.map(|key| {
            let plain: BTreeMap<String, String> = key
                .into_iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k, v.clone())))
                .collect();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).unwrap_or_default())
        });
        Ok(Page { items, next_cursor })
    }

    async fn customer_state(
        &self,
        client_id: &str,
        customer_key: &str,
        campaign_id: &str,
        day: time::Date,
    ) -> Result<CustomerState, StoreError> {
        let pk = format!("CUSTOMER#{client_id}#{customer_key}");
        let client = self.get(&self.contacts_table, &pk, "CLIENT").await?;
        let campaign = self
            .get(&self.contacts_table, &pk, &format!("CAMPAIGN#{campaign_id}"))
            .await?;
        let number = |item: &Option<HashMap<String, AttributeValue>>, name: &str| {
            item.as_ref()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        Ok(CustomerState {
            do_not_contact: client
                .as_ref()
                .and_then(|i| i.get("do_not_contact"))
                .and_then(|v| v.as_s().ok())
                .cloned(),
            attempts_today: number(&campaign, &day_attr(day)).unwrap_or(0),
            next_callback: number(&campaign, "next_callback_at")
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    async fn callbacks_due(
        &self,
        client_id: &str,
        agent_id: &str,
        due_before: OffsetDateTime,
    ) -> Result<Vec<Contact>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.contacts_table)
            .index_name("callbacks")
            .key_condition_expression("gsi2pk = :pk AND gsi2sk <= :due")
            .expression_attribute_values(":pk", s(format!("CALLBACK#{client_id}#{agent_id}")))
            .expression_attribute_values(":due", s(format!("{:020}#~", due_before.unix_timestamp_nanos())))
            .limit(100)
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(corrupt("reading contact")))
            .collect()
    }

    async fn counters(&self, campaign_id: &str, day: time::Date) -> Result<Vec<CounterRow>, StoreError> {
        counter_rows(
            &self.client,
            &self.contacts_table,
            &format!("COUNTERS#{campaign_id}#{day}"),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin: the same conditions, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryContactStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct MemoryState {
        catalogs: HashMap<String, Vec<Catalog>>,
        contacts: BTreeMap<String, Contact>,
        external: HashMap<String, String>,
        counters: BTreeMap<(String, String), BTreeMap<String, i64>>,
        dnc: HashMap<String, String>,
        attempts: HashMap<(String, String, time::Date), i64>,
        callbacks: HashMap<(String, String), OffsetDateTime>,
    }

    /// In-process adapter for handler tests.
    #[derive(Default)]
    pub struct MemoryContactStore {
        state: Mutex<MemoryState>,
    }

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    #[async_trait]
    impl ContactStore for MemoryContactStore {
        async fn active_catalog(&self, campaign_id: &str) -> Result<Option<Catalog>, StoreError> {
            Ok(self
                .state
                .lock()
                .map_err(poisoned)?
                .catalogs
                .get(campaign_id)
                .and_then(|v| v.last().cloned()))
        }

        async fn publish_catalog(
            &self,
            campaign_id: &str,
            nodes: &[Node],
            expected_active: Option<u32>,
            _at: OffsetDateTime,
        ) -> Result<Catalog, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            let versions = state.catalogs.entry(campaign_id.to_owned()).or_default();
            if versions.last().map(|c| c.version) != expected_active {
                return Err(StoreError::Conflict(ConflictKind::StaleVersion));
            }
            let catalog = Catalog {
                version: expected_active.unwrap_or(0) + 1,
                nodes: nodes.to_vec(),
            };
            versions.push(catalog.clone());
            Ok(catalog)
        }

        async fn record(&self, contact: &Contact) -> Result<Recorded, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            if let Some(existing) = state
                .external
                .get(&ext_pk(contact))
                .and_then(|id| state.contacts.get(id))
            {
                return Ok(Recorded::Duplicate(Box::new(existing.clone())));
            }
            state.external.insert(ext_pk(contact), contact.id.clone());
            state.contacts.insert(contact.id.clone(), contact.clone());
            let day = contact.day();
            for sk in ["TOTAL".to_owned(), format!("AGENT#{}", contact.agent_id)] {
                let row = state
                    .counters
                    .entry((format!("{}#{day}", contact.campaign_id), sk))
                    .or_default();
                for (name, by) in counter_increments(contact) {
                    *row.entry(name).or_default() += by;
                }
            }
            let key = format!("{}#{}", contact.client_id, contact.customer_key.as_str());
            *state
                .attempts
                .entry((key.clone(), contact.campaign_id.clone(), day))
                .or_default() += 1;
            if contact.disposition.flags.do_not_contact {
                state.dnc.insert(key.clone(), contact.disposition.code.clone());
            }
            if let Some(at) = contact.callback_at {
                state.callbacks.insert((key, contact.campaign_id.clone()), at);
            }
            Ok(Recorded::Created)
        }

        async fn history(
            &self,
            client_id: &str,
            customer_key: &str,
            limit: u32,
            cursor: Option<&str>,
        ) -> Result<Page<Contact>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let mut all: Vec<&Contact> = state
                .contacts
                .values()
                .filter(|c| c.client_id == client_id && c.customer_key.as_str() == customer_key)
                .collect();
            all.sort_by_key(|c| std::cmp::Reverse((c.started_at, c.id.clone())));
            let start = cursor
                .map(|c| c.parse::<usize>().map_err(|_| StoreError::InvalidCursor))
                .transpose()?
                .unwrap_or(0);
            let items: Vec<Contact> = all
                .iter()
                .skip(start)
                .take(limit as usize)
                .map(|c| (*c).clone())
                .collect();
            let next = start + items.len();
            Ok(Page {
                next_cursor: (next < all.len()).then(|| next.to_string()),
                items,
            })
        }

        async fn customer_state(
            &self,
            client_id: &str,
            customer_key: &str,
            campaign_id: &str,
            day: time::Date,
        ) -> Result<CustomerState, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let key = format!("{client_id}#{customer_key}");
            Ok(CustomerState {
                do_not_contact: state.dnc.get(&key).cloned(),
                attempts_today: state
                    .attempts
                    .get(&(key.clone(), campaign_id.to_owned(), day))
                    .copied()
                    .unwrap_or(0),
                next_callback: state.callbacks.get(&(key, campaign_id.to_owned())).copied(),
            })
        }

        async fn callbacks_due(
            &self,
            client_id: &str,
            agent_id: &str,
            due_before: OffsetDateTime,
        ) -> Result<Vec<Contact>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(state
                .contacts
                .values()
                .filter(|c| {
                    c.client_id == client_id
                        && c.agent_id == agent_id
                        && c.callback_at.is_some_and(|at| at <= due_before)
                })
                .cloned()
                .collect())
        }

        async fn counters(&self, campaign_id: &str, day: time::Date) -> Result<Vec<CounterRow>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let pk = format!("{campaign_id}#{day}");
            Ok(state
                .counters
                .iter()
                .filter(|((p, _), _)| *p == pk)
                .map(|((_, sk), values)| CounterRow {
                    sk: sk.clone(),
                    values: values.clone(),
                })
                .collect())
        }
    }
}
