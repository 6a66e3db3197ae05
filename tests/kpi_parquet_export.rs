//! The KPI Parquet export (issue 16) as programs nobody on the project wrote read it: a few days
//! of contacts and pre-sales are folded by `kpi::fold`, each campaign-day encoded by
//! `kpi_reports::parquet::encode` into the bucket's Hive layout in a temporary folder, and
//! infra/local/checks/read_kpi_parquet.py reads the files with pyarrow and DuckDB, holds their
//! types against the Glue table of infra/template.yaml, and prints the rows. Every count and
//! every rate must be what the JSON API prints for the same row ("0.3333", null on a zero
//! denominator). No local stack: only the venv of infra/local/test.

use std::path::{Path, PathBuf};
use std::process::Command;

use backoffice_domain::kpi::{self, CampaignKpis, KpiRow, Sale};
use backoffice_domain::presale::PresaleStatus;
use backoffice_domain::testing::{campaign_catalog, registered_presale};
use backoffice_domain::tipification::{
    Catalog, Contact, ContactContext, ContactDraft, LinkedPresale, default_nodes, record,
};
use backoffice_domain::zone::CampaignZone;
use e2e_tests::repo_root;
use kpi_reports::parquet::{encode, partition_prefix};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const CLIENT: &str = "acme";
const CAMPAIGN: &str = "c1";
const CUSTOMER: &str = "phone:987654321";

fn instant(raw: &str) -> OffsetDateTime {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).expect("an RFC 3339 instant")
}

/// One contact as `POST /contacts` records it: `disposition` from the catalog, timing in seconds
/// (talk, hold, wrap), five minutes long.
#[allow(clippy::too_many_arguments)]
fn contact(
    id: &str,
    agent: &str,
    channel: &str,
    disposition: &str,
    started_at: &str,
    timing: (Option<i64>, Option<i64>, Option<i64>),
    catalog: &Catalog,
    sale: Option<&str>,
    zone: &CampaignZone,
) -> Contact {
    let started = instant(started_at);
    let draft: ContactDraft = serde_json::from_value(json!({
        "channel": channel, "direction": "outbound", "external_id": format!("ext-{id}"),
        "customer_key": CUSTOMER, "campaign_id": CAMPAIGN, "disposition": disposition,
        "started_at": started_at,
        "ended_at": (started + time::Duration::minutes(5)).format(&time::format_description::well_known::Rfc3339).expect("format"),
        "presale_id": sale, "talk_seconds": timing.0, "hold_seconds": timing.1, "wrap_seconds": timing.2,
    }))
    .expect("a contact draft");
    let ctx = ContactContext {
        id: id.into(),
        client_id: CLIENT.into(),
        agent_id: agent.into(),
        catalog,
        linked_presale: sale.map(|_| LinkedPresale {
            campaign_id: CAMPAIGN.into(),
            agent_id: agent.into(),
            customer_keys: vec![backoffice_domain::tipification::CustomerKey::parse(CUSTOMER).expect("a key")],
        }),
        zone,
        now: started + time::Duration::minutes(6),
    };
    record(&draft, ctx).unwrap_or_else(|e| panic!("contact {id}: {e:?}"))
}

