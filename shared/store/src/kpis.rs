//! KPI reports: what a campaign-local day's report is computed from, and its stored rows.
//!
//! ContactsTable (the rows are small and per campaign; the attempts are written with the
//! contact):
//!
//! | item          | pk                              | sk                                  |
//! |---------------|---------------------------------|-------------------------------------|
//! | day attempt   | `ATTEMPTS#{campaign}#{day}`     | `{contact id}`                      |
//! | day total row | `KPI#{campaign}`                | `{day}#0` (+ the day's `source`)    |
//! | agent row     | `KPI#{campaign}`                | `{day}#1#{agent}#{channel}`         |
//!
//! A day attempt is the contact as the KPIs read it (without its notes), put in the contact's own
//! transaction (`contacts::DynamoContactStore::record`): a day's attempts are one partition,
//! read whole without scanning the table or an index, and a duplicated delivery, refused by the
//! contact's external-id guard, never adds one.
//!
//! The day total row carries the `source` it was computed from: the day's attempt count (the
//! contacts counters' `TOTAL.attempts`, which grows by one per recorded contact) and, per
//! decision day, the verification decisions taken on the day's pre-sales (the review metrics'
//! `METRICS#{campaign}#{decision day}` / `REVIEW` item counts them as `sold_{yyyymmdd}`). A day
//! whose counts no longer match its source changed since it was computed: a late contact or a
//! verification re-opens it. Pre-sales come from PresalesTable's `by-campaign` index (by
//! registration time), read whole with `BatchGetItem`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use time::{Date, OffsetDateTime};

use backoffice_domain::kpi::{KpiRow, Sale};
use backoffice_domain::presale::Presale;
use backoffice_domain::tipification::Contact;

use crate::StoreError;
use crate::dynamo::{Item, batch_get, batch_write, corrupt, nanos, query_all, s, string_attr};
use crate::sdk::SdkClient;

/// What a day's rows were computed from; compared with what the store holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySource {
    /// Contacts recorded for the day (the counters' attempts).
    pub attempts: u64,
    /// Per decision day, verification decisions taken on the day's pre-sales.
    pub decisions: BTreeMap<Date, u64>,
}

