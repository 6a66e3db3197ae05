//! Contacts, dispositions and callbacks: the ports, their DynamoDB adapter and an in-memory one.
//!
//! ContactsTable layout (keys in infra/template.yaml):
//!
//! | item                   | pk                               | sk                      | index |
//! |------------------------|----------------------------------|-------------------------|-------|
//! | contact                | `CONTACT#{id}`                   | `META`                  | by-customer (gsi1) |
//! | external id (dedupe)   | `EXT#{client}#{channel}#{ext id}`| `META`                  |       |
//! | customer state         | `CUSTOMER#{client}#{key}`        | `CLIENT` / `CAMPAIGN#{id}` |    |
//! | KPI counters           | `COUNTERS#{campaign}#{day}`      | `TOTAL` / `AGENT#{id}`  |       |
//! | day attempt (KPIs)     | `ATTEMPTS#{campaign}#{day}`      | `{contact id}`          |       |
//! | KPI report rows        | `KPI#{campaign}`                 | `{day}#0` / `{day}#1#…` |       |
//! | callback               | `CALLBACK#{id}`                  | `META`                  | callbacks (gsi2, sparse): `CB#AGENT#{client}#{agent}` |
//! | callback, by campaign  | `CALLBACK#{id}`                  | `CAMPAIGN`              | callbacks (gsi2): `CB#CAMPAIGN#{campaign}` |
//!
//! A callback's id is the id of the contact that scheduled it. While it is SCHEDULED, its record
//! sits on the `callbacks` index in its agent's partition and a copy (`CAMPAIGN`) in its
//! campaign's, both sorted by `{due:020}#{id}`; when it leaves SCHEDULED the record is rewritten
//! without index keys and the copy is deleted, so due lists only ever hold scheduled callbacks.
//! The customer state's campaign item names the pending callback (`pending_callback`, and its
//! due time `next_callback_at`): every transition is conditioned on it, so a customer has one
//! pending callback per campaign. Contacts recorded before callbacks had a lifecycle carry
//! `gsi2pk = CALLBACK#{client}#{agent}` themselves: that partition is no longer read.
//!
//! Disposition catalogs live in ConfigTable: `CAMPAIGN#{id}` / `DISPOSITIONS#v{version:06}`, and
//! `DISPOSITIONS#ACTIVE` pointing at the active version.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use backoffice_domain::tipification::callback::{Callback, CallbackChanges, PendingAfter};
use backoffice_domain::tipification::{Catalog, Contact, Family, Node};

use crate::counters::{CounterRow, counter_rows};
use crate::dynamo::{
    Item, TransactFailure, corrupt, decode_cursor, encode_cursor, get_item, nanos, page_size, s, sdk_error, transact,
    transact_put, transact_retrying,
};
use crate::sdk::SdkClient;
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
    /// The contact, its de-duplication key, the customer's state, the KPI counters and the
    /// contact's `callbacks` changes, in one transaction: a resent interaction changes nothing and
    /// counts once. If the customer's pending callback is no longer `callbacks.expected_pending`
    /// (or the one to close left SCHEDULED meanwhile), nothing is written:
    /// `Conflict(StaleVersion)`, and the caller reads the pending callback again.
    async fn record(&self, contact: &Contact, callbacks: &CallbackChanges) -> Result<Recorded, StoreError>;
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
    async fn counters(&self, campaign_id: &str, day: time::Date) -> Result<Vec<CounterRow>, StoreError>;
}

/// Whose scheduled callbacks a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackList {
    /// One agent's, in one client.
    Agent { client_id: String, agent_id: String },
    /// Every agent's, in one campaign.
    Campaign { campaign_id: String },
}

impl CallbackList {
    fn partition(&self) -> String {
        match self {
            CallbackList::Agent { client_id, agent_id } => format!("CB#AGENT#{client_id}#{agent_id}"),
            CallbackList::Campaign { campaign_id } => format!("CB#CAMPAIGN#{campaign_id}"),
        }
    }
}

/// A page of scheduled callbacks, soonest due (oldest) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackQuery {
    pub list: CallbackList,
    /// Only callbacks due at or before this instant; all of them when `None`.
    pub due_before: Option<OffsetDateTime>,
    /// 1 to 100.
    pub limit: u32,
    pub cursor: Option<String>,
}

