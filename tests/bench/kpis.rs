//! One campaign-day of the KPI report job at scale (issue 16), against a running stack: a
//! campaign of America/Lima, `--contacts N` contacts (default 200,000) generated
//! deterministically for one Lima day (yesterday) across 100 agents × 3 channels × the three
//! families, with timings, and pre-sales for the 3 % of them with a sale disposition (70 %
//! verified). Then:
//!
//! 1. **The fold alone**, in this process, before anything is seeded: `kpi::fold` and the Parquet
//!    encoding on the generated contacts and sales (time, and the growth of `VmHWM`), so our
//!    code's cost is apart from the emulator's.
//! 2. **Seeding**, as the store writes them: each contact's day attempt and the day's counter with
//!    `backoffice_store::kpis::seed_attempts`; each pre-sale with `PresaleWrite::create` (the
//!    pre-sale, its call guard and its first audit record, one transaction, as presale-intake).
//! 3. **The job**: the real `Reports::compute` (`DynamoKpiStore`, `DynamoCampaignDirectory`,
//!    `S3KpiExports` to `ReportsBucket`) in a child process (this example run again with
//!    `--compute`), so its peak RSS (`VmHWM`) is the computation's alone; the emulator's request
//!    ledger is reset before it and read after it: AWS requests by service and operation, DynamoDB
//!    read and write units. Printed with the same on DynamoDB itself (1 MB query pages of the
//!    measured item size) and what counts against one Lambda invocation (15 min, 512 MB).
//!
//! `infra/bench/kpis.sh` starts a stack, runs this and stops it (`--fold-only`: step 1 alone, no
//! stack). The emulator's time is not DynamoDB's: requests, units, bytes and our process's CPU
//! time and memory are what carry over. On moto each Query page costs about 5.5 s plus 0.055 ms
//! per item in the whole table (100,000 contacts: 14 minutes for the job; 200,000: about 31).

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use backoffice_domain::SystemClock;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::events::KpiDayRequested;
use backoffice_domain::kpi::{self, CampaignKpis, Sale};
use backoffice_domain::presale::{Presale, PresaleStatus};
use backoffice_domain::testing::{campaign_catalog, presale_id, registered_presale};
use backoffice_domain::tipification::{Catalog, Channel, Contact, CustomerKey, Direction, Family, Leaf, default_nodes};
use backoffice_domain::zone::CampaignZone;
use backoffice_edge::testing::MemoryPublisher;
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::kpis::{DynamoKpiStore, attempts_pk, seed_attempts};
use backoffice_store::presales::{DynamoPresaleStore, PresaleWrite};
use e2e_tests::{TestEnv, env, unique};
use kpi_reports::exports::{S3KpiExports, partition_key};
use kpi_reports::{DayOutcome, Reports, Settings};
use serde_json::{Value, json};
use time::macros::offset;
use time::{Date, Duration, OffsetDateTime};

const AGENTS: u64 = 100;
/// B, the campaign's base, as configured.
const BASE_RECORDS: u64 = 1_000_000;
/// A Lambda with 1,769 MB has one vCPU; 512 MB has this share of one.
const LAMBDA_512_CPU_SHARE: f64 = 512.0 / 1769.0;
const MB: f64 = 1024.0 * 1024.0;

/// The dispositions of the default catalog, per 1,000 contacts: 33 % effective (3 % sales),
/// 17 % non-effective, 50 % no contact.
const MIX: [(&str, u64); 13] = [
    ("SALE", 30),
    ("NOT_INTERESTED", 150),
    ("CALL_BACK", 80),
    ("ALREADY_CUSTOMER", 50),
    ("DO_NOT_CALL", 20),
    ("RELATIVE", 60),
    ("WRONG_NUMBER", 50),
    ("MOVED", 40),
    ("BROKEN_LINE", 20),
    ("NO_ANSWER", 300),
    ("BUSY", 100),
    ("VOICEMAIL", 80),
    ("OUT_OF_SERVICE", 20),
];

// ----- arguments ------------------------------------------------------------------------------

struct Args {
    contacts: u64,
    /// Only the in-process part: generate, fold, encode; no stack needed.
    fold_only: bool,
    /// Set in the child: compute this campaign-day and print its measurements.
    compute: Option<(String, Date)>,
}