/// What a campaign-day's report is computed from.
#[async_trait]
pub trait KpiInputs: Send + Sync {
    /// Every contact recorded for the campaign's local `day`, handed to `each` a page at a time:
    /// a day can hold 200,000, which are never all in memory at once. How many there were.
    async fn each_attempt(
        &self,
        campaign_id: &str,
        day: Date,
        each: &mut (dyn FnMut(Contact) + Send),
    ) -> Result<u64, StoreError>;
    /// Every contact recorded for the campaign's local `day`, in one list.
    async fn attempts(&self, campaign_id: &str, day: Date) -> Result<Vec<Contact>, StoreError> {
        let mut all = Vec::new();
        self.each_attempt(campaign_id, day, &mut |contact| all.push(contact))
            .await?;
        Ok(all)
    }
    /// The campaign's pre-sales registered in `[from, to)`, as the KPIs see them.
    async fn sales(&self, campaign_id: &str, from: OffsetDateTime, to: OffsetDateTime)
    -> Result<Vec<Sale>, StoreError>;
    /// The counters' attempt count of each of `days` (absent: nothing recorded).
    async fn attempt_counts(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, u64>, StoreError>;
    /// For each of `decision_days`: the sale days whose pre-sales were decided then, and how many.
    async fn decisions(
        &self,
        campaign_id: &str,
        decision_days: &[Date],
    ) -> Result<BTreeMap<Date, BTreeMap<Date, u64>>, StoreError>;
}

/// The stored report rows.
#[async_trait]
pub trait KpiReports: Send + Sync {
    /// Replace the day's rows with `rows` (rows of the day that are no longer computed are
    /// deleted); the day's total, with `source`, is written last, so an interrupted replacement
    /// still reads as changed and is done again.
    async fn replace_day(
        &self,
        campaign_id: &str,
        day: Date,
        rows: &[KpiRow],
        source: &DaySource,
        computed_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The stored rows of `from..=to`, day by day, the total first.
    async fn rows(&self, campaign_id: &str, from: Date, to: Date) -> Result<Vec<KpiRow>, StoreError>;
    /// The source each of `days` was last computed from (absent: never computed).
    async fn sources(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, DaySource>, StoreError>;
}

/// `yyyymmdd`: the compact day in attribute names (`sold_20261130`).
pub fn compact_day(day: Date) -> String {
    format!("{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

/// `YYYY-MM-DD`, as days are written in keys.
fn iso_day(raw: &str) -> Option<Date> {
    Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn parse_compact_day(raw: &str) -> Option<Date> {
    let year = raw.get(0..4)?.parse().ok()?;
    let month = time::Month::try_from(raw.get(4..6)?.parse::<u8>().ok()?).ok()?;
    let day = raw.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// The name of the review metrics' counter of decisions on pre-sales sold on `sale_day`.
pub fn decisions_counter(sale_day: Date) -> String {
    format!("sold_{}", compact_day(sale_day))
}

pub fn attempts_pk(campaign_id: &str, day: Date) -> String {
    format!("ATTEMPTS#{campaign_id}#{day}")
}

fn rows_pk(campaign_id: &str) -> String {
    format!("KPI#{campaign_id}")
}

fn row_sk(row: &KpiRow) -> String {
    match (&row.agent_id, row.channel) {
        (Some(agent), Some(channel)) => format!("{}#1#{agent}#{}", row.day, channel.as_str()),
        _ => format!("{}#0", row.day),
    }
}

/// A contact as its day attempt item: the contact's attributes without its notes (free text the
/// KPIs never read), under the day's partition.
pub(crate) fn attempt_item(contact: &Contact, day: Date) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(contact).map_err(corrupt("serializing contact"))?;
    item.remove("notes");
    item.insert("pk".into(), s(attempts_pk(&contact.campaign_id, day)));
    item.insert("sk".into(), s(contact.id.clone()));
    Ok(item)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn source_item(source: &DaySource) -> Item {
    let decisions = source
        .decisions
        .iter()
        .map(|(day, n)| (compact_day(*day), AttributeValue::N(n.to_string())))
        .collect();
    HashMap::from([
        ("attempts".to_owned(), AttributeValue::N(source.attempts.to_string())),
        ("decisions".to_owned(), AttributeValue::M(decisions)),
    ])
}

fn read_source(item: &Item) -> Option<DaySource> {
    let source = item.get("source")?.as_m().ok()?;
    let decisions = source
        .get("decisions")
        .and_then(|d| d.as_m().ok())
        .map(|map| {
            map.iter()
                .filter_map(|(day, n)| Some((parse_compact_day(day)?, n.as_n().ok()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default();
    Some(DaySource {
        attempts: number(source, "attempts").unwrap_or(0),
        decisions,
    })
}

#[derive(Clone, Debug)]
pub struct DynamoKpiStore {
    client: SdkClient<Client>,
    contacts_table: String,
    presales_table: String,
}

impl DynamoKpiStore {
    pub fn new(
        client: impl Into<SdkClient<Client>>,
        contacts_table: impl Into<String>,
        presales_table: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            contacts_table: contacts_table.into(),
            presales_table: presales_table.into(),
        }
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }
}

#[async_trait]
impl KpiInputs for DynamoKpiStore {
    async fn each_attempt(
        &self,
        campaign_id: &str,
        day: Date,
        each: &mut (dyn FnMut(Contact) + Send),
    ) -> Result<u64, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.contacts_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(attempts_pk(campaign_id, day)));
        let (mut start, mut count) = (None, 0);
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(crate::dynamo::sdk_error)?;
            // One 1 MB page at a time: its items are dropped once read.
            for item in output.items.unwrap_or_default() {
                each(serde_dynamo::from_item(item).map_err(corrupt("reading a day attempt"))?);
                count += 1;
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    async fn sales(
        &self,
        campaign_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Sale>, StoreError> {
        // The index carries keys (and the agent): the pre-sales themselves are read by key.
        let keys = query_all(
            self.client
                .query()
                .table_name(&self.presales_table)
                .index_name("by-campaign")
                .key_condition_expression("gsi1pk = :pk AND gsi2sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(format!("CAMPAIGN#{campaign_id}")))
                .expression_attribute_values(":from", s(format!("{:020}#", nanos(from))))
                .expression_attribute_values(":to", s(format!("{:020}#", nanos(to)))),
        )
        .await?;
        let keys = keys
            .iter()
            .filter_map(|item| Some(Self::key(string_attr(item, "pk")?, &string_attr(item, "sk")?)))
            .collect();
        batch_get(&self.client, &self.presales_table, keys, None)
            .await?
            .into_iter()
            .map(|item| {
                let presale: Presale = serde_dynamo::from_item(item).map_err(corrupt("reading pre-sale"))?;
                Ok(Sale::from_presale(&presale))
            })
            .collect()
    }

    async fn attempt_counts(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, u64>, StoreError> {
        let keys = days
            .iter()
            .map(|day| Self::key(format!("COUNTERS#{campaign_id}#{day}"), "TOTAL"))
            .collect();
        let items = batch_get(&self.client, &self.contacts_table, keys, Some("pk, attempts")).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let day = iso_day(string_attr(item, "pk")?.rsplit('#').next()?)?;
                Some((day, number(item, "attempts")?))
            })
            .collect())
    }

    async fn decisions(
        &self,
        campaign_id: &str,
        decision_days: &[Date],
    ) -> Result<BTreeMap<Date, BTreeMap<Date, u64>>, StoreError> {
        let keys = decision_days
            .iter()
            .map(|day| Self::key(format!("METRICS#{campaign_id}#{day}"), "REVIEW"))
            .collect();
        let items = batch_get(&self.client, &self.presales_table, keys, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let day = iso_day(string_attr(item, "pk")?.rsplit('#').next()?)?;
                let sold = item
                    .iter()
                    .filter_map(|(name, value)| {
                        let sale_day = parse_compact_day(name.strip_prefix("sold_")?)?;
                        Some((sale_day, value.as_n().ok()?.parse().ok()?))
                    })
                    .collect();
                Some((day, sold))
            })
            .collect())
    }
}

#[async_trait]
impl KpiReports for DynamoKpiStore {
    async fn replace_day(
        &self,
        campaign_id: &str,
        day: Date,
        rows: &[KpiRow],
        source: &DaySource,
        computed_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let pk = rows_pk(campaign_id);
        let stored = query_all(
            self.client
                .query()
                .table_name(&self.contacts_table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :day)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":day", s(format!("{day}#")))
                .projection_expression("sk"),
        )
        .await?;
        let mut total = None;
        let mut writes = Vec::new();
        let mut keep = std::collections::BTreeSet::new();
        for row in rows.iter().filter(|row| row.day == day) {
            let sk = row_sk(row);
            let mut item: Item = serde_dynamo::to_item(row).map_err(corrupt("serializing a KPI row"))?;
            item.insert("pk".into(), s(pk.clone()));
            item.insert("sk".into(), s(sk.clone()));
            item.insert("computed_at".into(), s(rfc3339(computed_at)?));
            keep.insert(sk);
            if row.agent_id.is_none() {
                item.insert("source".into(), AttributeValue::M(source_item(source)));
                total = Some(item);
            } else {
                writes.push(put(item)?);
            }
        }
        for sk in stored.iter().filter_map(|item| string_attr(item, "sk")) {
            if !keep.contains(&sk) && !sk.ends_with("#0") {
                writes.push(delete(Self::key(pk.clone(), &sk))?);
            }
        }
        batch_write(&self.client, &self.contacts_table, writes).await?;
        // A day with no data at all still records what it was computed from.
        let total = match total {
            Some(total) => total,
            None => {
                let mut item = Self::key(pk, &format!("{day}#0"));
                item.insert("empty".into(), AttributeValue::Bool(true));
                item.insert("computed_at".into(), s(rfc3339(computed_at)?));
                item.insert("source".into(), AttributeValue::M(source_item(source)));
                item
            }
        };
        batch_write(&self.client, &self.contacts_table, vec![put(total)?]).await
    }

    async fn rows(&self, campaign_id: &str, from: Date, to: Date) -> Result<Vec<KpiRow>, StoreError> {
        let items = query_all(
            self.client
                .query()
                .table_name(&self.contacts_table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(rows_pk(campaign_id)))
                .expression_attribute_values(":from", s(format!("{from}#")))
                .expression_attribute_values(":to", s(format!("{to}#~"))),
        )
        .await?;
        items
            .into_iter()
            .filter(|item| !item.contains_key("empty"))
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading a KPI row")))
            .collect()
    }

    async fn sources(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, DaySource>, StoreError> {
        let keys = days
            .iter()
            .map(|day| Self::key(rows_pk(campaign_id), &format!("{day}#0")))
            .collect();
        let items = batch_get(&self.client, &self.contacts_table, keys, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let day = iso_day(string_attr(item, "sk")?.strip_suffix("#0")?)?;
                Some((day, read_source(item)?))
            })
            .collect())
    }
}

fn rfc3339(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Backend(format!("formatting {at}: {e}")))
}

fn put(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete(key: Item) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryKpiStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct State {
        attempts: BTreeMap<(String, Date), Vec<Contact>>,
        sales: BTreeMap<String, Vec<(OffsetDateTime, Sale)>>,
        decisions: BTreeMap<(String, Date), BTreeMap<Date, u64>>,
        rows: BTreeMap<(String, Date), (Vec<KpiRow>, DaySource)>,
    }

    /// The KPI inputs and rows in memory: contacts and pre-sales are added by the test.
    #[derive(Default)]
    pub struct MemoryKpiStore {
        state: Mutex<State>,
    }

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    impl MemoryKpiStore {
        /// Record a contact as the contacts store does (a contact id once).
        pub fn add_contact(&self, contact: Contact) -> Result<(), StoreError> {
            let day = contact
                .local_day
                .ok_or_else(|| StoreError::Backend("contact without local_day".into()))?;
            let mut state = self.state.lock().map_err(poisoned)?;
            let list = state.attempts.entry((contact.campaign_id.clone(), day)).or_default();
            if !list.iter().any(|c| c.id == contact.id) {
                list.push(contact);
            }
            Ok(())
        }

        /// A pre-sale registered at `registered`.
        pub fn add_sale(&self, sale: Sale, registered: OffsetDateTime) -> Result<(), StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            let list = state.sales.entry(sale.campaign_id.clone()).or_default();
            list.retain(|(_, s)| s.presale_id != sale.presale_id);
            list.push((registered, sale));
            Ok(())
        }

        /// A verification decision taken on `decision_day` on a pre-sale sold on `sale_day`.
        pub fn add_decision(&self, campaign_id: &str, decision_day: Date, sale_day: Date) -> Result<(), StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            *state
                .decisions
                .entry((campaign_id.to_owned(), decision_day))
                .or_default()
                .entry(sale_day)
                .or_default() += 1;
            Ok(())
        }
    }

    #[async_trait]
    impl KpiInputs for MemoryKpiStore {
        async fn each_attempt(
            &self,
            campaign_id: &str,
            day: Date,
            each: &mut (dyn FnMut(Contact) + Send),
        ) -> Result<u64, StoreError> {
            let contacts = {
                let state = self.state.lock().map_err(poisoned)?;
                state
                    .attempts
                    .get(&(campaign_id.to_owned(), day))
                    .cloned()
                    .unwrap_or_default()
            };
            let count = contacts.len() as u64;
            contacts.into_iter().for_each(each);
            Ok(count)
        }

        async fn sales(
            &self,
            campaign_id: &str,
            from: OffsetDateTime,
            to: OffsetDateTime,
        ) -> Result<Vec<Sale>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(state
                .sales
                .get(campaign_id)
                .into_iter()
                .flatten()
                .filter(|(at, _)| *at >= from && *at < to)
                .map(|(_, sale)| sale.clone())
                .collect())
        }

        async fn attempt_counts(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, u64>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(days
                .iter()
                .filter_map(|day| {
                    let n = state.attempts.get(&(campaign_id.to_owned(), *day))?.len();
                    Some((*day, n as u64))
                })
                .collect())
        }

        async fn decisions(
            &self,
            campaign_id: &str,
            decision_days: &[Date],
        ) -> Result<BTreeMap<Date, BTreeMap<Date, u64>>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(decision_days
                .iter()
                .filter_map(|day| Some((*day, state.decisions.get(&(campaign_id.to_owned(), *day))?.clone())))
                .collect())
        }
    }

    #[async_trait]
    impl KpiReports for MemoryKpiStore {
        async fn replace_day(
            &self,
            campaign_id: &str,
            day: Date,
            rows: &[KpiRow],
            source: &DaySource,
            _computed_at: OffsetDateTime,
        ) -> Result<(), StoreError> {
            let rows = rows.iter().filter(|row| row.day == day).cloned().collect();
            let mut state = self.state.lock().map_err(poisoned)?;
            state.rows.insert((campaign_id.to_owned(), day), (rows, source.clone()));
            Ok(())
        }

        async fn rows(&self, campaign_id: &str, from: Date, to: Date) -> Result<Vec<KpiRow>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(state
                .rows
                .range((campaign_id.to_owned(), from)..=(campaign_id.to_owned(), to))
                .flat_map(|(_, (rows, _))| rows.iter().cloned())
                .collect())
        }

        async fn sources(&self, campaign_id: &str, days: &[Date]) -> Result<BTreeMap<Date, DaySource>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(days
                .iter()
                .filter_map(|day| Some((*day, state.rows.get(&(campaign_id.to_owned(), *day))?.1.clone())))
                .collect())
        }
    }
}

