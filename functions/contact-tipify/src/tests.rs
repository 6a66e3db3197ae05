//! The tipification routes with in-memory adapters.

use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::testing::{FixedClock, campaign_catalog};
use backoffice_edge::http::Invocation;
use backoffice_edge::testing::{ApiEvent, Reply};
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::contacts::MemoryContactStore;
use backoffice_store::presales::MemoryPresaleStore;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// The instant every test of this module runs at.
const NOW: OffsetDateTime = datetime!(2026-11-23 16:00 UTC);

type Service = Tipify<MemoryContactStore, MemoryCampaignDirectory, MemoryPresaleStore, FixedClock>;

fn campaign(id: &str, client: &str) -> CampaignCatalog {
    campaign_catalog(id, client)
}

fn service() -> Service {
    Tipify {
        contacts: MemoryContactStore::default(),
        campaigns: MemoryCampaignDirectory::with([campaign("c1", "acme"), campaign("g1", "globex")]),
        presales: MemoryPresaleStore::new(),
        clock: FixedClock::at(NOW),
    }
}

async fn call(
    s: &Service,
    route: &str,
    path: &str,
    params: &[(&str, &str)],
    who: (&str, &str),
    body: Option<Value>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut event = ApiEvent::new(route).path(path).who(who.0, who.1, "acme");
    for (name, value) in params {
        event = event.param(name, value);
    }
    for (name, value) in query {
        event = event.query(name, value);
    }
    if let Some(body) = body {
        event = event.json(&body);
    }
    let reply = Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await);
    (reply.status, reply.body)
}

const AGENT: (&str, &str) = ("agent-7", "agent");

fn contact(external: &str, channel: &str, disposition: &str) -> Value {
    json!({
        "channel": channel, "direction": "outbound", "external_id": external, "customer_key": "phone:987654321",
        "campaign_id": "c1", "disposition": disposition,
        "started_at": "2026-11-23T10:00:00-05:00", "ended_at": "2026-11-23T10:03:00-05:00"
    })
}

