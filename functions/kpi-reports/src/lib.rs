//! kpi-reports: the numbers a call center is run on, per campaign-local day (ADR 0025, 0026).
//!
//! - **The tick** (hourly): for every campaign, the ended local days of the last
//!   `Settings::window_days` whose inputs no longer match what their report was computed from
//!   (a day just ended, late contacts, verifications of its pre-sales) are asked for on the
//!   reports queue, one message per campaign-day.
//! - **A campaign-day** (the reports queue): its contacts and pre-sales folded by
//!   `backoffice_domain::kpi::fold`; the day's Parquet file written to the data lake
//!   (`reports/kpis/client=…/campaign=…/dt=…/kpis.parquet`, the Glue table's partition), then
//!   its rows replaced in DynamoDB. Unchanged since the last computation: nothing is done,
//!   unless the request is a rebuild.
//! - `GET /reports/kpis?campaign=&from=&to=&group_by=day|agent|channel` (supervisors, admins of
//!   the campaign's client): the stored rows regrouped by `kpi::rollup`, as JSON or, with
//!   `Accept: text/csv`, as CSV for Excel.
//! - `POST /reports/kpis/rebuild?campaign=&from=&to=` (admins): every day of the range asked for
//!   again, forced; 202.

pub mod exports;
pub mod parquet;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::events::{KpiDayRequested, OutboxMessage};
use backoffice_domain::kpi::{self, CampaignKpis, GroupBy, KpiRow};
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::{Clock, wire};
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond};
use backoffice_edge::relay::Publisher;
use backoffice_edge::{queue, schedule};
use backoffice_store::StoreError;
use backoffice_store::config::{CampaignDirectory, CampaignList};
use backoffice_store::kpis::{DaySource, KpiInputs, KpiReports};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Date, Duration};

use crate::exports::KpiExports;

pub const ROUTES: &[&str] = &["GET /reports/kpis", "POST /reports/kpis/rebuild"];

/// The longest range one `GET` reads (a year of days).
const MAX_READ_DAYS: i64 = 366;
/// The longest range one rebuild asks for.
const MAX_REBUILD_DAYS: i64 = 92;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How far back the tick looks for days that changed (late contacts, verifications).
    /// Older changes need a rebuild.
    pub window_days: u32,
    /// How long after its call a pre-sale may be registered and still count on the call's day.
    pub registration_lag: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_days: 35,
            registration_lag: Duration::days(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the message is not a KpiDayRequested: {0}")]
    Unreadable(String),
    #[error("campaign {0} has no configuration")]
    NotConfigured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("exporting: {0}")]
    Export(String),
    #[error("asking for a day: {0}")]
    Publish(String),
}

/// What the tick was asked: `{}` from the schedule; `campaign_id` and `today` narrow a run
/// started by hand.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickRequest {
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default, with = "wire::date_option")]
    pub today: Option<Date>,
}

impl TickRequest {
    /// The schedule's event or a hand-written one (`backoffice_edge::schedule::request`).
    pub fn from_event(payload: &Value) -> Result<TickRequest, ReportError> {
        schedule::request(payload).map_err(|e| ReportError::Unreadable(e.to_string()))
    }
}

/// What a tick asked for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub campaigns: usize,
    pub requested: Vec<Requested>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Requested {
    pub campaign_id: String,
    #[serde(with = "wire::date")]
    pub day: Date,
    pub reason: String,
}

/// What one campaign-day request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayOutcome {
    /// Its inputs are what its rows were computed from.
    Unchanged,
    Computed {
        rows: usize,
    },
}

pub struct Reports<K, D, C> {
    pub store: K,
    pub campaigns: D,
    pub exports: Arc<dyn KpiExports>,
    /// The reports queue.
    pub publisher: Arc<dyn Publisher>,
    pub clock: C,
    pub settings: Settings,
}