/// Callbacks: read one, the customer's pending one, list scheduled ones, close one.
#[async_trait]
pub trait CallbackStore: Send + Sync {
    async fn callback(&self, id: &str) -> Result<Option<Callback>, StoreError>;
    /// The customer's pending (SCHEDULED) callback in the campaign, if any.
    async fn pending_callback(
        &self,
        client_id: &str,
        customer_key: &str,
        campaign_id: &str,
    ) -> Result<Option<Callback>, StoreError>;
    /// Store `closed` (a scheduled callback, now closed) if it is still scheduled and still its
    /// customer's pending callback; else `Conflict(StaleVersion)` and nothing changes.
    async fn close_callback(&self, closed: &Callback) -> Result<(), StoreError>;
    async fn callbacks(&self, query: &CallbackQuery) -> Result<Page<Callback>, StoreError>;
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
    client: SdkClient<Client>,
    contacts_table: String,
    config_table: String,
}

impl DynamoContactStore {
    pub fn new(
        client: impl Into<SdkClient<Client>>,
        contacts_table: impl Into<String>,
        config_table: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            contacts_table: contacts_table.into(),
            config_table: config_table.into(),
        }
    }

    /// One update item: `SET`, `ADD` and `REMOVE` clauses, under `change.condition` if any.
    fn update(table: &str, pk: String, sk: String, change: Change<'_>) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder().table_name(table).key("pk", s(pk)).key("sk", s(sk));
        let mut adds = Vec::new();
        for (i, (name, by)) in change.adds.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), AttributeValue::N(by.to_string()));
        }
        let mut sets = Vec::new();
        for (i, (name, value)) in change.sets.iter().enumerate() {
            sets.push(format!("#s{i} = :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), name)
                .expression_attribute_values(format!(":s{i}"), value.clone());
        }
        let mut removes = Vec::new();
        for (i, name) in change.removes.iter().enumerate() {
            removes.push(format!("#r{i}"));
            update = update.expression_attribute_names(format!("#r{i}"), *name);
        }
        let mut clauses = Vec::new();
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !adds.is_empty() {
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        if !removes.is_empty() {
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        update = match change.condition {
            None => update,
            Some(Condition::Absent(name)) => update
                .condition_expression("attribute_not_exists(#c)")
                .expression_attribute_names("#c", name),
            Some(Condition::Equals(name, value)) => update
                .condition_expression("#c = :c")
                .expression_attribute_names("#c", name)
                .expression_attribute_values(":c", value),
        };
        let update = update
            .update_expression(clauses.join(" "))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every item of a contact's transaction: 0 the contact, 1 its external-id guard, 2 its day
    /// attempt for the KPI reports, 3 and 4 the counters, 5 the customer's campaign state
    /// (conditioned on the pending callback read),
    /// then do-not-contact and the callbacks' changes.
    fn record_items(
        &self,
        contact: &Contact,
        callbacks: &CallbackChanges,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let table = &self.contacts_table;
        let mut item: Item = serde_dynamo::to_item(contact).map_err(corrupt("serializing contact"))?;
        let started = format!("{:020}#{}", contact.started_at.unix_timestamp_nanos(), contact.id);
        item.insert("pk".into(), s(format!("CONTACT#{}", contact.id)));
        item.insert("sk".into(), s("META"));
        item.insert(
            "gsi1pk".into(),
            s(format!("CUST#{}#{}", contact.client_id, contact.customer_key.as_str())),
        );
        item.insert("gsi1sk".into(), s(started));
        let mut ext = HashMap::new();
        ext.insert("pk".to_owned(), s(ext_pk(contact)));
        ext.insert("sk".to_owned(), s("META"));
        ext.insert("contact_id".to_owned(), s(contact.id.clone()));
        let day = contact.day();
        let increments = counter_increments(contact);
        let counters_pk = format!("COUNTERS#{}#{day}", contact.campaign_id);
        let customer_pk = format!("CUSTOMER#{}#{}", contact.client_id, contact.customer_key.as_str());
        let mut sets = vec![("last_disposition".to_owned(), s(contact.disposition.code.clone()))];
        let removes: &[&str] = match callbacks.pending_after() {
            PendingAfter::Set(pending) => {
                sets.push(("pending_callback".to_owned(), s(pending.id.clone())));
                sets.push((
                    "next_callback_at".to_owned(),
                    AttributeValue::N(pending.due_at.unix_timestamp().to_string()),
                ));
                &[]
            }
            PendingAfter::Cleared => &PENDING_ATTRIBUTES,
            PendingAfter::Unchanged => &[],
        };
        let day_attempt = [(day_attr(day), 1)];
        let mut items = vec![
            transact_put(table, item, Some("attribute_not_exists(pk)"))?,
            transact_put(table, ext, Some("attribute_not_exists(pk)"))?,
            // The KPI reports read a day's attempts as one partition (kpis.rs).
            transact_put(table, crate::kpis::attempt_item(contact, day)?, None)?,
            Self::update(
                table,
                counters_pk.clone(),
                "TOTAL".into(),
                Change {
                    adds: &increments,
                    ..Change::default()
                },
            )?,
            Self::update(
                table,
                counters_pk,
                format!("AGENT#{}", contact.agent_id),
                Change {
                    adds: &increments,
                    ..Change::default()
                },
            )?,
            Self::update(
                table,
                customer_pk.clone(),
                format!("CAMPAIGN#{}", contact.campaign_id),
                Change {
                    adds: &day_attempt,
                    sets,
                    removes,
                    condition: Some(pending_condition(callbacks.expected_pending.as_deref())),
                },
            )?,
        ];
        if contact.disposition.flags.do_not_contact {
            items.push(Self::update(
                table,
                customer_pk,
                "CLIENT".into(),
                Change {
                    sets: vec![("do_not_contact".to_owned(), s(contact.disposition.code.clone()))],
                    ..Change::default()
                },
            )?);
        }
        if let Some(new) = &callbacks.scheduled {
            items.extend(callback_puts(table, new, "attribute_not_exists(pk)")?);
        }
        if let Some(closed) = &callbacks.closed {
            items.extend(callback_close(table, closed)?);
        }
        Ok(items)
    }

    async fn get(
        &self,
        table: &str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        get_item(&self.client, table, pk, sk).await
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

/// The customer state's attributes that name the pending callback.
const PENDING_ATTRIBUTES: [&str; 2] = ["pending_callback", "next_callback_at"];

const CALLBACK_INDEX: &str = "callbacks";

/// What an update item changes, and under which condition.
#[derive(Default)]
struct Change<'a> {
    adds: &'a [(String, i64)],
    sets: Vec<(String, AttributeValue)>,
    removes: &'a [&'a str],
    condition: Option<Condition>,
}

enum Condition {
    Absent(&'static str),
    Equals(&'static str, AttributeValue),
}

/// The customer's pending callback is still the one read.
fn pending_condition(expected: Option<&str>) -> Condition {
    match expected {
        None => Condition::Absent("pending_callback"),
        Some(id) => Condition::Equals("pending_callback", s(id)),
    }
}

fn callback_pk(id: &str) -> String {
    format!("CALLBACK#{id}")
}

/// The record (`META`) or its campaign copy (`CAMPAIGN`), on the `callbacks` index while
/// scheduled.
fn callback_item(callback: &Callback, sk: &str) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(callback).map_err(corrupt("serializing callback"))?;
    item.insert("pk".into(), s(callback_pk(&callback.id)));
    item.insert("sk".into(), s(sk));
    item.insert("entity".into(), s("CALLBACK"));
    if callback.is_scheduled() {
        let list = if sk == "META" {
            CallbackList::Agent {
                client_id: callback.client_id.clone(),
                agent_id: callback.agent_id.clone(),
            }
        } else {
            CallbackList::Campaign {
                campaign_id: callback.campaign_id.clone(),
            }
        };
        item.insert("gsi2pk".into(), s(list.partition()));
        item.insert(
            "gsi2sk".into(),
            s(format!("{:020}#{}", nanos(callback.due_at), callback.id)),
        );
    }
    Ok(item)
}

/// A callback's items under `condition`: its record, and its campaign copy while scheduled.
fn callback_puts(table: &str, callback: &Callback, condition: &str) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut items = vec![transact_put(table, callback_item(callback, "META")?, Some(condition))?];
    if callback.is_scheduled() {
        items.push(transact_put(
            table,
            callback_item(callback, "CAMPAIGN")?,
            Some("attribute_not_exists(pk)"),
        )?);
    }
    Ok(items)
}

/// A scheduled callback leaves the index: its record rewritten (only if still scheduled), its
/// campaign copy deleted.
fn callback_close(table: &str, closed: &Callback) -> Result<Vec<TransactWriteItem>, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(callback_item(closed, "META")?))
        .condition_expression("#status = :scheduled")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":scheduled", s("SCHEDULED"))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let delete = Delete::builder()
        .table_name(table)
        .key("pk", s(callback_pk(&closed.id)))
        .key("sk", s("CAMPAIGN"))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(vec![
        TransactWriteItem::builder().put(put).build(),
        TransactWriteItem::builder().delete(delete).build(),
    ])
}