#[tokio::test]
async fn contacts_on_several_channels_make_one_history_and_resends_count_once() {
    let s = service();
    for (ext, channel, code) in [
        ("d-1", "call", "NO_ANSWER"),
        ("w-1", "whatsapp", "NOT_INTERESTED"),
        ("e-1", "email", "BUSY"),
    ] {
        let (status, body) = call(
            &s,
            "POST /contacts",
            "/contacts",
            &[],
            AGENT,
            Some(contact(ext, channel, code)),
            &[],
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, again) = call(
        &s,
        "POST /contacts",
        "/contacts",
        &[],
        AGENT,
        Some(contact("d-1", "call", "NO_ANSWER")),
        &[],
    )
    .await;
    assert_eq!((status, again["external_id"].as_str()), (200, Some("d-1")));
    let (status, history) = call(
        &s,
        "GET /customers/{key}/contacts",
        "/customers/x/contacts",
        &[("key", "phone:+51987654321")],
        AGENT,
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["items"].as_array().map(Vec::len), Some(3));
    let (_, counters) = call(
        &s,
        "GET /campaigns/{id}/contact-counters",
        "/campaigns/c1/contact-counters",
        &[("id", "c1")],
        ("sup-1", "supervisor"),
        None,
        &[("day", "2026-11-23")],
    )
    .await;
    assert_eq!(counters["total"]["attempts"], 3);
    assert_eq!(counters["total"]["no_contact"], 2);
    assert_eq!(counters["total"]["effective"], 1);
}

#[tokio::test]
async fn bad_codes_other_clients_and_malformed_keys_are_refused() {
    let s = service();
    let cases = [
        (contact("x1", "call", "NOPE"), 422, Some("disposition")),
        (contact("x2", "call", "HOLDER"), 422, Some("disposition")),
        (
            {
                let mut c = contact("x3", "call", "NO_ANSWER");
                c["campaign_id"] = json!("g1");
                c
            },
            422,
            Some("campaign_id"),
        ),
        (
            {
                let mut c = contact("x4", "call", "NO_ANSWER");
                c["customer_key"] = json!("fax:1");
                c
            },
            422,
            Some("customer_key"),
        ),
        (
            {
                let mut c = contact("x5", "call", "NO_ANSWER");
                c["channel"] = json!("pigeon");
                c
            },
            422,
            Some("channel"),
        ),
        (contact("x6", "call", "SALE"), 422, Some("presale_id")),
    ];
    for (body, status, field) in cases {
        let (got, problem) = call(&s, "POST /contacts", "/contacts", &[], AGENT, Some(body), &[]).await;
        assert_eq!((got, problem["field"].as_str()), (status, field), "{problem}");
    }
    let (status, problem) = call(
        &s,
        "GET /customers/{key}/contacts",
        "/customers/x/contacts",
        &[("key", "nonsense")],
        AGENT,
        None,
        &[],
    )
    .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("key")));
    let (status, _) = call(
        &s,
        "POST /contacts",
        "/contacts",
        &[],
        ("sup-1", "supervisor"),
        Some(contact("x7", "call", "NO_ANSWER")),
        &[],
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn contactability_after_do_not_call_daily_limit_and_callbacks() {
    let service = service();
    let s = &service;
    let ask = |key: &'static str| async move {
        call(
            s,
            "GET /customers/{key}/contactability",
            "/customers/x/contactability",
            &[("key", key)],
            AGENT,
            None,
            &[("campaign", "c1")],
        )
        .await
    };
    assert_eq!(ask("phone:987654321").await.1["contactable"], true);
    let mut callback = contact("c-1", "call", "CALL_BACK");
    callback["callback_at"] = json!("2026-11-23T18:00:00-05:00");
    assert_eq!(
        call(s, "POST /contacts", "/contacts", &[], AGENT, Some(callback), &[])
            .await
            .0,
        201
    );
    let (_, answer) = ask("phone:987654321").await;
    assert_eq!(answer["contactable"], false);
    assert!(
        answer["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("CALLBACK_SCHEDULED"))
    );
    let (_, due) = call(
        s,
        "GET /callbacks",
        "/callbacks",
        &[],
        AGENT,
        None,
        &[("due_before", "2026-11-24T00:00:00Z")],
    )
    .await;
    assert_eq!(due["items"].as_array().map(Vec::len), Some(1));
    let (status, _) = call(
        s,
        "GET /callbacks",
        "/callbacks",
        &[],
        AGENT,
        None,
        &[("agent", "agent-8")],
    )
    .await;
    assert_eq!(status, 403);
    let mut dnc = contact("c-2", "call", "DO_NOT_CALL");
    dnc["customer_key"] = json!("email:ana@example.pe");
    assert_eq!(
        call(s, "POST /contacts", "/contacts", &[], AGENT, Some(dnc), &[])
            .await
            .0,
        201
    );
    let (_, answer) = ask("email:ana@example.pe").await;
    assert_eq!(
        (answer["contactable"].as_bool(), answer["reasons"][0].as_str()),
        (Some(false), Some("DO_NOT_CONTACT: last disposition DO_NOT_CALL"))
    );
    for i in 0..3 {
        let mut c = contact(&format!("n-{i}"), "call", "NO_ANSWER");
        c["customer_key"] = json!("doc:DNI:45678912");
        call(s, "POST /contacts", "/contacts", &[], AGENT, Some(c), &[]).await;
    }
    let (_, answer) = ask("doc:DNI:45678912").await;
    assert!(
        answer["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("DAILY_LIMIT")),
        "{answer}"
    );
}

#[tokio::test]
async fn admins_publish_validated_catalog_versions() {
    let s = service();
    let (status, catalog) = call(
        &s,
        "GET /campaigns/{id}/dispositions",
        "/campaigns/c1/dispositions",
        &[("id", "c1")],
        AGENT,
        None,
        &[],
    )
    .await;
    assert_eq!((status, catalog["version"].as_u64()), (200, Some(0)));
    let nodes = catalog["nodes"].clone();
    let (status, _) = call(
        &s,
        "PUT /campaigns/{id}/dispositions",
        "/campaigns/c1/dispositions",
        &[("id", "c1")],
        AGENT,
        Some(json!({"nodes": nodes})),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    let admin = ("adm-1", "admin");
    let (status, published) = call(
        &s,
        "PUT /campaigns/{id}/dispositions",
        "/campaigns/c1/dispositions",
        &[("id", "c1")],
        admin,
        Some(json!({"nodes": nodes, "based_on_version": 0})),
        &[],
    )
    .await;
    assert_eq!((status, published["version"].as_u64()), (200, Some(1)));
    let (status, _) = call(
        &s,
        "PUT /campaigns/{id}/dispositions",
        "/campaigns/c1/dispositions",
        &[("id", "c1")],
        admin,
        Some(json!({"nodes": nodes, "based_on_version": 0})),
        &[],
    )
    .await;
    assert_eq!(status, 409, "published over a newer version");
    let broken = json!({"nodes": [{"code": "EMPTY", "label": "Vacío"}]});
    let (status, problem) = call(
        &s,
        "PUT /campaigns/{id}/dispositions",
        "/campaigns/c1/dispositions",
        &[("id", "c1")],
        admin,
        Some(broken),
        &[],
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("leaf_without_family"))
    );
    let (status, _) = call(
        &s,
        "GET /campaigns/{id}/dispositions",
        "/campaigns/g1/dispositions",
        &[("id", "g1")],
        AGENT,
        None,
        &[],
    )
    .await;
    assert_eq!(status, 404, "another client's campaign");
    let (status, recorded) = call(
        &s,
        "POST /contacts",
        "/contacts",
        &[],
        AGENT,
        Some(contact("v-1", "sms", "BUSY")),
        &[],
    )
    .await;
    assert_eq!((status, recorded["catalog_version"].as_u64()), (201, Some(1)));
}

/// Issue 12: the attempt cap is per campaign-local day. Three attempts between 19:00 and 24:00
/// in Lima (already the next day in UTC) use up Lima's day; after Lima's midnight they reset.
#[tokio::test]
async fn the_daily_attempt_cap_follows_limas_day() {
    let service = service();
    let s = &service;
    let ask = || async move {
        call(
            s,
            "GET /customers/{key}/contactability",
            "/customers/x/contactability",
            &[("key", "phone:911222333")],
            AGENT,
            None,
            &[("campaign", "c1")],
        )
        .await
        .1
    };
    for (i, (started, ended)) in [
        ("2026-11-30T19:05:00-05:00", "2026-11-30T19:06:00-05:00"),
        ("2026-12-01T02:10:00Z", "2026-12-01T02:11:00Z"),
        ("2026-11-30T23:58:00-05:00", "2026-11-30T23:59:00-05:00"),
    ]
    .into_iter()
    .enumerate()
    {
        s.clock.set(datetime!(2026-12-01 05:00 UTC));
        let mut c = contact(&format!("lima-night-{i}"), "call", "NO_ANSWER");
        c["customer_key"] = json!("phone:911222333");
        (c["started_at"], c["ended_at"]) = (json!(started), json!(ended));
        assert_eq!(
            call(s, "POST /contacts", "/contacts", &[], AGENT, Some(c), &[]).await.0,
            201
        );
    }
    // 23:59:30 in Lima (04:59:30 UTC on 1 December): still Lima's 30 November, cap reached.
    s.clock.set(datetime!(2026-12-01 04:59:30 UTC));
    let answer = ask().await;
    assert_eq!(answer["contactable"], false, "{answer}");
    assert!(
        answer["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("DAILY_LIMIT")),
        "{answer}"
    );
    // 00:00:30 in Lima: a new day.
    s.clock.set(datetime!(2026-12-01 05:00:30 UTC));
    assert_eq!(ask().await["contactable"], true);
    // Lima's 30 November counted all three; its 1 December none.
    let (_, counters) = call(
        s,
        "GET /campaigns/{id}/contact-counters",
        "/campaigns/c1/contact-counters",
        &[("id", "c1")],
        ("sup-1", "supervisor"),
        None,
        &[("day", "2026-11-30")],
    )
    .await;
    assert_eq!(counters["total"]["attempts"], 3, "{counters}");
}