impl<K, D, C> Reports<K, D, C>
where
    K: KpiInputs + KpiReports,
    D: CampaignDirectory + CampaignList,
    C: Clock,
{
    // ----- the tick ---------------------------------------------------------------------------

    /// Ask for every campaign-day that changed since it was computed (or never was).
    pub async fn tick(&self, request: &TickRequest) -> Result<TickReport, ReportError> {
        let campaigns = match &request.campaign_id {
            Some(id) => vec![id.clone()],
            None => self.campaigns.campaigns().await?,
        };
        let mut report = TickReport {
            campaigns: campaigns.len(),
            ..TickReport::default()
        };
        for campaign_id in campaigns {
            let Some(catalog) = self.campaigns.catalog(&campaign_id).await? else {
                tracing::warn!(campaign_id, "listed in the campaign directory without a configuration");
                continue;
            };
            let today = request
                .today
                .unwrap_or_else(|| catalog.campaign.timezone.local_date(self.clock.now()));
            for (day, reason) in self.changed_days(&campaign_id, today).await? {
                self.ask(&campaign_id, day, false, reason).await?;
                report.requested.push(Requested {
                    campaign_id: campaign_id.clone(),
                    day,
                    reason: reason.to_owned(),
                });
            }
        }
        metrics::counter!("KpiDaysRequested", "Reason" => "tick").increment(report.requested.len() as u64);
        Ok(report)
    }

    /// The ended days of the window whose attempts or verifications differ from their source.
    async fn changed_days(&self, campaign_id: &str, today: Date) -> Result<Vec<(Date, &'static str)>, ReportError> {
        let days: Vec<Date> = (1..=i64::from(self.settings.window_days))
            .filter_map(|back| today.checked_sub(Duration::days(back)))
            .collect();
        let counts = self.store.attempt_counts(campaign_id, &days).await?;
        let sources = self.store.sources(campaign_id, &days).await?;
        let decisions = self.store.decisions(campaign_id, &decision_days(today, today)).await?;
        let mut changed = Vec::new();
        for day in days.iter().rev() {
            let source = sources.get(day);
            let attempts = counts.get(day).copied().unwrap_or(0);
            let decided: BTreeMap<Date, u64> = decisions
                .iter()
                .filter_map(|(decided_on, sold)| Some((*decided_on, *sold.get(day)?)))
                .collect();
            let reason = match source {
                None if attempts > 0 || !decided.is_empty() => Some("day_ended"),
                None => None,
                Some(source) if source.attempts != attempts => Some("late_contacts"),
                Some(source)
                    if decided
                        .iter()
                        .any(|(decided_on, n)| source.decisions.get(decided_on) != Some(n)) =>
                {
                    Some("verifications")
                }
                Some(_) => None,
            };
            if let Some(reason) = reason {
                changed.push((*day, reason));
            }
        }
        Ok(changed)
    }

    async fn ask(&self, campaign_id: &str, day: Date, forced: bool, reason: &str) -> Result<(), ReportError> {
        let request = KpiDayRequested {
            campaign_id: campaign_id.to_owned(),
            day,
            forced,
            reason: reason.to_owned(),
        };
        let correlation_id = format!("kpi-{campaign_id}-{day}");
        let message = OutboxMessage::seal(&request, &correlation_id, self.clock.now())
            .map_err(|e| ReportError::Publish(e.to_string()))?;
        self.publisher
            .publish(&message)
            .await
            .map_err(|e| ReportError::Publish(e.to_string()))
    }

    // ----- one campaign-day -------------------------------------------------------------------

    pub async fn handle_queue(&self, event: SqsEvent) -> SqsBatchResponse {
        queue::each_message(event, |body| async move { self.process(&body).await }).await
    }

    pub async fn process(&self, body: &str) -> Result<DayOutcome, ReportError> {
        let envelope = wire::open::<KpiDayRequested>(body).map_err(|e| ReportError::Unreadable(e.to_string()))?;
        self.compute(&envelope.body).await
    }

    /// The day's rows, from what the store holds now: the source is read before the inputs, so
    /// anything recorded while computing makes the day read as changed again.
    pub async fn compute(&self, request: &KpiDayRequested) -> Result<DayOutcome, ReportError> {
        let campaign_id = request.campaign_id.as_str();
        let catalog = self
            .campaigns
            .catalog(campaign_id)
            .await?
            .ok_or_else(|| ReportError::NotConfigured(campaign_id.to_owned()))?;
        let zone = &catalog.campaign.timezone;
        let now = self.clock.now();
        let today = zone.local_date(now);
        let day = request.day;
        let source = DaySource {
            attempts: self
                .store
                .attempt_counts(campaign_id, &[day])
                .await?
                .get(&day)
                .copied()
                .unwrap_or(0),
            decisions: self
                .store
                .decisions(campaign_id, &decision_days(day, today))
                .await?
                .into_iter()
                .filter_map(|(decided_on, sold)| Some((decided_on, *sold.get(&day)?)))
                .collect(),
        };
        if !request.forced && self.store.sources(campaign_id, &[day]).await?.get(&day) == Some(&source) {
            tracing::info!(campaign_id, %day, "unchanged since it was computed");
            return Ok(DayOutcome::Unchanged);
        }
        let start = zone
            .start_of(day)
            .ok_or_else(|| ReportError::Unreadable(format!("no day {day} in {}", zone.name())))?;
        let campaign = CampaignKpis {
            client_id: &catalog.campaign.client_id,
            campaign_id,
            zone,
            base_records: catalog.campaign.base_records,
        };
        // Folded page by page: a day's contacts are never all in memory (docs/bench/kpis.md).
        let mut fold = kpi::Fold::new(campaign);
        let contacts = self
            .store
            .each_attempt(campaign_id, day, &mut |contact| fold.add_contact(&contact))
            .await?;
        let sales = self
            .store
            .sales(
                campaign_id,
                start,
                start + Duration::days(1) + self.settings.registration_lag,
            )
            .await?;
        let rows: Vec<KpiRow> = fold.finish(&sales).into_iter().filter(|row| row.day == day).collect();
        // A day without data has no file (its rows never shrink: contacts are never deleted).
        if !rows.is_empty() {
            let file = parquet::encode(&rows, now).map_err(|e| ReportError::Export(e.to_string()))?;
            self.exports
                .put(
                    &exports::partition_key(&catalog.campaign.client_id, campaign_id, day),
                    file,
                )
                .await
                .map_err(|e| ReportError::Export(e.to_string()))?;
        }
        self.store.replace_day(campaign_id, day, &rows, &source, now).await?;
        metrics::counter!("KpiDaysComputed", "Reason" => request.reason.clone()).increment(1);
        tracing::info!(campaign_id, %day, contacts, rows = rows.len(), reason = request.reason, "day computed");
        Ok(DayOutcome::Computed { rows: rows.len() })
    }

    // ----- HTTP -------------------------------------------------------------------------------

    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = request.principal()?;
        match request.route_key.as_str() {
            "GET /reports/kpis" => self.read(request, &principal).await,
            "POST /reports/kpis/rebuild" => self.rebuild(request, &principal).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    /// The campaign, if the caller acts for its client (another client's reads as unknown).
    async fn campaign(&self, request: &ApiRequest, principal: &Principal) -> Result<CampaignCatalog, ApiError> {
        let id = request
            .query_param("campaign")?
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "campaign".into(),
                detail: "campaign is required".into(),
            })?;
        self.campaigns
            .catalog(id)
            .await?
            .filter(|c| principal.acts_for(&c.campaign.client_id))
            .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
    }

    async fn read(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is_any(&[Role::Supervisor, Role::Admin]) {
            return Err(ApiError::Forbidden("KPI reports are for supervisors and admins".into()));
        }
        request.only_query_params(&["campaign", "from", "to", "group_by"])?;
        let group_by = match request.query_param("group_by")? {
            None | Some("day") => GroupBy::Day,
            Some("agent") => GroupBy::Agent,
            Some("channel") => GroupBy::Channel,
            Some(other) => {
                return Err(ApiError::InvalidParameter {
                    field: "group_by".into(),
                    detail: format!("group_by is day, agent or channel, not {other:?}"),
                });
            }
        };
        let catalog = self.campaign(request, principal).await?;
        let today = catalog.campaign.timezone.local_date(self.clock.now());
        let (from, to) = range(request, today.previous_day().unwrap_or(today), MAX_READ_DAYS)?;
        let stored = self.store.rows(&catalog.campaign.campaign_id, from, to).await?;
        let mut rows = kpi::rollup(&stored, group_by);
        rows.sort_by(|a, b| (a.day, &a.agent_id, a.channel).cmp(&(b.day, &b.agent_id, b.channel)));
        let reported: std::collections::BTreeSet<Date> = stored.iter().map(|row| row.day).collect();
        let missing: Vec<String> = days(from, to)
            .filter(|day| !reported.contains(day))
            .map(|day| day.to_string())
            .collect();
        if request.wants_csv() {
            let body: Vec<Vec<String>> = rows.iter().map(csv_row).collect();
            let filename = format!("kpis-{}-{from}-{to}.csv", catalog.campaign.campaign_id);
            return Ok(ApiResponse::csv(200, &csv_header(), &body, &filename));
        }
        Ok(ApiResponse::json(
            200,
            &json!({
                "campaign_id": catalog.campaign.campaign_id,
                "client_id": catalog.campaign.client_id,
                "timezone": catalog.campaign.timezone.name(),
                "from": from.to_string(),
                "to": to.to_string(),
                "group_by": group_by,
                "definitions_version": kpi::DEFINITIONS_VERSION,
                "days_without_report": missing,
                "rows": rows,
            }),
        ))
    }

    async fn rebuild(&self, request: &ApiRequest, principal: &Principal) -> Result<ApiResponse, ApiError> {
        if !principal.is(Role::Admin) {
            return Err(ApiError::Forbidden("rebuilding KPI reports is for admins".into()));
        }
        request.only_query_params(&["campaign", "from", "to"])?;
        let catalog = self.campaign(request, principal).await?;
        let today = catalog.campaign.timezone.local_date(self.clock.now());
        let yesterday = today.previous_day().unwrap_or(today);
        let (from, to) = range(request, yesterday, MAX_REBUILD_DAYS)?;
        if to >= today {
            return Err(ApiError::InvalidParameter {
                field: "to".into(),
                detail: format!("only ended days are reported: to must be {yesterday} or earlier"),
            });
        }
        let campaign_id = &catalog.campaign.campaign_id;
        let mut asked = Vec::new();
        for day in days(from, to) {
            self.ask(campaign_id, day, true, "rebuild")
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            asked.push(day.to_string());
        }
        metrics::counter!("KpiDaysRequested", "Reason" => "rebuild").increment(asked.len() as u64);
        Ok(ApiResponse::json(
            202,
            &json!({"campaign_id": campaign_id, "from": from.to_string(), "to": to.to_string(), "days": asked}),
        ))
    }
}