/// Two days of campaign c1: agent-7 sells on calls (one sale verified, one not), agent-8 only
/// reaches people without effect on WhatsApp and no one on calls; a call at 23:30 in Lima
/// (04:30 UTC the next day) counts on the first day; the catalog changes to version 2 mid-day.
fn rows() -> Vec<KpiRow> {
    let zone = CampaignZone::parse("America/Lima").expect("a zone");
    let v1 = Catalog {
        version: 1,
        nodes: default_nodes(),
    };
    let v2 = Catalog {
        version: 2,
        nodes: default_nodes(),
    };
    let catalog = campaign_catalog(CAMPAIGN, CLIENT);
    let mut sold = registered_presale(
        &catalog,
        "call-1",
        Some("2026-12-01T10:00:00-05:00"),
        datetime!(2026-12-01 15:04 UTC),
    );
    sold.status = PresaleStatus::Approved;
    let unverified = registered_presale(
        &catalog,
        "call-2",
        Some("2026-12-01T11:00:00-05:00"),
        datetime!(2026-12-01 16:03 UTC),
    );
    let p1 = sold.id.as_str().to_owned();
    let contacts = vec![
        contact(
            "k1",
            "agent-7",
            "call",
            "SALE",
            "2026-12-01T10:00:00-05:00",
            (Some(240), Some(30), Some(60)),
            &v1,
            Some(&p1),
            &zone,
        ),
        contact(
            "k2",
            "agent-7",
            "call",
            "NO_ANSWER",
            "2026-12-01T10:30:00-05:00",
            (None, None, None),
            &v1,
            None,
            &zone,
        ),
        contact(
            "k3",
            "agent-7",
            "call",
            "NOT_INTERESTED",
            "2026-12-01T11:00:00-05:00",
            (Some(100), None, Some(20)),
            &v2,
            None,
            &zone,
        ),
        contact(
            "k4",
            "agent-8",
            "whatsapp",
            "BROKEN_LINE",
            "2026-12-01T12:00:00-05:00",
            (None, None, None),
            &v2,
            None,
            &zone,
        ),
        contact(
            "k5",
            "agent-8",
            "call",
            "BUSY",
            "2026-12-01T23:30:00-05:00",
            (None, None, None),
            &v2,
            None,
            &zone,
        ),
        contact(
            "k6",
            "agent-8",
            "call",
            "NO_ANSWER",
            "2026-12-02T09:00:00-05:00",
            (None, None, None),
            &v2,
            None,
            &zone,
        ),
    ];
    let sales = [Sale::from_presale(&sold), Sale::from_presale(&unverified)];
    let campaign = CampaignKpis {
        client_id: CLIENT,
        campaign_id: CAMPAIGN,
        zone: &zone,
        base_records: Some(3000),
    };
    kpi::fold(&campaign, &contacts, &sales)
}

/// The venv's python; the test command (infra/local/test) creates it with the readers.
fn venv_python() -> PathBuf {
    let python = repo_root().join(".local/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run infra/local/test (or source infra/local/lib.sh and ensure_venv) to create .local/venv with pyarrow and duckdb from infra/local/requirements.txt",
        python.display()
    );
    python
}

