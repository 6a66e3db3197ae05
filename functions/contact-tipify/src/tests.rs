//! The tipification routes with in-memory adapters.

use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::testing::{FixedClock, campaign_catalog};
use backoffice_domain::tipification::callback::CallbackStatus;
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

// --- Callbacks: lifecycle, cancellation, pages, overdue ------------------------------------------

/// One request as `who` (sub, role, clients).
async fn send(
    s: &Service,
    route: &str,
    path: &str,
    who: (&str, &str, &str),
    body: Option<Value>,
    query: &[(&str, &str)],
) -> Reply {
    let mut event = ApiEvent::new(route).path(path).who(who.0, who.1, who.2);
    if let Some(id) = path.strip_prefix("/callbacks/").and_then(|p| p.strip_suffix("/cancel")) {
        event = event.param("id", id);
    }
    for (name, value) in query {
        event = event.query(name, value);
    }
    if let Some(body) = body {
        event = event.json(&body);
    }
    Reply::from(s.handle(event.build(), &Invocation::ending_after(NOW, 10)).await)
}

/// A contact of `key` started at `started` (Lima time, on 23 November), scheduling a callback
/// at `callback_at` if given; its id.
async fn contact_at(
    s: &Service,
    agent: &str,
    external: &str,
    key: &str,
    started: &str,
    callback_at: Option<&str>,
) -> String {
    let mut body = contact(
        external,
        "call",
        if callback_at.is_some() {
            "CALL_BACK"
        } else {
            "NO_ANSWER"
        },
    );
    body["customer_key"] = json!(key);
    body["started_at"] = json!(format!("2026-11-23T{started}:00-05:00"));
    body["ended_at"] = json!(format!("2026-11-23T{started}:30-05:00"));
    if let Some(at) = callback_at {
        body["callback_at"] = json!(at);
    }
    let reply = send(
        s,
        "POST /contacts",
        "/contacts",
        (agent, "agent", "acme"),
        Some(body),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("an id").to_owned()
}

async fn due_list(s: &Service, agent: &str, query: &[(&str, &str)]) -> Reply {
    let mut query = query.to_vec();
    query.push(("due_before", "2026-12-31T00:00:00Z"));
    send(
        s,
        "GET /callbacks",
        "/callbacks",
        (agent, "agent", "acme"),
        None,
        &query,
    )
    .await
}

fn ids(list: &Reply) -> Vec<String> {
    list.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn stored(s: &Service, id: &str) -> Callback {
    s.contacts.callback(id).await.expect("store").expect("a callback")
}

#[tokio::test]
async fn a_new_callback_supersedes_the_pending_one_and_a_later_contact_of_anyone_completes_it() {
    let s = service();
    let key = "phone:+51911000001";
    let first = contact_at(&s, "agent-7", "cb-1", key, "10:00", Some("2026-11-24T10:00:00-05:00")).await;
    let listed = due_list(&s, "agent-7", &[]).await;
    assert_eq!(ids(&listed), vec![first.clone()]);
    assert_eq!(listed.body["items"][0]["status"], "SCHEDULED");
    assert_eq!(listed.body["items"][0]["due_at"], "2026-11-24T10:00:00-05:00");

    // A new callback for the same customer and campaign replaces it.
    let second = contact_at(&s, "agent-7", "cb-2", key, "10:20", Some("2026-11-25T10:00:00-05:00")).await;
    assert_eq!(ids(&due_list(&s, "agent-7", &[]).await), vec![second.clone()]);
    let superseded = stored(&s, &first).await;
    assert_eq!(superseded.status, CallbackStatus::Superseded);
    assert_eq!(
        superseded.closed.as_ref().and_then(|c| c.superseded_by.as_deref()),
        Some(second.as_str())
    );

    // A contact that started before the pending callback was asked for changes nothing.
    contact_at(&s, "agent-7", "late-report", key, "10:10", None).await;
    assert_eq!(stored(&s, &second).await.status, CallbackStatus::Scheduled);

    // Any later contact, by any agent, of any disposition, completes it.
    let called_back = contact_at(&s, "agent-8", "done-1", key, "10:40", None).await;
    let done = stored(&s, &second).await;
    assert_eq!(done.status, CallbackStatus::Done);
    assert_eq!(
        done.closed.as_ref().map(|c| (c.by.as_str(), c.contact_id.as_deref())),
        Some(("agent-8", Some(called_back.as_str())))
    );
    assert_eq!(ids(&due_list(&s, "agent-7", &[]).await), Vec::<String>::new());
    let (_, answer) = call(
        &s,
        "GET /customers/{key}/contactability",
        "/customers/x/contactability",
        &[("key", key)],
        AGENT,
        None,
        &[("campaign", "c1")],
    )
    .await;
    // Four attempts today reach the daily limit, but no callback holds the customer any more.
    assert_eq!(
        answer["reasons"],
        json!(["DAILY_LIMIT: 4 of 3 attempts today"]),
        "{answer}"
    );

    // Resending that contact changes nothing, and a further contact finds nothing to complete.
    let mut resend = contact("done-1", "call", "NO_ANSWER");
    resend["customer_key"] = json!(key);
    (resend["started_at"], resend["ended_at"]) =
        (json!("2026-11-23T10:40:00-05:00"), json!("2026-11-23T10:40:30-05:00"));
    let again = send(
        &s,
        "POST /contacts",
        "/contacts",
        ("agent-8", "agent", "acme"),
        Some(resend),
        &[],
    )
    .await;
    assert_eq!(again.status, 200);
    contact_at(&s, "agent-7", "after", key, "10:50", None).await;
    assert_eq!(stored(&s, &second).await, done);
    assert_eq!(stored(&s, &first).await, superseded);
}

#[tokio::test]
async fn callbacks_are_cancelled_by_their_agent_a_supervisor_or_an_admin_with_a_reason() {
    let s = service();
    let key = "phone:+51911000002";
    let id = contact_at(&s, "agent-7", "cb-1", key, "10:00", Some("2026-11-24T10:00:00-05:00")).await;
    let path = format!("/callbacks/{id}/cancel");
    let cancel = |who: (&'static str, &'static str, &'static str), body: Value| {
        let (s, path) = (&s, path.clone());
        async move { send(s, "POST /callbacks/{id}/cancel", &path, who, Some(body), &[]).await }
    };
    let reason = json!({"reason": "El cliente compró en tienda"});
    for (who, status) in [
        (("val-1", "validator", "acme"), 403),
        (("fin-1", "finance", "acme"), 403),
        (("agent-8", "agent", "acme"), 404),
        (("agent-7", "agent", "globex"), 404),
        (("sup-1", "supervisor", "globex"), 404),
    ] {
        assert_eq!(cancel(who, reason.clone()).await.status, status, "{who:?}");
    }
    for (body, code) in [
        (json!({}), "missing field `reason`"),
        (json!({"reason": "   "}), "say why"),
        (json!({"reason": "x".repeat(501)}), "at most 500"),
    ] {
        let refused = cancel(("agent-7", "agent", "acme"), body).await;
        assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("reason")));
        assert!(
            refused.body["detail"].as_str().is_some_and(|d| d.contains(code)),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        stored(&s, &id).await.status,
        CallbackStatus::Scheduled,
        "refusals change nothing"
    );

    let cancelled = cancel(("agent-7", "agent", "acme"), reason.clone()).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(
        (
            cancelled.body["status"].as_str(),
            cancelled.body["closed"]["reason"].as_str(),
            cancelled.body["closed"]["by"].as_str()
        ),
        (Some("CANCELLED"), Some("El cliente compró en tienda"), Some("agent-7"))
    );
    assert_eq!(cancelled.header("idempotent-replayed"), None);
    // A retried request (or anyone else's) finds it cancelled: the same answer, nothing changed.
    for who in [("agent-7", "agent", "acme"), ("adm-1", "admin", "acme")] {
        let again = cancel(who, json!({"reason": "otra"})).await;
        assert_eq!((again.status, again.header("idempotent-replayed")), (200, Some("true")));
        assert_eq!(again.body, cancelled.body);
    }
    assert_eq!(ids(&due_list(&s, "agent-7", &[]).await), Vec::<String>::new());
    let (_, answer) = call(
        &s,
        "GET /customers/{key}/contactability",
        "/customers/x/contactability",
        &[("key", key)],
        AGENT,
        None,
        &[("campaign", "c1")],
    )
    .await;
    assert_eq!(answer["contactable"], true, "{answer}");
    // The next contact has nothing left to complete.
    contact_at(&s, "agent-7", "after", key, "10:30", None).await;
    assert_eq!(stored(&s, &id).await.status, CallbackStatus::Cancelled);

    // A callback that is done or superseded is not cancelled: 409 with its state.
    let other = contact_at(
        &s,
        "agent-7",
        "cb-2",
        "phone:+51911000003",
        "10:00",
        Some("2026-11-24T11:00:00-05:00"),
    )
    .await;
    contact_at(&s, "agent-7", "done", "phone:+51911000003", "10:30", None).await;
    let closed = send(
        &s,
        "POST /callbacks/{id}/cancel",
        &format!("/callbacks/{other}/cancel"),
        ("sup-1", "supervisor", "acme"),
        Some(reason.clone()),
        &[],
    )
    .await;
    assert_eq!(
        (
            closed.status,
            closed.problem(),
            closed.body["current"]["status"].as_str()
        ),
        (409, "callback-closed", Some("DONE"))
    );
    let unknown = send(
        &s,
        "POST /callbacks/{id}/cancel",
        "/callbacks/nope/cancel",
        ("sup-1", "supervisor", "acme"),
        Some(reason),
        &[],
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn due_lists_page_with_a_cursor_soonest_first() {
    let s = service();
    let mut expected = Vec::new();
    // Five customers, due on five days, recorded in another order.
    for (i, day) in [(1, 28), (2, 25), (3, 27), (4, 24), (5, 26)] {
        let id = contact_at(
            &s,
            "agent-7",
            &format!("cb-{i}"),
            &format!("phone:+5191100001{i}"),
            "10:00",
            Some(&format!("2026-11-{day}T09:00:00-05:00")),
        )
        .await;
        expected.push((day, id));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    // Another agent's callback is on their list only.
    contact_at(
        &s,
        "agent-8",
        "theirs",
        "phone:+51911000099",
        "10:00",
        Some("2026-11-24T08:00:00-05:00"),
    )
    .await;

    for (who, query) in [
        (
            ("agent-7", "agent", "acme"),
            vec![("due_before", "2026-12-31T00:00:00Z")],
        ),
        (
            ("sup-1", "supervisor", "acme"),
            vec![("agent", "agent-7"), ("due_before", "2026-12-31T00:00:00Z")],
        ),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let mut q = query.clone();
            q.push(("limit", "2"));
            if let Some(c) = cursor.as_deref() {
                q.push(("cursor", c));
            }
            let page = send(&s, "GET /callbacks", "/callbacks", who, None, &q).await;
            assert_eq!(page.status, 200, "{}", page.body);
            pages.push(ids(&page).len());
            seen.extend(ids(&page));
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!((pages, &seen), (vec![2, 2, 1], &expected), "{who:?}");
    }
    // A campaign's list has every agent's.
    let campaign = send(
        &s,
        "GET /callbacks",
        "/callbacks",
        ("sup-1", "supervisor", "acme"),
        None,
        &[("campaign", "c1"), ("limit", "100")],
    )
    .await;
    assert_eq!(ids(&campaign).len(), 6, "{}", campaign.body);

    let long_agent = "a".repeat(129);
    for (query, field) in [
        (vec![("cursor", "garbage")], "cursor"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("due_before", "tomorrow")], "due_before"),
        (vec![("page", "2")], "page"),
        (vec![("agent", long_agent.as_str())], "agent"),
    ] {
        let bad = send(
            &s,
            "GET /callbacks",
            "/callbacks",
            ("agent-7", "agent", "acme"),
            None,
            &query,
        )
        .await;
        assert_eq!(
            (bad.status, bad.body["field"].as_str()),
            (400, Some(field)),
            "{query:?}"
        );
    }
    // A cursor past the list's range (a later due_before's) is refused, not a server error.
    let wide = due_list(&s, "agent-7", &[("limit", "4")]).await;
    let cursor = wide.body["next_cursor"].as_str().expect("a cursor").to_owned();
    let narrow = send(
        &s,
        "GET /callbacks",
        "/callbacks",
        ("agent-7", "agent", "acme"),
        None,
        &[("cursor", &cursor), ("due_before", "2026-11-25T00:00:00Z")],
    )
    .await;
    assert_eq!((narrow.status, narrow.body["field"].as_str()), (400, Some("cursor")));
}

#[tokio::test]
async fn supervisors_list_a_campaigns_overdue_callbacks_oldest_first() {
    let s = service();
    let mut by_due = Vec::new();
    for (i, hour) in [(1, "14"), (2, "12"), (3, "13")] {
        let id = contact_at(
            &s,
            if i == 2 { "agent-8" } else { "agent-7" },
            &format!("cb-{i}"),
            &format!("phone:+5191100002{i}"),
            "10:00",
            Some(&format!("2026-11-23T{hour}:00:00-05:00")),
        )
        .await;
        by_due.push((hour, id));
    }
    by_due.sort();
    let overdue = |who: (&'static str, &'static str, &'static str), query: Vec<(&'static str, &'static str)>| {
        let s = &s;
        async move { send(s, "GET /callbacks", "/callbacks", who, None, &query).await }
    };
    let list = vec![("campaign", "c1"), ("overdue", "true")];
    // 11:00 in Lima: nothing is due yet.
    let none = overdue(SUPERVISOR_ACME, list.clone()).await;
    assert_eq!((none.status, ids(&none).len()), (200, 0), "{}", none.body);
    // 13:30: the 12:00 and 13:00 ones are overdue, the oldest first; the 14:00 one is not.
    s.clock.set(datetime!(2026-11-23 18:30 UTC));
    let late = overdue(SUPERVISOR_ACME, list.clone()).await;
    assert_eq!(
        ids(&late),
        vec![by_due[0].1.clone(), by_due[1].1.clone()],
        "{}",
        late.body
    );
    assert_eq!(late.body["overdue"], true);
    let admin = overdue(("adm-1", "admin", "acme"), list.clone()).await;
    assert_eq!(ids(&admin), ids(&late));
    // Exactly at 14:00 the last one is due, not yet overdue.
    s.clock.set(datetime!(2026-11-23 19:00 UTC));
    assert_eq!(ids(&overdue(SUPERVISOR_ACME, list.clone()).await).len(), 2);
    s.clock.set(datetime!(2026-11-23 19:00:01 UTC));
    assert_eq!(ids(&overdue(SUPERVISOR_ACME, list.clone()).await).len(), 3);
    // Done ones leave the list.
    let mut done = contact("done", "call", "NO_ANSWER");
    done["customer_key"] = json!("phone:+51911000022");
    (done["started_at"], done["ended_at"]) = (json!("2026-11-23T13:50:00-05:00"), json!("2026-11-23T13:51:00-05:00"));
    assert_eq!(
        send(
            &s,
            "POST /contacts",
            "/contacts",
            ("agent-8", "agent", "acme"),
            Some(done),
            &[]
        )
        .await
        .status,
        201
    );
    assert_eq!(
        ids(&overdue(SUPERVISOR_ACME, list.clone()).await),
        vec![by_due[1].1.clone(), by_due[2].1.clone()]
    );

    for (who, query, status, field) in [
        (("agent-7", "agent", "acme"), list.clone(), 403, None),
        (("val-1", "validator", "acme"), list.clone(), 403, None),
        (("agent-7", "agent", "acme"), vec![("campaign", "c1")], 403, None),
        (SUPERVISOR_ACME, vec![("overdue", "true")], 400, Some("campaign")),
        (
            SUPERVISOR_ACME,
            vec![("campaign", "c1"), ("overdue", "yes")],
            400,
            Some("overdue"),
        ),
        (
            SUPERVISOR_ACME,
            vec![
                ("campaign", "c1"),
                ("overdue", "true"),
                ("due_before", "2026-11-23T20:00:00Z"),
            ],
            400,
            Some("due_before"),
        ),
        (
            SUPERVISOR_ACME,
            vec![("campaign", "c1"), ("agent", "agent-7")],
            400,
            Some("agent"),
        ),
        (
            SUPERVISOR_ACME,
            vec![("campaign", "g1"), ("overdue", "true")],
            404,
            None,
        ),
        (
            SUPERVISOR_ACME,
            vec![("campaign", "c1"), ("client", "globex")],
            404,
            None,
        ),
        (("sup-1", "supervisor", "globex"), list.clone(), 404, None),
    ] {
        let reply = overdue(who, query.clone()).await;
        assert_eq!(
            (reply.status, reply.body["field"].as_str()),
            (status, field),
            "{who:?} {query:?}: {}",
            reply.body
        );
    }
}

const SUPERVISOR_ACME: (&str, &str, &str) = ("sup-1", "supervisor", "acme");

#[tokio::test]
async fn timing_is_stored_with_the_contact_and_bad_values_name_their_field() {
    let s = service();
    // The contact lasts 3 minutes: 180 s.
    let timed = |external: &str, timing: Value| {
        let mut body = contact(external, "call", "NOT_INTERESTED");
        if let (Some(body), Some(timing)) = (body.as_object_mut(), timing.as_object()) {
            body.extend(timing.clone());
        }
        body
    };
    let (status, created) = call(
        &s,
        "POST /contacts",
        "/contacts",
        &[],
        AGENT,
        Some(timed(
            "t-1",
            json!({"talk_seconds": 150, "hold_seconds": 30, "wrap_seconds": 400}),
        )),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (
            &created["talk_seconds"],
            &created["hold_seconds"],
            &created["wrap_seconds"]
        ),
        (&json!(150), &json!(30), &json!(400))
    );
    let (status, untimed) = call(
        &s,
        "POST /contacts",
        "/contacts",
        &[],
        AGENT,
        Some(timed("t-2", json!({}))),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{untimed}");
    assert!(untimed.get("talk_seconds").is_none(), "absent, not 0: {untimed}");
    let (_, history) = call(
        &s,
        "GET /customers/{key}/contacts",
        "/customers/x/contacts",
        &[("key", "phone:+51987654321")],
        AGENT,
        None,
        &[],
    )
    .await;
    let stored: Vec<(Option<&str>, Option<u64>)> = history["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|c| (c["external_id"].as_str(), c["wrap_seconds"].as_u64()))
                .collect()
        })
        .unwrap_or_default();
    assert!(stored.contains(&(Some("t-1"), Some(400))), "{history}");
    assert!(stored.contains(&(Some("t-2"), None)), "{history}");

    for (n, (timing, field, code)) in [
        (json!({"talk_seconds": -1}), "talk_seconds", Some("negative")),
        (json!({"hold_seconds": 90_000}), "hold_seconds", Some("too_long")),
        (json!({"wrap_seconds": 86_401}), "wrap_seconds", Some("too_long")),
        (
            json!({"talk_seconds": 170, "hold_seconds": 11}),
            "talk_seconds",
            Some("exceeds_duration"),
        ),
        (json!({"hold_seconds": 181}), "hold_seconds", Some("exceeds_duration")),
        // Not an integer: the body's shape, still a 422 naming the field.
        (json!({"talk_seconds": 1.5}), "talk_seconds", None),
        (json!({"wrap_seconds": "60"}), "wrap_seconds", None),
    ]
    .into_iter()
    .enumerate()
    {
        let body = timed(&format!("bad-{n}"), timing.clone());
        let (status, problem) = call(&s, "POST /contacts", "/contacts", &[], AGENT, Some(body), &[]).await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (422, Some(field)),
            "{timing}: {problem}"
        );
        if let Some(code) = code {
            assert!(problem.to_string().contains(code), "{timing}: {problem}");
        }
    }
}