/// The decision days whose review metrics a day's source records: from the day itself (a
/// pre-sale is decided after it is sold) to `today`, at most the last three.
fn decision_days(day: Date, today: Date) -> Vec<Date> {
    (0..3)
        .filter_map(|back| today.checked_sub(Duration::days(back)))
        .filter(|decided_on| *decided_on >= day)
        .collect()
}

fn days(from: Date, to: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(from), move |day| day.next_day().filter(|next| *next <= to))
}

/// `from` and `to` (inclusive; `to` defaults to `default_to`, `from` to `to`), at most
/// `max_days` long.
fn range(request: &ApiRequest, default_to: Date, max_days: i64) -> Result<(Date, Date), ApiError> {
    let to = request.date_param("to")?.unwrap_or(default_to);
    let from = request.date_param("from")?.unwrap_or(to);
    if from > to {
        return Err(ApiError::InvalidParameter {
            field: "from".into(),
            detail: format!("from ({from}) is after to ({to})"),
        });
    }
    if (to - from).whole_days() >= max_days {
        return Err(ApiError::InvalidParameter {
            field: "from".into(),
            detail: format!("at most {max_days} days at a time"),
        });
    }
    Ok((from, to))
}

/// The CSV's columns: where the row is, its counts, B, its rates, then what it was computed with.
fn csv_header() -> Vec<&'static str> {
    let mut header = vec!["day", "agent_id", "channel"];
    header.extend(kpi::Counts::NAMES);
    header.push("base_records");
    header.extend(kpi::Rates::NAMES);
    header.extend(["definitions_version", "catalog_versions", "campaign_id"]);
    header
}

/// One CSV line: rates with a dot and four decimals, empty when undefined (a zero denominator).
fn csv_row(row: &KpiRow) -> Vec<String> {
    let mut line = vec![
        row.day.to_string(),
        row.agent_id.clone().unwrap_or_default(),
        row.channel.map(|c| c.as_str().to_owned()).unwrap_or_default(),
    ];
    line.extend(row.counts.values().map(|n| n.to_string()));
    line.push(row.base_records.map(|b| b.to_string()).unwrap_or_default());
    line.extend(
        row.rates
            .values()
            .map(|r| r.map(|r| r.to_fixed(kpi::DECIMALS)).unwrap_or_default()),
    );
    line.push(row.definitions_version.to_string());
    line.push(
        row.catalog_versions
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    line.push(row.campaign_id.clone());
    line
}

#[cfg(test)]
mod tests;