fn args() -> Args {
    let mut contacts = 200_000;
    let mut campaign = None;
    let mut day = None;
    let mut compute = false;
    let mut fold_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--contacts" => {
                contacts = it
                    .next()
                    .and_then(|v| v.replace(['_', ','], "").parse().ok())
                    .expect("--contacts N: a whole number")
            }
            "--compute" => compute = true,
            "--fold-only" => fold_only = true,
            "--campaign" => campaign = it.next(),
            "--day" => {
                day = it.next().map(|v| {
                    Date::parse(&v, time::macros::format_description!("[year]-[month]-[day]"))
                        .expect("--day YYYY-MM-DD")
                })
            }
            other => panic!("unknown argument {other:?}; usage: kpis [--contacts N] [--fold-only]"),
        }
    }
    let compute = compute.then(|| {
        (
            campaign.expect("--compute needs --campaign"),
            day.expect("--compute needs --day"),
        )
    });
    Args {
        contacts,
        fold_only,
        compute,
    }
}

// ----- measurements of this process -----------------------------------------------------------

/// A `VmHWM`/`VmRSS` line of /proc/self/status, in kB.
fn vm_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system, every thread) of this process so far, from /proc/self/stat
/// (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the command name: state is field 3, utime 14, stime 15.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ----- the generated day ----------------------------------------------------------------------

/// splitmix64: the same contacts on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Day {
    client: String,
    campaign: String,
    day: Date,
    /// 00:00 of the day in Lima.
    start: OffsetDateTime,
    leaves: Vec<(u64, Leaf)>,
}

impl Day {
    fn new(client: &str, campaign: &str, day: Date, zone: &CampaignZone) -> Day {
        let catalog = Catalog {
            version: 1,
            nodes: default_nodes(),
        };
        let mut upto = 0;
        let leaves = MIX
            .iter()
            .map(|(code, weight)| {
                upto += weight;
                (upto, catalog.leaf(code).expect("a code of the default catalog"))
            })
            .collect();
        Day {
            client: client.to_owned(),
            campaign: campaign.to_owned(),
            day,
            start: zone.start_of(day).expect("the day starts").to_offset(offset!(-5)),
            leaves,
        }
    }

    /// Contact `n`: its agent, channel, disposition, start (08:00-22:00) and timing are drawn
    /// from `n` alone.
    fn contact(&self, n: u64) -> Contact {
        let r = |k: u64| mix(n << 4 | k);
        let draw = r(2) % 1000;
        let leaf = self
            .leaves
            .iter()
            .find(|(upto, _)| draw < *upto)
            .map(|(_, leaf)| leaf.clone())
            .expect("the mix covers 1,000");
        let channel = match r(1) % 10 {
            0..=6 => Channel::Call,
            7 | 8 => Channel::Whatsapp,
            _ => Channel::Email,
        };
        let started_at = self.start + Duration::seconds((8 * 3600 + r(3) % (14 * 3600)) as i64);
        let human = leaf.family != Family::NoContact;
        // Nine human contacts in ten report timing; hold is reported by some platforms only.
        let timed = human && r(4) % 10 != 0;
        let talk = timed.then(|| 30 + (r(5) % 870) as u32);
        let hold = (timed && r(6) % 5 < 3).then(|| ((r(6) >> 8) % 120) as u32);
        let wrap = timed.then(|| 5 + (r(7) % 85) as u32);
        let in_call = match talk {
            Some(talk) => i64::from(talk + hold.unwrap_or(0)),
            None if human => 20 + (r(5) % 300) as i64,
            None => 15 + (r(5) % 30) as i64,
        };
        let ended_at = started_at + Duration::seconds(in_call + 5);
        let millis = u64::try_from(started_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut random = [0u8; 10];
        random.copy_from_slice(&r(8).to_be_bytes().repeat(2)[..10]);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        Contact {
            id: id.to_string(),
            client_id: self.client.clone(),
            campaign_id: self.campaign.clone(),
            agent_id: format!("agent-{:03}", r(0) % AGENTS),
            channel,
            direction: if channel == Channel::Call {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            external_id: format!("{}-{:016x}", channel.as_str(), r(9)),
            customer_key: CustomerKey::parse(&format!("phone:+519{:08}", r(10) % 100_000_000))
                .expect("a Peruvian mobile number"),
            presale_id: leaf
                .flags
                .sale
                .then(|| presale_id(&format!("{}-{n}", self.campaign)).as_str().to_owned()),
            callback_at: leaf.flags.callback.then(|| started_at + Duration::days(1)),
            disposition: leaf,
            catalog_version: 1,
            started_at,
            ended_at,
            notes: None,
            recorded_at: ended_at + Duration::seconds(2),
            talk_seconds: talk,
            hold_seconds: hold,
            wrap_seconds: wrap,
            local_day: Some(self.day),
        }
    }

    /// The pre-sale a sale contact produced: registered a minute after the call by its agent,
    /// seven in ten approved by verification.
    fn presale(&self, contact: &Contact, n: u64) -> Option<Presale> {
        let id = contact.presale_id.as_deref()?;
        let catalog = campaign_catalog(&self.campaign, &self.client);
        let call_started = contact
            .started_at
            .format(&time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 instant");
        let mut presale = registered_presale(
            &catalog,
            &contact.external_id,
            Some(&call_started),
            contact.ended_at + Duration::minutes(1),
        );
        presale.id = backoffice_domain::presale::PresaleId::parse(id).expect("a pre-sale id");
        presale.agent_id = contact.agent_id.clone();
        presale.status = if mix(n << 4 | 11) % 10 < 7 {
            PresaleStatus::Approved
        } else {
            PresaleStatus::Rejected
        };
        Some(presale)
    }
}

// ----- DynamoDB's item size -------------------------------------------------------------------

/// An attribute value's size by DynamoDB's rules (as `infra/local/moto_server.py` prices it).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let mantissa = n.trim_start_matches(['-', '+']).split(['e', 'E']).next().unwrap_or("");
            let digits = mantissa.replace('.', "").trim_matches('0').len();
            digits.div_ceil(2) + 1 + usize::from(n.starts_with('-'))
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + value_size(x)).sum::<usize>(),
        _ => 0,
    }
}