/// The upper bound of a due-time range on the index (inclusive).
fn due_bound(due_before: OffsetDateTime) -> String {
    format!("{:020}#~", nanos(due_before))
}

/// Ids of callbacks are contact ids; anything much longer cannot be one (and would be an
/// invalid key).
const MAX_ID_LEN: usize = 200;

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

    async fn record(&self, contact: &Contact, callbacks: &CallbackChanges) -> Result<Recorded, StoreError> {
        let items = self.record_items(contact, callbacks)?;
        // Concurrent contacts of one campaign update the same counter items: DynamoDB cancels
        // all but one of such transactions (TransactionConflict). Retry those with backoff; a
        // failed condition on the external id means this interaction was already recorded, any
        // other failed condition that the customer's callbacks changed since they were read.
        // Items: 0 the contact, 1 its external-id guard, then counters, customer state and
        // callbacks.
        match transact_retrying(&self.client, &items, 5).await {
            Ok(()) => Ok(Recorded::Created),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => {
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
                Ok(Recorded::Duplicate(Box::new(
                    serde_dynamo::from_item(existing).map_err(corrupt("reading contact"))?,
                )))
            }
            Err(TransactFailure::Cancelled(c)) if c.any_condition_failed() => {
                Err(StoreError::Conflict(ConflictKind::StaleVersion))
            }
            Err(TransactFailure::Cancelled(c)) if c.conflicted() => Err(StoreError::Unavailable(
                "too many concurrent updates of the same counters; retry".into(),
            )),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn history(
        &self,
        client_id: &str,
        customer_key: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Contact>, StoreError> {
        let pk = format!("CUST#{client_id}#{customer_key}");
        let start = cursor
            .map(|raw| decode_cursor(raw, "gsi1pk", &pk, "gsi1sk", None))
            .transpose()?;
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
        let next_cursor = output.last_evaluated_key.as_ref().and_then(encode_cursor);
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

    async fn counters(&self, campaign_id: &str, day: time::Date) -> Result<Vec<CounterRow>, StoreError> {
        counter_rows(
            &self.client,
            &self.contacts_table,
            &format!("COUNTERS#{campaign_id}#{day}"),
        )
        .await
    }
}

#[async_trait]
impl CallbackStore for DynamoContactStore {
    async fn callback(&self, id: &str) -> Result<Option<Callback>, StoreError> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Ok(None);
        }
        self.get(&self.contacts_table, &callback_pk(id), "META")
            .await?
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading callback")))
            .transpose()
    }

    async fn pending_callback(
        &self,
        client_id: &str,
        customer_key: &str,
        campaign_id: &str,
    ) -> Result<Option<Callback>, StoreError> {
        let state = self
            .get(
                &self.contacts_table,
                &format!("CUSTOMER#{client_id}#{customer_key}"),
                &format!("CAMPAIGN#{campaign_id}"),
            )
            .await?;
        let Some(id) = state
            .as_ref()
            .and_then(|i| crate::dynamo::string_attr(i, "pending_callback"))
        else {
            return Ok(None);
        };
        match self.callback(&id).await? {
            Some(callback) => Ok(Some(callback)),
            None => Err(StoreError::Corrupt(format!(
                "the pending callback {id} of a customer has no record"
            ))),
        }
    }

    async fn close_callback(&self, closed: &Callback) -> Result<(), StoreError> {
        let mut items = callback_close(&self.contacts_table, closed)?;
        items.push(Self::update(
            &self.contacts_table,
            format!("CUSTOMER#{}#{}", closed.client_id, closed.customer_key.as_str()),
            format!("CAMPAIGN#{}", closed.campaign_id),
            Change {
                removes: &PENDING_ATTRIBUTES,
                condition: Some(pending_condition(Some(&closed.id))),
                ..Change::default()
            },
        )?);
        match transact_retrying(&self.client, &items, 4).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(c)) if c.any_condition_failed() => {
                Err(StoreError::Conflict(ConflictKind::StaleVersion))
            }
            Err(TransactFailure::Cancelled(c)) if c.conflicted() => Err(StoreError::Unavailable(
                "the customer's callbacks are changing concurrently; retry".into(),
            )),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn callbacks(&self, query: &CallbackQuery) -> Result<Page<Callback>, StoreError> {
        let pk = query.list.partition();
        let bound = query.due_before.map(due_bound);
        let start = query
            .cursor
            .as_deref()
            .map(|raw| decode_cursor(raw, "gsi2pk", &pk, "gsi2sk", bound.as_deref()))
            .transpose()?;
        let limit = usize::try_from(query.limit.clamp(1, 100)).unwrap_or(25);
        // One more than asked: whether there is a next page is known without an empty last one.
        let mut request = self
            .client
            .query()
            .table_name(&self.contacts_table)
            .index_name(CALLBACK_INDEX)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(true)
            .limit(page_size(query.limit) + 1)
            .set_exclusive_start_key(start);
        request = match bound {
            Some(bound) => request
                .key_condition_expression("gsi2pk = :pk AND gsi2sk <= :due")
                .expression_attribute_values(":due", s(bound)),
            None => request.key_condition_expression("gsi2pk = :pk"),
        };
        let output = request.send().await.map_err(sdk_error)?;
        let mut items = output.items.unwrap_or_default();
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().and_then(encode_cursor)
        } else {
            output.last_evaluated_key.as_ref().and_then(encode_cursor)
        };
        let items = items
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(corrupt("reading callback")))
            .collect::<Result<Vec<Callback>, _>>()?;
        Ok(Page { items, next_cursor })
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
        callbacks: BTreeMap<String, Callback>,
        /// The pending callback's id by (`{client}#{customer key}`, campaign).
        pending: HashMap<(String, String), String>,
    }

    impl MemoryState {
        /// The same conditions as the DynamoDB transactions: the customer's pending callback is
        /// still `expected`, the one to close is still scheduled, the new one is new.
        fn check_callbacks(&self, pending_key: &(String, String), changes: &CallbackChanges) -> Result<(), StoreError> {
            let stale = Err(StoreError::Conflict(ConflictKind::StaleVersion));
            if self.pending.get(pending_key) != changes.expected_pending.as_ref() {
                return stale;
            }
            if let Some(closed) = &changes.closed
                && !self.callbacks.get(&closed.id).is_some_and(Callback::is_scheduled)
            {
                return stale;
            }
            if changes
                .scheduled
                .as_ref()
                .is_some_and(|new| self.callbacks.contains_key(&new.id))
            {
                return stale;
            }
            Ok(())
        }
    }

    fn pending_key(client_id: &str, customer_key: &str, campaign_id: &str) -> (String, String) {
        (format!("{client_id}#{customer_key}"), campaign_id.to_owned())
    }

    fn sort_key(callback: &Callback) -> String {
        format!("{:020}#{}", nanos(callback.due_at), callback.id)
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

        async fn record(&self, contact: &Contact, callbacks: &CallbackChanges) -> Result<Recorded, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            if let Some(existing) = state
                .external
                .get(&ext_pk(contact))
                .and_then(|id| state.contacts.get(id))
            {
                return Ok(Recorded::Duplicate(Box::new(existing.clone())));
            }
            let pending = pending_key(&contact.client_id, contact.customer_key.as_str(), &contact.campaign_id);
            state.check_callbacks(&pending, callbacks)?;
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
                state.dnc.insert(key, contact.disposition.code.clone());
            }
            match callbacks.pending_after() {
                PendingAfter::Set(new) => {
                    state.pending.insert(pending.clone(), new.id.clone());
                }
                PendingAfter::Cleared => {
                    state.pending.remove(&pending);
                }
                PendingAfter::Unchanged => {}
            }
            for callback in callbacks.scheduled.iter().chain(&callbacks.closed) {
                state.callbacks.insert(callback.id.clone(), callback.clone());
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
                next_callback: state
                    .pending
                    .get(&(key, campaign_id.to_owned()))
                    .and_then(|id| state.callbacks.get(id))
                    .map(|c| c.due_at),
            })
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

    #[async_trait]
    impl CallbackStore for MemoryContactStore {
        async fn callback(&self, id: &str) -> Result<Option<Callback>, StoreError> {
            Ok(self.state.lock().map_err(poisoned)?.callbacks.get(id).cloned())
        }

        async fn pending_callback(
            &self,
            client_id: &str,
            customer_key: &str,
            campaign_id: &str,
        ) -> Result<Option<Callback>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            match state.pending.get(&pending_key(client_id, customer_key, campaign_id)) {
                None => Ok(None),
                Some(id) => state
                    .callbacks
                    .get(id)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt(format!("the pending callback {id} has no record"))),
            }
        }

        async fn close_callback(&self, closed: &Callback) -> Result<(), StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            let pending = pending_key(&closed.client_id, closed.customer_key.as_str(), &closed.campaign_id);
            let still_scheduled = state.callbacks.get(&closed.id).is_some_and(Callback::is_scheduled);
            if !still_scheduled || state.pending.get(&pending) != Some(&closed.id) {
                return Err(StoreError::Conflict(ConflictKind::StaleVersion));
            }
            state.pending.remove(&pending);
            state.callbacks.insert(closed.id.clone(), closed.clone());
            Ok(())
        }

        async fn callbacks(&self, query: &CallbackQuery) -> Result<Page<Callback>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let bound = query.due_before.map(due_bound);
            // The cursor is the last item's sort key, as DynamoDB's is its key.
            let after = match &query.cursor {
                None => None,
                Some(raw) => {
                    let well_formed = raw.len() > 21
                        && raw.as_bytes()[20] == b'#'
                        && raw[..20].bytes().all(|b| b.is_ascii_digit())
                        && bound.as_ref().is_none_or(|b| raw.as_str() <= b.as_str());
                    if !well_formed {
                        return Err(StoreError::InvalidCursor);
                    }
                    Some(raw.clone())
                }
            };
            let mut matching: Vec<(String, &Callback)> = state
                .callbacks
                .values()
                .filter(|c| c.is_scheduled())
                .filter(|c| match &query.list {
                    CallbackList::Agent { client_id, agent_id } => &c.client_id == client_id && &c.agent_id == agent_id,
                    CallbackList::Campaign { campaign_id } => &c.campaign_id == campaign_id,
                })
                .map(|c| (sort_key(c), c))
                .filter(|(key, _)| bound.as_ref().is_none_or(|b| key <= b))
                .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
                .collect();
            matching.sort_by(|a, b| a.0.cmp(&b.0));
            let limit = usize::try_from(query.limit.clamp(1, 100)).unwrap_or(25);
            let next_cursor = (matching.len() > limit).then(|| matching[limit - 1].0.clone());
            Ok(Page {
                items: matching.into_iter().take(limit).map(|(_, c)| c.clone()).collect(),
                next_cursor,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use backoffice_domain::tipification::callback::{self, CallbackStatus, Cancel};
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 16:00 UTC);

    fn contact(id: &str, started: &str, callback_at: Option<&str>) -> Contact {
        let mut value = serde_json::json!({
            "id": id, "client_id": "acme", "campaign_id": "c1", "agent_id": "agent-7", "channel": "call",
            "direction": "outbound", "external_id": format!("ext-{id}"), "customer_key": "phone:+51987654321",
            "disposition": {"code": "NO_ANSWER", "path": "No contacto › No contesta", "family": "NO_CONTACT",
                            "flags": {"sale": false, "callback": false, "final": false, "do_not_contact": false}},
            "catalog_version": 0, "started_at": started, "ended_at": "2026-11-23T15:59:00Z",
            "recorded_at": "2026-11-23T16:00:00Z"
        });
        if let Some(at) = callback_at {
            value["callback_at"] = serde_json::json!(at);
            value["disposition"]["code"] = serde_json::json!("CALL_BACK");
            value["disposition"]["flags"]["callback"] = serde_json::json!(true);
        }
        serde_json::from_value(value).expect("a contact")
    }

    #[tokio::test]
    async fn the_twin_refuses_a_contact_whose_pending_callback_changed_since_it_was_read() {
        let store = MemoryContactStore::default();
        let first = contact("k1", "2026-11-23T15:00:00Z", Some("2026-11-24T15:00:00Z"));
        store
            .record(&first, &callback::on_contact(None, &first, NOW))
            .await
            .expect("recorded");
        // Computed as if nothing were pending: stale.
        let second = contact("k2", "2026-11-23T15:10:00Z", None);
        assert_eq!(
            store.record(&second, &callback::on_contact(None, &second, NOW)).await,
            Err(StoreError::Conflict(ConflictKind::StaleVersion))
        );
        let history = store
            .history("acme", "phone:+51987654321", 10, None)
            .await
            .expect("history");
        assert_eq!(history.items.len(), 1, "nothing of the refused contact was written");
        let pending = store
            .pending_callback("acme", "phone:+51987654321", "c1")
            .await
            .expect("read");
        assert_eq!(pending.as_ref().map(|p| p.id.as_str()), Some("k1"));
        store
            .record(&second, &callback::on_contact(pending.as_ref(), &second, NOW))
            .await
            .expect("recorded");
        assert_eq!(
            store.callback("k1").await.expect("read").map(|c| c.status),
            Some(CallbackStatus::Done)
        );
    }

    #[tokio::test]
    async fn the_twin_closes_a_callback_only_while_it_is_scheduled_and_pending() {
        let store = MemoryContactStore::default();
        let first = contact("k1", "2026-11-23T15:00:00Z", Some("2026-11-24T15:00:00Z"));
        store
            .record(&first, &callback::on_contact(None, &first, NOW))
            .await
            .expect("recorded");
        let scheduled = store.callback("k1").await.expect("read").expect("a callback");
        let Ok(Cancel::Cancelled(cancelled)) = scheduled.cancel("sup-1", "ya no", NOW) else {
            panic!("cancellable");
        };
        store.close_callback(&cancelled).await.expect("closed");
        assert_eq!(
            store.close_callback(&cancelled).await,
            Err(StoreError::Conflict(ConflictKind::StaleVersion))
        );
        let state = store
            .customer_state("acme", "phone:+51987654321", "c1", NOW.date())
            .await
            .expect("state");
        assert_eq!(state.next_callback, None);
        let page = store
            .callbacks(&CallbackQuery {
                list: CallbackList::Campaign {
                    campaign_id: "c1".into(),
                },
                due_before: None,
                limit: 10,
                cursor: None,
            })
            .await
            .expect("list");
        assert_eq!(page.items, vec![]);
    }

    #[test]
    fn cursors_are_refused_outside_their_partition_and_range() {
        let mut key = Item::new();
        for (name, value) in [
            ("pk", "CALLBACK#k1"),
            ("sk", "META"),
            ("gsi2pk", "CB#AGENT#acme#agent-7"),
            ("gsi2sk", "01795000000000000000#k1"),
        ] {
            key.insert(name.into(), s(value));
        }
        key.insert("due_at".into(), s("not a key"));
        let cursor = encode_cursor(&key).expect("a cursor");
        let decode = |pk: &str, max: Option<&str>| decode_cursor(&cursor, "gsi2pk", pk, "gsi2sk", max);
        let decoded = decode("CB#AGENT#acme#agent-7", Some("01795000000000000000#~")).expect("valid");
        assert_eq!(decoded.len(), 4, "only the keys travel");
        assert_eq!(decoded.get("gsi2sk"), key.get("gsi2sk"));
        for refused in [
            decode("CB#AGENT#acme#agent-8", None),
            decode("CB#AGENT#acme#agent-7", Some("01794999999999999999#~")),
            decode_cursor(&cursor, "gsi1pk", "CB#AGENT#acme#agent-7", "gsi1sk", None),
            decode_cursor("not base64!", "gsi2pk", "CB#AGENT#acme#agent-7", "gsi2sk", None),
            decode_cursor("e30", "gsi2pk", "CB#AGENT#acme#agent-7", "gsi2sk", None),
        ] {
            assert_eq!(refused, Err(StoreError::InvalidCursor));
        }
    }
}
