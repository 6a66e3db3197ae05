//! The ageing of a client with many invoices (issue 15, "Speed"), against a running stack:
//! seeds `AGEING_INVOICES` invoices (default 100,000) for a new client as the issuing
//! transaction writes them, `AGEING_OPEN_PERCENT` of them (default 25) still owed and the rest
//! paid, due over the last six months; then measures one ageing read from the store (the same
//! `AccountsView::open_invoices` the function calls) and through the HTTP API, and the first
//! page of `GET /invoices`, with the emulator's request ledger: requests, read units, time.
//!
//! `infra/bench/ageing.sh` starts a stack, runs this and stops it. The emulator's time is not
//! DynamoDB's: the requests and read units are what carry over (see the printed scaling).

use std::time::Instant;

use backoffice_domain::invoice::InvoiceDraft;
use backoffice_domain::receivable::age;
use backoffice_domain::testing::{billing_profile, invoice_request};
use backoffice_store::accounts::AccountsView;
use backoffice_store::invoices::DynamoInvoiceStore;
use e2e_tests::{caller, env, unique};
use serde_json::Value;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Requests and read units of the InvoicesTable since the ledger was reset.
async fn ledger(env: &e2e_tests::TestEnv, table: &str) -> (u64, f64) {
    let url = format!("{}/_local/requests", env.info.endpoint_url.trim_end_matches('/'));
    let report: Value = match env.http.get(&url).send().await {
        Ok(reply) => reply.json().await.unwrap_or_default(),
        Err(e) => panic!("{url}: {e}"),
    };
    let mut requests = 0;
    let mut read_units = 0.0;
    for row in report["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
        if row["service"] == "dynamodb" {
            requests += row["requests"].as_u64().unwrap_or(0);
            read_units += row["by_resource"][table]["read_units"]
                .as_f64()
                .or_else(|| row["read_units"].as_f64())
                .unwrap_or(0.0);
        }
    }
    (requests, read_units)
}

async fn reset(env: &e2e_tests::TestEnv) {
    let url = format!("{}/_local/requests", env.info.endpoint_url.trim_end_matches('/'));
    if let Err(e) = env.http.delete(&url).send().await {
        panic!("{url}: {e}");
    }
}

#[tokio::main]
async fn main() {
    let total = setting("AGEING_INVOICES", 100_000);
    let open_percent = setting("AGEING_OPEN_PERCENT", 25).min(100);
    let env = env().await;
    let table = env.table("InvoicesTable");
    let store = DynamoInvoiceStore::new(env.dynamodb.clone(), table.clone());
    let client = unique("bench");
    let profile = billing_profile(&client);
    let today = time::OffsetDateTime::now_utc().date();

    println!("ageing benchmark: {total} invoices of client {client}, {open_percent}% still owed");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let mut open = 0u64;
    for n in 1..=total {
        let at = time::OffsetDateTime::now_utc();
        let Ok(mut invoice) = InvoiceDraft::prepare(&invoice_request(&format!("bench-{n}"), &client), &profile, at)
            .and_then(|d| d.numbered(n))
        else {
            panic!("invoice {n} could not be prepared");
        };
        // Issued over the last six months, due 30 days later: every bucket gets some.
        let days_back = i64::try_from(n % 180).unwrap_or(0);
        invoice.issue_date = today - time::Duration::days(days_back);
        invoice.due_date = invoice.issue_date + time::Duration::days(30);
        let is_open = n % 100 < open_percent;
        open += u64::from(is_open);
        batch.push((invoice, is_open));
        if batch.len() == 1000 || n == total {
            if let Err(e) = store.seed_issued(&batch).await {
                panic!("seeding: {e}");
            }
            batch.clear();
            if n % 10_000 == 0 {
                println!("  seeded {n} ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
    }
    println!(
        "seeded {total} invoices ({open} open) in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // One ageing, from the store, as the function computes it.
    reset(&env).await;
    let started = Instant::now();
    let invoices = match store.open_invoices(&client, today).await {
        Ok(invoices) => invoices,
        Err(e) => panic!("open invoices: {e}"),
    };
    let receivables: Vec<_> = invoices
        .iter()
        .map(|i| backoffice_domain::receivable::Receivable {
            buyer: i.buyer.document.number().to_owned(),
            due_date: i.due_date,
            outstanding: i.account.outstanding(),
        })
        .collect();
    let ageing = age(today, &receivables);
    let store_time = started.elapsed();
    let (requests, read_units) = ledger(&env, &table).await;
    let buckets = ageing.first().map(|a| a.total).unwrap_or_default();
    assert_eq!(
        invoices.len() as u64,
        open,
        "the open index holds exactly the open invoices"
    );
    println!();
    println!("ageing from the store ({} open invoices read):", invoices.len());
    println!("  DynamoDB requests  {requests}");
    println!("  read units         {read_units:.1}");
    println!("  time (emulator)    {:.2} s", store_time.as_secs_f64());
    println!(
        "  buckets (minor)    not due {} | 1-30 {} | 31-60 {} | 61-90 {} | >90 {} | total {}",
        buckets.not_due,
        buckets.days_1_30,
        buckets.days_31_60,
        buckets.days_61_90,
        buckets.over_90,
        buckets.total()
    );

    // The same through the API (the function, its token check, its JSON).
    let finance = caller("fin-1", "finance", &[&client]);
    reset(&env).await;
    let started = Instant::now();
    let reply = env
        .http
        .execute(match env.as_caller(&finance, "GET", "/receivables/aging").build() {
            Ok(request) => request,
            Err(e) => panic!("request: {e}"),
        })
        .await;
    let api_time = started.elapsed();
    let (api_requests, api_read_units) = ledger(&env, &table).await;
    match reply {
        Ok(reply) => println!(
            "GET /receivables/aging: HTTP {} in {:.2} s; {api_requests} DynamoDB requests, {api_read_units:.1} read units",
            reply.status(),
            api_time.as_secs_f64()
        ),
        Err(e) => println!(
            "GET /receivables/aging failed after {:.2} s: {e}",
            api_time.as_secs_f64()
        ),
    }

    // The first page of the listing (by-client index): independent of the client's size.
    reset(&env).await;
    let started = Instant::now();
    let page = env
        .http
        .execute(match env.as_caller(&finance, "GET", "/invoices?limit=50").build() {
            Ok(request) => request,
            Err(e) => panic!("request: {e}"),
        })
        .await;
    let (page_requests, page_read_units) = ledger(&env, &table).await;
    if let Ok(page) = page {
        println!(
            "GET /invoices?limit=50: HTTP {} in {:.2} s; {page_requests} DynamoDB requests, {page_read_units:.1} read units",
            page.status(),
            started.elapsed().as_secs_f64()
        );
    }

    // How it scales: one 1 MB page per ~N entries, half a read unit per 4 KB read.
    let per_entry = if open > 0 {
        read_units * 2.0 * 4096.0 / open as f64
    } else {
        0.0
    };
    println!();
    println!("scaling: the ageing reads only the open index; about {per_entry:.0} bytes per open invoice,");
    println!(
        "  so {:.0} open invoices per 1 MB query page and {:.2} read units per 1,000 open invoices",
        if per_entry > 0.0 { 1_048_576.0 / per_entry } else { 0.0 },
        if open > 0 {
            read_units * 1000.0 / open as f64
        } else {
            0.0
        }
    );
    println!("  (settled invoices cost nothing: they are not on the index).");
}