/// A contact's day attempt item: the contact without its notes, plus its keys, as
/// `kpis::attempt_item` writes it (and as the SDK hands it back to `query_all`).
fn attempt_item(contact: &Contact) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(contact).expect("a contact as an item");
    item.remove("notes");
    item.insert(
        "pk".into(),
        AttributeValue::S(attempts_pk(&contact.campaign_id, contact.day())),
    );
    item.insert("sk".into(), AttributeValue::S(contact.id.clone()));
    item
}

fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

// ----- the emulator's ledger ------------------------------------------------------------------

fn ledger_url(env: &TestEnv) -> String {
    format!("{}/_local/requests", env.info.endpoint_url.trim_end_matches('/'))
}

async fn reset(env: &TestEnv) {
    let url = ledger_url(env);
    if let Err(e) = env.http.delete(&url).send().await {
        panic!("{url}: {e}");
    }
}

async fn ledger(env: &TestEnv) -> Value {
    let url = ledger_url(env);
    match env.http.get(&url).send().await {
        Ok(reply) => reply.json().await.unwrap_or_default(),
        Err(e) => panic!("{url}: {e}"),
    }
}

// ----- the job, in the child process ----------------------------------------------------------

async fn compute(campaign: &str, day: Date) {
    let env = env().await;
    let reports = Reports {
        store: DynamoKpiStore::new(
            env.dynamodb.clone(),
            env.table("ContactsTable"),
            env.table("PresalesTable"),
        ),
        campaigns: DynamoCampaignDirectory::new(env.dynamodb.clone(), env.table("ConfigTable")),
        exports: Arc::new(S3KpiExports::new(env.s3.clone(), env.table("ReportsBucket"))),
        publisher: Arc::new(MemoryPublisher::default()),
        clock: SystemClock,
        settings: Settings::default(),
    };
    let request = KpiDayRequested {
        campaign_id: campaign.to_owned(),
        day,
        forced: true,
        reason: "bench".into(),
    };
    let hwm_before = vm_kb("VmHWM");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let outcome = reports.compute(&request).await.expect("the campaign-day computed");
    let wall = started.elapsed().as_secs_f64();
    let rows = match outcome {
        DayOutcome::Computed { rows } => rows,
        DayOutcome::Unchanged => 0,
    };
    println!(
        "KPI_COMPUTE {}",
        json!({
            "rows": rows,
            "wall_s": wall,
            "cpu_s": cpu_seconds() - cpu_before,
            "hwm_before_kb": hwm_before,
            "hwm_kb": vm_kb("VmHWM"),
        })
    );
}