/// Each campaign-day's rows in its own file under `root`, as kpi-reports writes them to S3.
fn write_export(root: &Path, rows: &[KpiRow], computed_at: OffsetDateTime) -> usize {
    let mut days: Vec<time::Date> = rows.iter().map(|r| r.day).collect();
    days.dedup();
    for day in &days {
        let of_day: Vec<KpiRow> = rows.iter().filter(|r| r.day == *day).cloned().collect();
        let bytes = encode(&of_day, computed_at).expect("the rows encode");
        let folder = root.join(partition_prefix(CLIENT, CAMPAIGN, *day).expect("a partition"));
        std::fs::create_dir_all(&folder).expect("partition folder");
        std::fs::write(folder.join("kpis.parquet"), bytes).expect("write the file");
    }
    days.len()
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

#[test]
fn pyarrow_and_duckdb_read_every_count_and_rate_of_the_export_as_the_api_prints_them() {
    let rows = rows();
    let computed_at = datetime!(2026-12-03 05:10:07.123456 UTC);
    let root = std::env::temp_dir().join(format!("kpi-parquet-export-{}", uuid::Uuid::new_v4()));
    assert_eq!(
        write_export(&root, &rows, computed_at),
        2,
        "two campaign-days, two files"
    );

    let python = venv_python();
    let output = Command::new(&python)
        .arg(repo_root().join("infra/local/checks/read_kpi_parquet.py"))
        .arg(&root)
        .arg("--template")
        .arg(repo_root().join("infra/template.yaml"))
        .output()
        .expect("the venv's python runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the venv lacks a reader: run infra/local/test (it installs infra/local/requirements.txt into .local/venv)\n{stderr}"
    );
    assert!(output.status.success(), "read_kpi_parquet.py failed:\n{stderr}");
    let read: Vec<Value> = serde_json::from_slice(&output.stdout).expect("a JSON list of rows");
    std::fs::remove_dir_all(&root).ok();

    assert_eq!(read.len(), rows.len(), "every row, no more: {read:#?}");
    let mut saw_null_rate = false;
    for row in &rows {
        let grain = if row.agent_id.is_none() { "day" } else { "agent_channel" };
        let day = row.day.to_string();
        let channel = row.channel.map(|c| c.as_str());
        let found: Vec<&Value> = read
            .iter()
            .filter(|r| {
                text(&r["dt"]) == Some(day.as_str())
                    && text(&r["grain"]) == Some(grain)
                    && text(&r["agent_id"]) == row.agent_id.as_deref()
                    && text(&r["channel"]) == channel
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{day} {grain} {:?} {channel:?} in {read:#?}",
            row.agent_id
        );
        let got = found[0];
        let what = format!("{day} {grain} {:?} {channel:?}", row.agent_id);

        let versions: Vec<String> = row.catalog_versions.iter().map(u32::to_string).collect();
        assert_eq!(got["definitions_version"], json!(row.definitions_version), "{what}");
        assert_eq!(got["catalog_versions"], json!(versions.join(",")), "{what}");
        assert_eq!(
            (&got["client_id"], &got["campaign_id"], &got["day"]),
            (&json!(CLIENT), &json!(CAMPAIGN), &json!(day)),
            "{what}"
        );
        assert_eq!(
            (&got["client"], &got["campaign"]),
            (&json!(CLIENT), &json!(CAMPAIGN)),
            "{what}: partition values"
        );
        assert_eq!(got["base_records"], json!(row.base_records), "{what}");
        assert_eq!(got["computed_at"], json!("2026-12-03T05:10:07.123Z"), "{what}");

        // Counts and rates exactly as the JSON API serializes this row.
        let api = serde_json::to_value(row).expect("the row as JSON");
        for section in ["counts", "rates"] {
            let fields = api[section].as_object().expect("an object");
            assert!(!fields.is_empty());
            for (name, wanted) in fields {
                assert_eq!(&got[name], wanted, "{what}: {name}");
                saw_null_rate |= section == "rates" && wanted.is_null();
            }
        }
    }
    assert!(saw_null_rate, "the export has a rate over a zero denominator");

    // The figures themselves, by hand, for the first day's total and agent-8's calls.
    let total = read
        .iter()
        .find(|r| r["dt"] == "2026-12-01" && r["grain"] == "day")
        .expect("the day total");
    assert_eq!((&total["agent_id"], &total["channel"]), (&Value::Null, &Value::Null));
    assert_eq!(
        (
            &total["attempts"],
            &total["contacts"],
            &total["presales"],
            &total["verified_sales"]
        ),
        (&json!(5), &json!(3), &json!(2), &json!(1))
    );
    assert_eq!(total["catalog_versions"], "1,2");
    assert_eq!(total["contact_rate"], "0.6000");
    assert_eq!(total["effective_rate"], "0.6667");
    assert_eq!(total["verification_pass_rate"], "0.5000");
    assert_eq!(total["penetration"], "0.0003", "1 / 3000 = 0.000333…");
    assert_eq!(total["aht_seconds"], "225.0000", "(240 + 30 + 60 + 100 + 20) / 2");
    assert_eq!(total["presales_per_talk_hour"], "21.1765", "2 · 3600 / 340");
    let agent8_calls = read
        .iter()
        .find(|r| r["dt"] == "2026-12-01" && r["agent_id"] == "agent-8" && r["channel"] == "call")
        .expect("agent-8's calls, with the 23:30 one");
    assert_eq!(agent8_calls["attempts"], 1);
    assert_eq!(agent8_calls["contact_rate"], "0.0000");
    assert_eq!(
        agent8_calls["effective_rate"],
        Value::Null,
        "no human contact: null, not 0"
    );
    assert_eq!(agent8_calls["aht_seconds"], Value::Null);
    let second = read.iter().filter(|r| r["dt"] == "2026-12-02").count();
    assert_eq!(second, 2, "the second day: its total and agent-8's calls");
}
