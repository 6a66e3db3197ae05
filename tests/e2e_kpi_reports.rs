//! KPI reports end to end (issue 16): a day of contacts on three channels and all three families
//! (some between 19:00 and 24:00 Lima, some resent), a disposition catalog published mid-day,
//! pre-sales of which some are verified; the hourly job computes the ended day through the
//! reports queue; every KPI is checked against values computed here from the generated data; the
//! CSV opens as Excel expects; the Parquet file is read by pyarrow and DuckDB; a late contact and
//! a verification re-open the day; a rebuild computes a day older than the job's window.
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_kpi_reports`.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use e2e_tests::desk::{Desk, desk};
use e2e_tests::{Caller, caller, repo_root, unique};
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

const LIMA: UtcOffset = match UtcOffset::from_hms(-5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

/// B, the campaign's base, as configured for the test's campaign.
const BASE: u64 = 1_000;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `hh:mm` on `day` in Lima (Peru keeps no daylight saving time, so a fixed offset is exact here).
fn lima(day: Date, hour: u8, minute: u8) -> OffsetDateTime {
    day.with_hms(hour, minute, 0).expect("a time").assume_offset(LIMA)
}

/// One generated contact and what the test expects of it.
#[derive(Debug, Clone)]
struct Planned {
    agent: &'static str,
    channel: &'static str,
    code: &'static str,
    /// "E", "X" (non-effective) or "N".
    family: char,
    at: OffsetDateTime,
    timing: Option<(u32, Option<u32>, u32)>,
    /// A sale disposition names the pre-sale it produced (by its index among the day's three).
    sale: Option<usize>,
}

fn plan(day: Date) -> Vec<Planned> {
    let p = |agent, channel, code, family, (h, m), timing| Planned {
        agent,
        channel,
        code,
        family,
        at: lima(day, h, m),
        timing,
        sale: None,
    };
    let sold = |contact: Planned, presale| Planned {
        sale: Some(presale),
        ..contact
    };
    vec![
        // Before the catalog change (version 0, the default catalog).
        sold(p("agent-7", "call", "SALE", 'E', (9, 0), Some((300, Some(20), 40))), 0),
        p(
            "agent-7",
            "call",
            "NOT_INTERESTED",
            'E',
            (10, 0),
            Some((120, Some(0), 30)),
        ),
        p("agent-7", "whatsapp", "MOVED", 'X', (11, 0), None),
        p("agent-7", "call", "NO_ANSWER", 'N', (12, 0), None),
        p("agent-8", "call", "NO_ANSWER", 'N', (8, 30), None),
        // After it (version 1, which adds THINK_ABOUT_IT), the evening ones among them.
        sold(
            p("agent-7", "whatsapp", "SALE", 'E', (19, 30), Some((400, Some(60), 20))),
            1,
        ),
        p(
            "agent-7",
            "email",
            "THINK_ABOUT_IT",
            'E',
            (23, 40),
            Some((50, None, 10)),
        ),
        p("agent-8", "call", "BUSY", 'N', (20, 15), None),
        p("agent-8", "whatsapp", "NOT_INTERESTED", 'E', (21, 0), None),
        p("agent-8", "call", "MOVED", 'X', (22, 59), Some((30, None, 5))),
    ]
}

const BEFORE_CHANGE: usize = 5;

/// The pre-sales of the day: (id, the customer's phone).
type Sales = Vec<(String, String)>;

fn body(campaign: &str, contact: &Planned, external_id: &str, sales: &Sales) -> Value {
    let customer = match contact.sale {
        Some(i) => format!("phone:{}", sales[i].1),
        None => format!("phone:+5199{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000),
    };
    let mut body = json!({
        "channel": contact.channel, "direction": "outbound", "external_id": external_id,
        "customer_key": customer,
        "campaign_id": campaign, "disposition": contact.code,
        "started_at": rfc3339(contact.at), "ended_at": rfc3339(contact.at + Duration::minutes(10)),
    });
    if let Some(i) = contact.sale {
        body["presale_id"] = json!(sales[i].0);
    }
    if let Some((talk, hold, wrap)) = contact.timing {
        body["talk_seconds"] = json!(talk);
        body["wrap_seconds"] = json!(wrap);
        if let Some(hold) = hold {
            body["hold_seconds"] = json!(hold);
        }
    }
    body
}

// ----- the expectation, computed here -------------------------------------------------------

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Expected {
    attempts: u64,
    contacts: u64,
    effective: u64,
    non_effective: u64,
    no_contact: u64,
    presales: u64,
    verified: u64,
    handled: u64,
    talk: u64,
    hold: u64,
    wrap: u64,
}

impl Expected {
    fn of<'a>(contacts: impl IntoIterator<Item = &'a Planned>, presales: u64, verified: u64) -> Expected {
        let mut e = Expected {
            presales,
            verified,
            ..Expected::default()
        };
        for c in contacts {
            e.attempts += 1;
            match c.family {
                'E' => e.effective += 1,
                'X' => e.non_effective += 1,
                _ => e.no_contact += 1,
            }
            if c.family != 'N' {
                e.contacts += 1;
                if let Some((talk, hold, wrap)) = c.timing {
                    e.handled += 1;
                    e.talk += u64::from(talk);
                    e.hold += u64::from(hold.unwrap_or(0));
                    e.wrap += u64::from(wrap);
                }
            }
        }
        e
    }

    /// Every rate as the API shows it: four decimals rounded half up, null on a zero denominator.
    fn rates(&self) -> BTreeMap<&'static str, Value> {
        BTreeMap::from([
            ("contact_rate", rate(self.contacts, self.attempts)),
            ("effective_rate", rate(self.effective, self.contacts)),
            ("presale_conversion", rate(self.presales, self.effective)),
            ("verified_conversion", rate(self.verified, self.effective)),
            ("verification_pass_rate", rate(self.verified, self.presales)),
            ("penetration", rate(self.verified, BASE)),
            ("presales_per_talk_hour", rate(self.presales * 3600, self.talk)),
            ("verified_sales_per_talk_hour", rate(self.verified * 3600, self.talk)),
            ("aht_seconds", rate(self.talk + self.hold + self.wrap, self.handled)),
        ])
    }

    fn counts(&self) -> Value {
        json!({
            "attempts": self.attempts, "contacts": self.contacts, "effective": self.effective,
            "non_effective": self.non_effective, "no_contact": self.no_contact,
            "presales": self.presales, "verified_sales": self.verified, "handled": self.handled,
            "talk_seconds": self.talk, "hold_seconds": self.hold, "wrap_seconds": self.wrap,
        })
    }
}

/// n / d with four decimals, half up, by integer arithmetic on the scaled value.
fn rate(n: u64, d: u64) -> Value {
    if d == 0 {
        return Value::Null;
    }
    let scaled = (u128::from(n) * 20_000 + u128::from(d)) / (2 * u128::from(d));
    json!(format!("{}.{:04}", scaled / 10_000, scaled % 10_000))
}

fn assert_row(row: &Value, expected: &Expected, what: &str) {
    assert_eq!(row["counts"], expected.counts(), "{what}: counts of {row}");
    for (name, value) in expected.rates() {
        assert_eq!(row["rates"][name], value, "{what}: {name} of {row}");
    }
}

// ----- talking to the stack -----------------------------------------------------------------

struct Floor {
    desk: Desk,
    supervisor: Caller,
    admin: Caller,
    agents: BTreeMap<&'static str, Caller>,
    day: Date,
    sales: Sales,
}

impl Floor {
    async fn post_contact(&self, contact: &Planned, external_id: &str) -> u16 {
        let agent = &self.agents[contact.agent];
        let reply = self
            .desk
            .env
            .send(self.desk.env.as_caller(agent, "POST", "/contacts").json(&body(
                &self.desk.campaign,
                contact,
                external_id,
                &self.sales,
            )))
            .await;
        assert!(matches!(reply.status, 200 | 201), "{external_id}: {:?}", reply.body);
        reply.status
    }

    async fn kpis(&self, from: Date, to: Date, group_by: &str) -> Value {
        let path = format!(
            "/reports/kpis?campaign={}&from={from}&to={to}&group_by={group_by}",
            self.desk.campaign
        );
        let reply = self
            .desk
            .env
            .send(self.desk.env.as_caller(&self.supervisor, "GET", &path))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// The day's total once the report shows `attempts` attempts and `verified` verified sales.
    async fn wait_total(&self, day: Date, attempts: u64, verified: u64) -> Value {
        let started = Instant::now();
        loop {
            let body = self.kpis(day, day, "day").await;
            if let Some(total) = body["rows"].as_array().and_then(|rows| rows.first())
                && total["counts"]["attempts"] == attempts
                && total["counts"]["verified_sales"] == verified
            {
                return total.clone();
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(90),
                "the report of {day} never showed {attempts} attempts and {verified} verified sales: {body}"
            );
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        }
    }

    /// The hourly job, as the schedule runs it, narrowed to this campaign.
    async fn tick(&self) -> Value {
        let reply = self
            .desk
            .env
            .send(
                self.desk
                    .env
                    .request("POST", "/_local/functions/KpiReportsFunction/invoke")
                    .json(&json!({"campaign_id": self.desk.campaign})),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    fn asked(tick: &Value, day: Date) -> Option<String> {
        tick["requested"]
            .as_array()?
            .iter()
            .find(|r| r["day"] == day.to_string())
            .and_then(|r| r["reason"].as_str().map(str::to_owned))
    }
}

async fn floor() -> Floor {
    let desk = desk().await;
    // B for the penetration: the campaign's configuration as an admin would set it.
    let table = desk.env.table("ConfigTable");
    desk.env
        .dynamodb
        .update_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CAMPAIGN#{}", desk.campaign)),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("CONFIG".into()))
        .update_expression("SET base_records = :b")
        .expression_attribute_values(":b", aws_sdk_dynamodb::types::AttributeValue::N(BASE.to_string()))
        .send()
        .await
        .expect("base configured");
    let today = OffsetDateTime::now_utc().to_offset(LIMA).date();
    Floor {
        supervisor: caller("sup-1", "supervisor", &[&desk.client]),
        admin: caller("admin-1", "admin", &[&desk.client]),
        agents: BTreeMap::from([
            ("agent-7", caller("agent-7", "agent", &[&desk.client])),
            ("agent-8", caller("agent-8", "agent", &[&desk.client])),
        ]),
        day: today.previous_day().expect("yesterday"),
        desk,
        sales: Vec::new(),
    }
}

/// Publish the default catalog plus THINK_ABOUT_IT (effective) as the next version.
async fn change_catalog(f: &Floor) -> u64 {
    let env = &f.desk.env;
    let path = format!("/campaigns/{}/dispositions", f.desk.campaign);
    let current = env.send(env.as_caller(&f.admin, "GET", &path)).await;
    assert_eq!(current.status, 200, "{:?}", current.body);
    let mut nodes = current.body["nodes"].clone();
    let holder = nodes
        .as_array_mut()
        .and_then(|n| n.iter_mut().find(|n| n["code"] == "EFFECTIVE"))
        .and_then(|n| n["children"].as_array_mut())
        .and_then(|c| c.iter_mut().find(|n| n["code"] == "HOLDER"))
        .and_then(|n| n["children"].as_array_mut())
        .expect("EFFECTIVE / HOLDER");
    let mut think = holder
        .iter()
        .find(|n| n["code"] == "NOT_INTERESTED")
        .cloned()
        .expect("NOT_INTERESTED");
    think["code"] = json!("THINK_ABOUT_IT");
    think["label"] = json!("Lo pensará");
    holder.push(think);
    let published = env
        .send(env.as_caller(&f.admin, "PUT", &path).json(&json!({"nodes": nodes})))
        .await;
    assert_eq!(published.status, 200, "{:?}", published.body);
    published.body["version"].as_u64().expect("a version")
}

/// The day's Parquet files, downloaded under their Hive partitions, read by pyarrow and DuckDB.
async fn read_parquet(f: &Floor) -> Vec<Value> {
    let env = &f.desk.env;
    let bucket = env.resource("ReportsBucket").reference.clone();
    let prefix = format!("reports/kpis/client={}/campaign={}/", f.desk.client, f.desk.campaign);
    let listed = env
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .send()
        .await
        .expect("listed");
    let dir = std::env::temp_dir().join(unique("kpi-lake"));
    for object in listed.contents() {
        let key = object.key().expect("a key");
        let bytes = env
            .s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .expect("downloaded")
            .body
            .collect()
            .await
            .expect("read")
            .into_bytes();
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folders");
        std::fs::write(&path, bytes).expect("written");
    }
    let python = repo_root().join(".local/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run infra/local/test (it installs pyarrow and DuckDB)",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(repo_root().join("infra/local/checks/read_kpi_parquet.py"))
        .arg(&dir)
        .arg("--template")
        .arg(repo_root().join("infra/template.yaml"))
        .output()
        .expect("the reader runs");
    assert!(
        output.status.success(),
        "read_kpi_parquet.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("rows as JSON")
}

#[tokio::test]
async fn a_day_of_contacts_and_sales_is_reported_exactly_exported_reopened_and_rebuilt() {
    let mut f = floor().await;
    let day = f.day;
    let planned = plan(day);

    // Pre-sales of the day: sold at 09:02 and 19:35 (each by the SALE contact that names it, on
    // a call and on WhatsApp) and at 23:55 (registered after midnight: still the day's). One is
    // verified before the report.
    for (h, m) in [(9, 2), (19, 35), (23, 55)] {
        let (id, _) = f.desk.ready_presale_called_at(40, lima(day, h, m)).await;
        let read = f
            .desk
            .env
            .send(f.desk.env.as_caller(&f.desk.agent, "GET", &format!("/presales/{id}")))
            .await;
        let phone = read.body["customer"]["phone"].as_str().expect("a phone").to_owned();
        f.sales.push((id, phone));
    }
    let validator = f.desk.validator("val-1");
    let verified_first = f.desk.approve_next(&validator).await;
    // The channel of each pre-sale: that of the contact naming it, else a call.
    let whatsapp_sale = f.sales[1].0.clone();
    let sale_channel = |id: &str| if id == whatsapp_sale { "whatsapp" } else { "call" };

    // Contacts: the first ones under the default catalog, the rest under the next version;
    // two are delivered twice; one belongs to the day before (23:50) and must not count.
    for (i, contact) in planned.iter().enumerate().take(BEFORE_CHANGE) {
        assert_eq!(f.post_contact(contact, &format!("ext-{i}")).await, 201);
    }
    let version = change_catalog(&f).await;
    for (i, contact) in planned.iter().enumerate().skip(BEFORE_CHANGE) {
        assert_eq!(f.post_contact(contact, &format!("ext-{i}")).await, 201);
    }
    for i in [1, 7] {
        assert_eq!(f.post_contact(&planned[i], &format!("ext-{i}")).await, 200, "a resend");
    }
    let eve = Planned {
        at: lima(day.previous_day().expect("a day"), 23, 50),
        ..planned[3].clone()
    };
    f.post_contact(&eve, "ext-eve").await;

    // The hourly job asks for the ended day; the queue computes it.
    let tick = f.tick().await;
    assert_eq!(Floor::asked(&tick, day).as_deref(), Some("day_ended"), "{tick}");
    let expected = Expected::of(&planned, 3, 1);
    let total = f.wait_total(day, expected.attempts, 1).await;
    assert_row(&total, &expected, "the day's total");
    assert_eq!(total["catalog_versions"], json!([0, version]));
    assert_eq!(total["definitions_version"], 1);
    assert_eq!(
        (total["agent_id"].clone(), total["channel"].clone()),
        (Value::Null, Value::Null)
    );

    // Per agent (all channels) and per channel (all agents); the pre-sales are agent-7's calls.
    let by_agent = f.kpis(day, day, "agent").await;
    for agent in ["agent-7", "agent-8"] {
        let row = by_agent["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["agent_id"] == agent))
            .unwrap_or_else(|| panic!("{agent}'s row in {by_agent}"));
        let (s, sv) = if agent == "agent-7" { (3, 1) } else { (0, 0) };
        assert_row(
            row,
            &Expected::of(planned.iter().filter(|c| c.agent == agent), s, sv),
            agent,
        );
    }
    let by_channel = f.kpis(day, day, "channel").await;
    for channel in ["call", "whatsapp", "email"] {
        let row = by_channel["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["channel"] == channel))
            .unwrap_or_else(|| panic!("{channel}'s row in {by_channel}"));
        let s = f.sales.iter().filter(|(id, _)| sale_channel(id) == channel).count() as u64;
        let sv = u64::from(sale_channel(&verified_first) == channel);
        assert_row(
            row,
            &Expected::of(planned.iter().filter(|c| c.channel == channel), s, sv),
            channel,
        );
    }
    // The day before counts its one evening contact, on its own day.
    let eve_day = f.kpis(day.previous_day().expect("a day"), day, "day").await;
    assert_eq!(eve_day["rows"].as_array().map(Vec::len), Some(2), "{eve_day}");

    // The CSV, as Excel opens it.
    let csv_path = format!("/reports/kpis?campaign={}&from={day}&to={day}", f.desk.campaign);
    let csv = f
        .desk
        .env
        .send(
            f.desk
                .env
                .as_caller(&f.supervisor, "GET", &csv_path)
                .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv
        .body
        .as_str()
        .expect("CSV text")
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    let line = reader.records().next().expect("the total's line").expect("a record");
    let cell = |name: &str| {
        line.get(header.iter().position(|h| h == name).expect(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(cell("attempts"), expected.attempts.to_string());
    assert_eq!(
        cell("aht_seconds"),
        expected.rates()["aht_seconds"].as_str().unwrap_or_default()
    );
    assert_eq!(
        cell("effective_rate"),
        expected.rates()["effective_rate"].as_str().unwrap_or_default()
    );

    // A redelivered request changes nothing.
    let request = json!({"type": "KpiDayRequested", "version": 1, "id": unique("msg"), "occurred_at": rfc3339(OffsetDateTime::now_utc()),
                         "correlation_id": unique("corr"), "body": {"campaign_id": f.desk.campaign, "day": day.to_string(), "reason": "redelivery"}});
    let redelivered = f
        .desk
        .env
        .send(
            f.desk
                .env
                .deliver_sqs("KpiReportsFunction", "ReportsQueue", &request.to_string()),
        )
        .await;
    assert_eq!(
        redelivered.body["batchItemFailures"],
        json!([]),
        "{:?}",
        redelivered.body
    );
    assert_row(
        &f.wait_total(day, expected.attempts, 1).await,
        &expected,
        "after a redelivery",
    );

    // The data lake: pyarrow and DuckDB read the day's partition, whose total is the API's.
    let lake = read_parquet(&f).await;
    let lake_total = lake
        .iter()
        .find(|r| r["dt"] == day.to_string() && r["grain"] == "day")
        .unwrap_or_else(|| panic!("the day's total in {lake:?}"));
    assert_eq!(lake_total["client"], f.desk.client.as_str());
    assert_eq!(lake_total["campaign"], f.desk.campaign.as_str());
    for (name, value) in expected.counts().as_object().expect("counts") {
        assert_eq!(&lake_total[name.as_str()], value, "parquet {name}");
    }
    for (name, value) in expected.rates() {
        assert_eq!(lake_total[name], value, "parquet {name}");
    }
    let agent_rows: u64 = lake
        .iter()
        .filter(|r| r["dt"] == day.to_string() && r["grain"] == "agent_channel")
        .map(|r| r["attempts"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        agent_rows, expected.attempts,
        "agent × channel rows add up to the total"
    );

    // A late contact and a verification re-open the day.
    let late = Planned {
        agent: "agent-8",
        channel: "call",
        code: "NOT_INTERESTED",
        family: 'E',
        at: lima(day, 23, 10),
        timing: Some((60, None, 0)),
        sale: None,
    };
    f.post_contact(&late, "ext-late").await;
    f.desk.approve_next(&validator).await;
    let tick = f.tick().await;
    assert_eq!(Floor::asked(&tick, day).as_deref(), Some("late_contacts"), "{tick}");
    let mut now_planned = planned.clone();
    now_planned.push(late);
    let expected = Expected::of(&now_planned, 3, 2);
    assert_row(
        &f.wait_total(day, expected.attempts, 2).await,
        &expected,
        "after the late contact",
    );
    assert!(Floor::asked(&f.tick().await, day).is_none(), "nothing changed since");

    // A day older than the job's window is only computed by a rebuild.
    let old_day = day - Duration::days(40);
    let old = Planned {
        at: lima(old_day, 10, 0),
        ..planned[1].clone()
    };
    f.post_contact(&old, "ext-old").await;
    assert!(Floor::asked(&f.tick().await, old_day).is_none());
    let path = format!(
        "/reports/kpis/rebuild?campaign={}&from={old_day}&to={old_day}",
        f.desk.campaign
    );
    let rebuilt = f.desk.post(&f.admin, &path, None).await;
    assert_eq!(
        (rebuilt.status, rebuilt.body["days"].clone()),
        (202, json!([old_day.to_string()]))
    );
    assert_row(
        &f.wait_total(old_day, 1, 0).await,
        &Expected::of([&old], 0, 0),
        "the rebuilt day",
    );
}