// ----- the bench ------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let args = args();
    if let Some((campaign, day)) = &args.compute {
        compute(campaign, *day).await;
        return;
    }
    let total = args.contacts;
    let zone = CampaignZone::parse("America/Lima").expect("Lima");
    let day = zone
        .local_date(OffsetDateTime::now_utc())
        .previous_day()
        .expect("a day before today");
    let client = unique("kbench");
    let campaign = format!("{client}-fibra");
    let plan = Day::new(&client, &campaign, day, &zone);
    println!("KPI benchmark: campaign {campaign} (America/Lima), day {day}, {total} contacts");

    // 1. The fold alone, on the generated day, before anything else grows this process.
    let rss_start = vm_kb("VmRSS");
    let hwm_start = vm_kb("VmHWM");
    let started = Instant::now();
    let contacts: Vec<Contact> = (0..total).map(|n| plan.contact(n)).collect();
    let presales: Vec<Presale> = contacts
        .iter()
        .zip(0..)
        .filter_map(|(contact, n)| plan.presale(contact, n))
        .collect();
    let sales: Vec<Sale> = presales.iter().map(Sale::from_presale).collect();
    let generated = started.elapsed().as_secs_f64();
    let rss_inputs = vm_kb("VmRSS");
    let hwm_inputs = vm_kb("VmHWM");
    let kpis = CampaignKpis {
        client_id: &client,
        campaign_id: &campaign,
        zone: &zone,
        base_records: Some(BASE_RECORDS),
    };
    let started = Instant::now();
    let rows = kpi::fold(&kpis, &contacts, &sales);
    let fold_time = started.elapsed().as_secs_f64();
    let hwm_fold = vm_kb("VmHWM");
    let started = Instant::now();
    let parquet = kpi_reports::parquet::encode(&rows, OffsetDateTime::now_utc()).expect("the rows as Parquet");
    let encode_time = started.elapsed().as_secs_f64();
    let hwm_encode = vm_kb("VmHWM");
    // The day's items as the SDK returns them, all held at once: what the job held before it
    // folded page by page (`KpiInputs::each_attempt`), kept as the figure that explains why.
    let rss_before_items = vm_kb("VmRSS");
    let items: Vec<HashMap<String, AttributeValue>> = contacts.iter().map(attempt_item).collect();
    let items_kb = vm_kb("VmRSS").saturating_sub(rss_before_items);
    let sizes: Vec<usize> = items.iter().map(item_size).collect();
    drop(items);
    let attempt_bytes: usize = sizes.iter().sum();
    let average_item = attempt_bytes as f64 / total.max(1) as f64;
    let verified = presales.iter().filter(|p| p.status == PresaleStatus::Approved).count();
    println!(
        "generated {total} contacts and {} pre-sales ({verified} verified) in {generated:.1} s",
        presales.len()
    );
    println!();
    println!("the fold alone (this process, debug build, no I/O):");
    println!(
        "  inputs in memory             {:.1} MB ({:.0} bytes per contact, pre-sales included)",
        mb(rss_inputs.saturating_sub(rss_start)),
        (rss_inputs.saturating_sub(rss_start) * 1024) as f64 / total.max(1) as f64
    );
    println!(
        "  kpi::fold                    {:.2} s, {} rows, peak RSS +{:.1} MB over the inputs",
        fold_time,
        rows.len(),
        mb(hwm_fold.saturating_sub(hwm_inputs.max(rss_inputs)))
    );
    println!(
        "  parquet::encode              {:.3} s, {} bytes, peak RSS +{:.1} MB",
        encode_time,
        parquet.len(),
        mb(hwm_encode.saturating_sub(hwm_fold))
    );
    println!(
        "  process VmHWM                {:.1} MB (at start {:.1} MB)",
        mb(hwm_encode),
        mb(hwm_start)
    );
    println!(
        "  day attempt item (DynamoDB)  {average_item:.0} bytes on average ({} to {}), {:.1} MB for the day",
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        attempt_bytes as f64 / MB
    );
    println!(
        "  the day's items as SDK values {:.1} MB held at once ({:.0} bytes per item; the job holds one page)",
        mb(items_kb),
        (items_kb * 1024) as f64 / total.max(1) as f64
    );
    drop(sizes);
    let expected_rows = rows.iter().filter(|row| row.day == day).count();
    drop(rows);
    drop(parquet);
    if args.fold_only {
        return;
    }
    let env = env().await;

    // 2. Seeding, as the store writes it.
    env.seed_campaign(&client, &campaign).await;
    env.dynamodb
        .update_item()
        .table_name(env.table("ConfigTable"))
        .key("pk", AttributeValue::S(format!("CAMPAIGN#{campaign}")))
        .key("sk", AttributeValue::S("CONFIG".into()))
        .update_expression("SET base_records = :b")
        .expression_attribute_values(":b", AttributeValue::N(BASE_RECORDS.to_string()))
        .send()
        .await
        .expect("the campaign's base");
    let contacts_table = env.table("ContactsTable");
    let contacts = Arc::new(contacts);
    let started = Instant::now();
    let chunk = 2_000usize;
    let mut tasks = tokio::task::JoinSet::new();
    let mut seeded = 0usize;
    for from in (0..contacts.len()).step_by(chunk) {
        if tasks.len() == 4 {
            seeded += tasks.join_next().await.expect("a task").expect("a seeding task");
            if seeded.is_multiple_of(20_000) {
                println!("  seeded {seeded} attempts ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
        let (client, table, contacts) = (env.dynamodb.clone(), contacts_table.clone(), Arc::clone(&contacts));
        tasks.spawn(async move {
            let part = &contacts[from..(from + chunk).min(contacts.len())];
            seed_attempts(&client, &table, part).await.expect("seeding attempts");
            part.len()
        });
    }
    while let Some(done) = tasks.join_next().await {
        seeded += done.expect("a seeding task");
    }
    let seed_attempts_time = started.elapsed().as_secs_f64();
    println!("seeded {seeded} day attempts in {seed_attempts_time:.0} s");
    let store = DynamoPresaleStore::new(env.dynamodb.clone(), env.table("PresalesTable"));
    let started = Instant::now();
    let presales = Arc::new(presales);
    let lanes = 4;
    for lane in 0..lanes {
        let (store, presales) = (store.clone(), Arc::clone(&presales));
        tasks.spawn(async move {
            for presale in presales.iter().skip(lane).step_by(lanes) {
                let audit = AuditEntry::presale(
                    presale,
                    presale.created_at,
                    &Actor::new(&presale.agent_id, "agent"),
                    "CREATED",
                )
                .seal(GENESIS_HASH);
                store.create(presale, &audit).await.expect("seeding a pre-sale");
            }
            0
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a seeding task");
    }
    println!(
        "seeded {} pre-sales in {:.0} s",
        presales.len(),
        started.elapsed().as_secs_f64()
    );
    drop(contacts);

    // 3. The job, alone in a child process, measured with the ledger.
    reset(&env).await;
    let exe = std::env::current_exe().expect("this example's path");
    let started = Instant::now();
    let output = Command::new(exe)
        .args(["--compute", "--campaign", &campaign, "--day", &day.to_string()])
        .output()
        .expect("the compute process");
    let child_wall = started.elapsed().as_secs_f64();
    let report = ledger(&env).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "compute failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let measured: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("KPI_COMPUTE "))
        .and_then(|line| serde_json::from_str(line).ok())
        .expect("the compute process's measurements");
    let computed_rows = measured["rows"].as_u64().unwrap_or(0);
    assert_eq!(
        computed_rows, expected_rows as u64,
        "the job's rows are the fold's rows of the day"
    );
    let parquet_bytes = env
        .s3
        .head_object()
        .bucket(env.table("ReportsBucket"))
        .key(partition_key(&client, &campaign, day))
        .send()
        .await
        .ok()
        .and_then(|head| head.content_length())
        .unwrap_or(0);

    let wall = measured["wall_s"].as_f64().unwrap_or(0.0);
    let cpu = measured["cpu_s"].as_f64().unwrap_or(0.0);
    let hwm = measured["hwm_kb"].as_u64().unwrap_or(0);
    let hwm_before = measured["hwm_before_kb"].as_u64().unwrap_or(0);
    println!();
    println!("the job (Reports::compute in its own process, debug build, against moto):");
    println!("  contacts                     {total}");
    println!("  rows produced                {computed_rows} (100 agents × 3 channels + the day's total)");
    println!("  wall time of compute         {wall:.1} s (the process: {child_wall:.1} s)");
    println!("  CPU time of our process      {cpu:.1} s (the rest of the wall time is moto)");
    println!(
        "  peak RSS (VmHWM)             {:.1} MB (before compute {:.1} MB)",
        mb(hwm),
        mb(hwm_before)
    );
    println!("  Parquet file                 {parquet_bytes} bytes");

    // The ledger: only this bench's own requests ("other"; the gateway's pollers are apart).
    let mut by_table: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let (mut requests, mut rcu, mut wcu, mut index_wcu) = (0u64, 0.0f64, 0u64, 0u64);
    println!();
    println!("  | service | operation | requests | read units | write units |");
    println!("  |---|---|---:|---:|---:|");
    for row in report["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
        if row["caller"] != "other" {
            continue;
        }
        let n = row["requests"].as_u64().unwrap_or(0);
        let (r, w) = (
            row["read_units"].as_f64().unwrap_or(0.0),
            row["write_units"].as_u64().unwrap_or(0),
        );
        requests += n;
        rcu += r;
        wcu += w;
        index_wcu += row["index_write_units"].as_u64().unwrap_or(0);
        println!(
            "  | {} | {} | {n} | {r:.1} | {w} |",
            row["service"].as_str().unwrap_or("?"),
            row["operation"].as_str().unwrap_or("?")
        );
        if row["operation"] == "Query" {
            for (table, entry) in row["by_resource"].as_object().into_iter().flatten() {
                let slot = by_table.entry(table.clone()).or_default();
                slot.0 += entry["requests"].as_u64().unwrap_or(0);
                slot.1 += entry["read_units"].as_f64().unwrap_or(0.0);
            }
        }
    }
    println!("  | total | | {requests} | {rcu:.1} | {wcu} ({index_wcu} on indexes) |");

    // The same on DynamoDB: the day's attempts in 1 MB pages; every other request as measured.
    let (moto_pages, attempt_rcu) = by_table
        .get(&contacts_table)
        .map(|(n, units)| (n.saturating_sub(1), *units))
        .unwrap_or_default();
    let pages = (attempt_bytes as f64 / MB).ceil() as u64;
    let dynamo_requests = requests - moto_pages + pages;
    let dynamo_attempt_rcu = attempt_bytes as f64 / 4096.0 / 2.0;
    let lambda_cpu = cpu / LAMBDA_512_CPU_SHARE;
    let round_trips = (requests - moto_pages) as f64 * 0.02 + pages as f64 * 0.15;
    println!();
    println!(
        "on DynamoDB (items of {average_item:.0} bytes on average, {:.1} MB for the day):",
        attempt_bytes as f64 / MB
    );
    println!("  Query pages of the attempts  {pages} of 1 MB (moto: {moto_pages}, it pages by its own item size)");
    println!(
        "  read units of the attempts   {dynamo_attempt_rcu:.0} (eventually consistent; the ledger: {attempt_rcu:.1})"
    );
    println!("  AWS requests of the job      {dynamo_requests} (moto: {requests})");
    println!();
    println!("what counts against one Lambda invocation (≤ 15 min, ≤ 512 MB):");
    println!(
        "  memory: the process's peak RSS, what Lambda reports as Max Memory Used: {:.1} MB of 512 ({})",
        mb(hwm),
        if mb(hwm) <= 512.0 { "within" } else { "OVER" }
    );
    println!(
        "  time: the invocation's wall time on AWS, not moto's: about {:.0} s = our CPU {cpu:.1} s on 2 cores \
         / {LAMBDA_512_CPU_SHARE:.2} vCPU at 512 MB ({lambda_cpu:.0} s, debug build) + {:.0} s of round trips \
         ({pages} pages × 150 ms, {} other requests × 20 ms); budget 900 s",
        lambda_cpu + round_trips,
        round_trips,
        requests - moto_pages
    );
}