/// Seed a day's attempts for benchmarks: each contact's day attempt item exactly as the contact's
/// transaction puts it ([`attempt_item`]), with `BatchWriteItem`, then the number seeded added to
/// each campaign-day's counters (`COUNTERS#{campaign}#{day}` / `TOTAL`, `attempts`: what the
/// report job compares), so seeding in chunks sums up. Nothing else of a contact is written.
#[cfg(any(test, feature = "testing"))]
pub async fn seed_attempts(client: &Client, contacts_table: &str, contacts: &[Contact]) -> Result<(), StoreError> {
    let mut seeded: BTreeMap<(&str, Date), u64> = BTreeMap::new();
    let mut writes = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let day = contact.day();
        writes.push(put(attempt_item(contact, day)?)?);
        *seeded.entry((contact.campaign_id.as_str(), day)).or_default() += 1;
    }
    batch_write(client, contacts_table, writes).await?;
    for ((campaign_id, day), n) in seeded {
        client
            .update_item()
            .table_name(contacts_table)
            .set_key(Some(DynamoKpiStore::key(
                format!("COUNTERS#{campaign_id}#{day}"),
                "TOTAL",
            )))
            .update_expression("ADD attempts :n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .map_err(crate::dynamo::sdk_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn compact_days_read_back_and_name_the_decision_counter() {
        let day = date!(2026 - 11 - 30);
        assert_eq!(decisions_counter(day), "sold_20261130");
        assert_eq!(parse_compact_day(&compact_day(day)), Some(day));
        assert_eq!(parse_compact_day("2026113"), None);
        assert_eq!(parse_compact_day("20261131"), None);
    }

    #[test]
    fn a_source_survives_its_item() {
        let source = DaySource {
            attempts: 7,
            decisions: BTreeMap::from([(date!(2026 - 11 - 30), 2), (date!(2026 - 12 - 01), 1)]),
        };
        let item = HashMap::from([("source".to_owned(), AttributeValue::M(source_item(&source)))]);
        assert_eq!(read_source(&item), Some(source));
    }
}
