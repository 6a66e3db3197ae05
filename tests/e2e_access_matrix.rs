//! Who may do what: every HTTP route of infra/template.yaml × every role (and no token) × the
//! caller's token listing the record's client or another one × the record being the caller's
//! own or someone else's, each cell with the status it must answer. The table below is the
//! rule book (README, Security); the handlers must agree with it.
//!
//! A route added to the template without rows here, or rows left for a route the template no
//! longer has, fail `the_table_has_a_row_for_every_cell_of_every_template_route`.
//!
//! Axes of a row `(route, role, tenant, record, status)`:
//! - role: `Anon` is a request without a token (and without a courier signature);
//! - tenant: `OwnClient`, the token lists the record's client; `OtherClient`, it lists only
//!   another (seeded) client; `AnyClient` only for `Anon`;
//! - record: what ties the caller to the record, per route (see the comment above its rows):
//!   `OwnRecord` (the agent who registered the pre-sale, the validator holding its claim),
//!   `OtherRecord` (another agent, another validator of the same client), `SelfRegistered`
//!   (a validator token of the agent who registered it: segregation of duties), `AnyRecord`
//!   (the role has no such tie, or the route has no record).
//!
//! Besides the status: a 200 list answer shows the record to whoever may read it and never to
//! another agent, and a 409/422 refusal is the authorization one (`refusal_mark`), not some
//! other validation.
//!
//! Cells of one route run in table order (so a state-changing success comes after the refusals
//! that share its record); routes run concurrently. Each route works on its own tenant where its
//! cells change state. All failing cells are reported together.
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_access_matrix` (an absolute path: tests run in `tests/`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use e2e_tests::desk::{Desk, desk, join_all};
use e2e_tests::{Caller, Reply, caller, repo_root, unique};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Anon,
    Agent,
    Validator,
    Supervisor,
    Finance,
    Admin,
}
use Role::*;

impl Role {
    const WITH_TOKEN: [Role; 5] = [Agent, Validator, Supervisor, Finance, Admin];

    fn claim(self) -> &'static str {
        match self {
            Anon => "-",
            Agent => "agent",
            Validator => "validator",
            Supervisor => "supervisor",
            Finance => "finance",
            Admin => "admin",
        }
    }
}

// Variants are imported bare into the table, where "OwnClient" and "OtherRecord" say which axis.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tenant {
    AnyClient,
    OwnClient,
    OtherClient,
}
use Tenant::*;

#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Record {
    AnyRecord,
    OwnRecord,
    OtherRecord,
    SelfRegistered,
}
use Record::*;

type Row = (&'static str, Role, Tenant, Record, u16);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Agents register, for a campaign of their clients only (another client's campaign reads
    // as unknown: 422 at campaign_id). No record. Every cell sends the same body and
    // Idempotency-Key, as an app retrying would: a stored answer never crosses tenants.
    ("POST /presales", Anon, AnyClient, AnyRecord, 401),
    ("POST /presales", Agent, OwnClient, AnyRecord, 201),
    ("POST /presales", Agent, OtherClient, AnyRecord, 422),
    ("POST /presales", Validator, OwnClient, AnyRecord, 403),
    ("POST /presales", Validator, OtherClient, AnyRecord, 403),
    ("POST /presales", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /presales", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /presales", Finance, OwnClient, AnyRecord, 403),
    ("POST /presales", Finance, OtherClient, AnyRecord, 403),
    ("POST /presales", Admin, OwnClient, AnyRecord, 403),
    ("POST /presales", Admin, OtherClient, AnyRecord, 403),
    // A campaign's list. Record: a pre-sale in it; another agent gets a 200 that must not list
    // it; another client's campaign is a 404.
    ("GET /presales", Anon, AnyClient, AnyRecord, 401),
    ("GET /presales", Agent, OwnClient, OwnRecord, 200),
    ("GET /presales", Agent, OwnClient, OtherRecord, 200),
    ("GET /presales", Agent, OtherClient, OwnRecord, 404),
    ("GET /presales", Agent, OtherClient, OtherRecord, 404),
    ("GET /presales", Validator, OwnClient, AnyRecord, 200),
    ("GET /presales", Validator, OtherClient, AnyRecord, 404),
    ("GET /presales", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /presales", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /presales", Finance, OwnClient, AnyRecord, 200),
    ("GET /presales", Finance, OtherClient, AnyRecord, 404),
    ("GET /presales", Admin, OwnClient, AnyRecord, 200),
    ("GET /presales", Admin, OtherClient, AnyRecord, 404),
    // Agents read their own pre-sales; everyone else with the client reads any of them.
    ("GET /presales/{id}", Anon, AnyClient, AnyRecord, 401),
    ("GET /presales/{id}", Agent, OwnClient, OwnRecord, 200),
    ("GET /presales/{id}", Agent, OwnClient, OtherRecord, 404),
    ("GET /presales/{id}", Agent, OtherClient, OwnRecord, 404),
    ("GET /presales/{id}", Agent, OtherClient, OtherRecord, 404),
    ("GET /presales/{id}", Validator, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}", Validator, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}", Finance, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}", Finance, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}", Admin, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}", Admin, OtherClient, AnyRecord, 404),
    // Only the agent who registered it corrects a returned (NEEDS_CORRECTION) pre-sale; the
    // success comes last, after every refusal on the same record.
    ("PATCH /presales/{id}", Anon, AnyClient, AnyRecord, 401),
    ("PATCH /presales/{id}", Validator, OwnClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Validator, OtherClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Supervisor, OwnClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Supervisor, OtherClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Finance, OwnClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Finance, OtherClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Admin, OwnClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Admin, OtherClient, AnyRecord, 403),
    ("PATCH /presales/{id}", Agent, OtherClient, OwnRecord, 404),
    ("PATCH /presales/{id}", Agent, OtherClient, OtherRecord, 404),
    ("PATCH /presales/{id}", Agent, OwnClient, OtherRecord, 404),
    ("PATCH /presales/{id}", Agent, OwnClient, OwnRecord, 200),
    // Validators claim from their clients' queues. Record: the one queued pre-sale. It is never
    // offered to its own agent (SelfRegistered: 204); OwnRecord claims it (200); then it is held:
    // another validator gets nothing (204), and so does its holder asking with a token for
    // another client only (204, not the held pre-sale).
    ("POST /reviews/next", Anon, AnyClient, AnyRecord, 401),
    ("POST /reviews/next", Agent, OwnClient, AnyRecord, 403),
    ("POST /reviews/next", Agent, OtherClient, AnyRecord, 403),
    ("POST /reviews/next", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /reviews/next", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /reviews/next", Finance, OwnClient, AnyRecord, 403),
    ("POST /reviews/next", Finance, OtherClient, AnyRecord, 403),
    ("POST /reviews/next", Admin, OwnClient, AnyRecord, 403),
    ("POST /reviews/next", Admin, OtherClient, AnyRecord, 403),
    ("POST /reviews/next", Validator, OwnClient, SelfRegistered, 204),
    ("POST /reviews/next", Validator, OwnClient, OwnRecord, 200),
    ("POST /reviews/next", Validator, OwnClient, OtherRecord, 204),
    ("POST /reviews/next", Validator, OtherClient, SelfRegistered, 204),
    ("POST /reviews/next", Validator, OtherClient, OwnRecord, 204),
    ("POST /reviews/next", Validator, OtherClient, OtherRecord, 204),
    // Only the validator holding the claim releases it (another validator: 409 claimed-by-other).
    ("POST /reviews/{id}/release", Anon, AnyClient, AnyRecord, 401),
    ("POST /reviews/{id}/release", Agent, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Agent, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Finance, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Finance, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Admin, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Admin, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/release", Validator, OtherClient, OwnRecord, 404),
    ("POST /reviews/{id}/release", Validator, OtherClient, OtherRecord, 404),
    ("POST /reviews/{id}/release", Validator, OwnClient, OtherRecord, 409),
    ("POST /reviews/{id}/release", Validator, OwnClient, OwnRecord, 200),
    // Supervisors and admins read a campaign's review metrics. No record.
    ("GET /reviews/metrics", Anon, AnyClient, AnyRecord, 401),
    ("GET /reviews/metrics", Agent, OwnClient, AnyRecord, 403),
    ("GET /reviews/metrics", Agent, OtherClient, AnyRecord, 403),
    ("GET /reviews/metrics", Validator, OwnClient, AnyRecord, 403),
    ("GET /reviews/metrics", Validator, OtherClient, AnyRecord, 403),
    ("GET /reviews/metrics", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /reviews/metrics", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /reviews/metrics", Finance, OwnClient, AnyRecord, 403),
    ("GET /reviews/metrics", Finance, OtherClient, AnyRecord, 403),
    ("GET /reviews/metrics", Admin, OwnClient, AnyRecord, 200),
    ("GET /reviews/metrics", Admin, OtherClient, AnyRecord, 404),
    // The review view (data, findings, playback link): validators, supervisors and admins of
    // the client. Record: a claimed pre-sale; any validator of the client may open it.
    ("GET /presales/{id}/review-view", Anon, AnyClient, AnyRecord, 401),
    ("GET /presales/{id}/review-view", Agent, OwnClient, AnyRecord, 403),
    ("GET /presales/{id}/review-view", Agent, OtherClient, AnyRecord, 403),
    ("GET /presales/{id}/review-view", Validator, OwnClient, OwnRecord, 200),
    ("GET /presales/{id}/review-view", Validator, OwnClient, OtherRecord, 200),
    ("GET /presales/{id}/review-view", Validator, OtherClient, OwnRecord, 404),
    ("GET /presales/{id}/review-view", Validator, OtherClient, OtherRecord, 404),
    ("GET /presales/{id}/review-view", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}/review-view", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}/review-view", Finance, OwnClient, AnyRecord, 403),
    ("GET /presales/{id}/review-view", Finance, OtherClient, AnyRecord, 403),
    ("GET /presales/{id}/review-view", Admin, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}/review-view", Admin, OtherClient, AnyRecord, 404),
    // Only the validator holding the claim decides (another validator: 409 claimed-by-other),
    // never on a pre-sale they registered (403); the approval comes last.
    ("POST /presales/{id}/review", Anon, AnyClient, AnyRecord, 401),
    ("POST /presales/{id}/review", Agent, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Agent, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Finance, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Finance, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Admin, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Admin, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/review", Validator, OtherClient, OwnRecord, 404),
    ("POST /presales/{id}/review", Validator, OtherClient, OtherRecord, 404),
    ("POST /presales/{id}/review", Validator, OtherClient, SelfRegistered, 404),
    ("POST /presales/{id}/review", Validator, OwnClient, SelfRegistered, 403),
    ("POST /presales/{id}/review", Validator, OwnClient, OtherRecord, 409),
    ("POST /presales/{id}/review", Validator, OwnClient, OwnRecord, 200),
    // The audit trail: validators, supervisors and admins of the client.
    ("GET /presales/{id}/audit", Anon, AnyClient, AnyRecord, 401),
    ("GET /presales/{id}/audit", Agent, OwnClient, AnyRecord, 403),
    ("GET /presales/{id}/audit", Agent, OtherClient, AnyRecord, 403),
    ("GET /presales/{id}/audit", Validator, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}/audit", Validator, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}/audit", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}/audit", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /presales/{id}/audit", Finance, OwnClient, AnyRecord, 403),
    ("GET /presales/{id}/audit", Finance, OtherClient, AnyRecord, 403),
    ("GET /presales/{id}/audit", Admin, OwnClient, AnyRecord, 200),
    ("GET /presales/{id}/audit", Admin, OtherClient, AnyRecord, 404),
    // Agents tipify contacts. Record: the pre-sale a SALE contact links; a sale counts only for
    // the agent who registered it (422 presale_other_agent); another client's campaign is 422.
    ("POST /contacts", Anon, AnyClient, AnyRecord, 401),
    ("POST /contacts", Agent, OwnClient, OwnRecord, 201),
    ("POST /contacts", Agent, OwnClient, OtherRecord, 422),
    ("POST /contacts", Agent, OtherClient, OwnRecord, 422),
    ("POST /contacts", Agent, OtherClient, OtherRecord, 422),
    ("POST /contacts", Validator, OwnClient, AnyRecord, 403),
    ("POST /contacts", Validator, OtherClient, AnyRecord, 403),
    ("POST /contacts", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /contacts", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /contacts", Finance, OwnClient, AnyRecord, 403),
    ("POST /contacts", Finance, OtherClient, AnyRecord, 403),
    ("POST /contacts", Admin, OwnClient, AnyRecord, 403),
    ("POST /contacts", Admin, OtherClient, AnyRecord, 403),
    // A customer's history, asked with ?client= the record's client: anyone acting for it.
    ("GET /customers/{key}/contacts", Anon, AnyClient, AnyRecord, 401),
    ("GET /customers/{key}/contacts", Agent, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contacts", Agent, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contacts", Validator, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contacts", Validator, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contacts", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contacts", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contacts", Finance, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contacts", Finance, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contacts", Admin, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contacts", Admin, OtherClient, AnyRecord, 404),
    // May the customer be called now, for a campaign of the caller's clients.
    ("GET /customers/{key}/contactability", Anon, AnyClient, AnyRecord, 401),
    ("GET /customers/{key}/contactability", Agent, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contactability", Agent, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contactability", Validator, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contactability", Validator, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contactability", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contactability", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contactability", Finance, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contactability", Finance, OtherClient, AnyRecord, 404),
    ("GET /customers/{key}/contactability", Admin, OwnClient, AnyRecord, 200),
    ("GET /customers/{key}/contactability", Admin, OtherClient, AnyRecord, 404),
    // The campaign's disposition catalog: anyone acting for its client reads it.
    ("GET /campaigns/{id}/dispositions", Anon, AnyClient, AnyRecord, 401),
    ("GET /campaigns/{id}/dispositions", Agent, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/dispositions", Agent, OtherClient, AnyRecord, 404),
    ("GET /campaigns/{id}/dispositions", Validator, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/dispositions", Validator, OtherClient, AnyRecord, 404),
    ("GET /campaigns/{id}/dispositions", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/dispositions", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /campaigns/{id}/dispositions", Finance, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/dispositions", Finance, OtherClient, AnyRecord, 404),
    ("GET /campaigns/{id}/dispositions", Admin, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/dispositions", Admin, OtherClient, AnyRecord, 404),
    // Admins publish a new catalog version.
    ("PUT /campaigns/{id}/dispositions", Anon, AnyClient, AnyRecord, 401),
    ("PUT /campaigns/{id}/dispositions", Agent, OwnClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Agent, OtherClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Validator, OwnClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Validator, OtherClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Supervisor, OwnClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Supervisor, OtherClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Finance, OwnClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Finance, OtherClient, AnyRecord, 403),
    ("PUT /campaigns/{id}/dispositions", Admin, OwnClient, AnyRecord, 200),
    ("PUT /campaigns/{id}/dispositions", Admin, OtherClient, AnyRecord, 404),
    // Supervisors and admins read the day's contact counters.
    ("GET /campaigns/{id}/contact-counters", Anon, AnyClient, AnyRecord, 401),
    ("GET /campaigns/{id}/contact-counters", Agent, OwnClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Agent, OtherClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Validator, OwnClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Validator, OtherClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/contact-counters", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /campaigns/{id}/contact-counters", Finance, OwnClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Finance, OtherClient, AnyRecord, 403),
    ("GET /campaigns/{id}/contact-counters", Admin, OwnClient, AnyRecord, 200),
    ("GET /campaigns/{id}/contact-counters", Admin, OtherClient, AnyRecord, 404),
    // An agent's due callbacks (?client=&agent=): agents see only their own (403); others any
    // agent's, of a client they act for.
    ("GET /callbacks", Anon, AnyClient, AnyRecord, 401),
    ("GET /callbacks", Agent, OwnClient, OwnRecord, 200),
    ("GET /callbacks", Agent, OwnClient, OtherRecord, 403),
    ("GET /callbacks", Agent, OtherClient, OwnRecord, 404),
    ("GET /callbacks", Agent, OtherClient, OtherRecord, 403),
    ("GET /callbacks", Validator, OwnClient, AnyRecord, 200),
    ("GET /callbacks", Validator, OtherClient, AnyRecord, 404),
    ("GET /callbacks", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /callbacks", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /callbacks", Finance, OwnClient, AnyRecord, 200),
    ("GET /callbacks", Finance, OtherClient, AnyRecord, 404),
    ("GET /callbacks", Admin, OwnClient, AnyRecord, 200),
    ("GET /callbacks", Admin, OtherClient, AnyRecord, 404),
    // Cancelling a scheduled callback, with a reason: its agent, or a supervisor or admin of its
    // client. Record: a callback of agent-7; another agent's, or another client's, reads as
    // missing. The first success cancels it; the later ones find it cancelled and answer it
    // unchanged (200, a retry changes nothing).
    ("POST /callbacks/{id}/cancel", Anon, AnyClient, AnyRecord, 401),
    ("POST /callbacks/{id}/cancel", Validator, OwnClient, AnyRecord, 403),
    ("POST /callbacks/{id}/cancel", Validator, OtherClient, AnyRecord, 403),
    ("POST /callbacks/{id}/cancel", Finance, OwnClient, AnyRecord, 403),
    ("POST /callbacks/{id}/cancel", Finance, OtherClient, AnyRecord, 403),
    ("POST /callbacks/{id}/cancel", Agent, OtherClient, OwnRecord, 404),
    ("POST /callbacks/{id}/cancel", Agent, OtherClient, OtherRecord, 404),
    ("POST /callbacks/{id}/cancel", Agent, OwnClient, OtherRecord, 404),
    ("POST /callbacks/{id}/cancel", Supervisor, OtherClient, AnyRecord, 404),
    ("POST /callbacks/{id}/cancel", Admin, OtherClient, AnyRecord, 404),
    ("POST /callbacks/{id}/cancel", Supervisor, OwnClient, AnyRecord, 200),
    ("POST /callbacks/{id}/cancel", Admin, OwnClient, AnyRecord, 200),
    ("POST /callbacks/{id}/cancel", Agent, OwnClient, OwnRecord, 200),
    // The couriers' webhook takes no user token: without the courier's signature, nobody.
    ("POST /shipments/{id}/events", Anon, AnyClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Agent, OwnClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Agent, OtherClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Validator, OwnClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Validator, OtherClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Supervisor, OwnClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Supervisor, OtherClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Finance, OwnClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Finance, OtherClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Admin, OwnClient, AnyRecord, 401),
    ("POST /shipments/{id}/events", Admin, OtherClient, AnyRecord, 401),
    // Finance, supervisors, admins and the sale's agent read a shipment; anyone else, as if it
    // did not exist.
    // Finance's invoice list: finance, supervisors and admins of the client; another client
    // reads as unknown. No record.
    ("GET /invoices", Anon, AnyClient, AnyRecord, 401),
    ("GET /invoices", Agent, OwnClient, AnyRecord, 403),
    ("GET /invoices", Agent, OtherClient, AnyRecord, 403),
    ("GET /invoices", Validator, OwnClient, AnyRecord, 403),
    ("GET /invoices", Validator, OtherClient, AnyRecord, 403),
    ("GET /invoices", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /invoices", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /invoices", Finance, OwnClient, AnyRecord, 200),
    ("GET /invoices", Finance, OtherClient, AnyRecord, 404),
    ("GET /invoices", Admin, OwnClient, AnyRecord, 200),
    ("GET /invoices", Admin, OtherClient, AnyRecord, 404),
    // Payments: recorded by finance and admins of the invoice's client (supervisors read, they
    // do not record); another client's invoice reads as missing.
    ("POST /invoices/{id}/payments", Anon, AnyClient, AnyRecord, 401),
    ("POST /invoices/{id}/payments", Agent, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Agent, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Validator, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Validator, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/payments", Finance, OwnClient, AnyRecord, 201),
    ("POST /invoices/{id}/payments", Finance, OtherClient, AnyRecord, 404),
    ("POST /invoices/{id}/payments", Admin, OwnClient, AnyRecord, 201),
    ("POST /invoices/{id}/payments", Admin, OtherClient, AnyRecord, 404),
    // An invoice's file and the ageing: read like the list.
    ("GET /invoices/{id}", Anon, AnyClient, AnyRecord, 401),
    ("GET /invoices/{id}", Agent, OwnClient, AnyRecord, 403),
    ("GET /invoices/{id}", Agent, OtherClient, AnyRecord, 403),
    ("GET /invoices/{id}", Validator, OwnClient, AnyRecord, 403),
    ("GET /invoices/{id}", Validator, OtherClient, AnyRecord, 403),
    ("GET /invoices/{id}", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /invoices/{id}", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /invoices/{id}", Finance, OwnClient, AnyRecord, 200),
    ("GET /invoices/{id}", Finance, OtherClient, AnyRecord, 404),
    ("GET /invoices/{id}", Admin, OwnClient, AnyRecord, 200),
    ("GET /invoices/{id}", Admin, OtherClient, AnyRecord, 404),
    ("GET /receivables/aging", Anon, AnyClient, AnyRecord, 401),
    ("GET /receivables/aging", Agent, OwnClient, AnyRecord, 403),
    ("GET /receivables/aging", Agent, OtherClient, AnyRecord, 403),
    ("GET /receivables/aging", Validator, OwnClient, AnyRecord, 403),
    ("GET /receivables/aging", Validator, OtherClient, AnyRecord, 403),
    ("GET /receivables/aging", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /receivables/aging", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /receivables/aging", Finance, OwnClient, AnyRecord, 200),
    ("GET /receivables/aging", Finance, OtherClient, AnyRecord, 404),
    ("GET /receivables/aging", Admin, OwnClient, AnyRecord, 200),
    ("GET /receivables/aging", Admin, OtherClient, AnyRecord, 404),
    // Credit notes: asked for by finance and admins of the invoice's client. The cell's body
    // has an empty description: a 422 naming it shows the caller got past authorization.
    ("POST /invoices/{id}/credit-notes", Anon, AnyClient, AnyRecord, 401),
    ("POST /invoices/{id}/credit-notes", Agent, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Agent, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Validator, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Validator, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /invoices/{id}/credit-notes", Finance, OwnClient, AnyRecord, 422),
    ("POST /invoices/{id}/credit-notes", Finance, OtherClient, AnyRecord, 404),
    ("POST /invoices/{id}/credit-notes", Admin, OwnClient, AnyRecord, 422),
    ("POST /invoices/{id}/credit-notes", Admin, OtherClient, AnyRecord, 404),
    // The sales register: finance and admins only. POST generates this month's; GET asks for a
    // month nobody generated (its 404 to the client's own finance says so, see refusal_mark).
    ("POST /receivables/sales-register", Anon, AnyClient, AnyRecord, 401),
    ("POST /receivables/sales-register", Agent, OwnClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Agent, OtherClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Validator, OwnClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Validator, OtherClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /receivables/sales-register", Finance, OwnClient, AnyRecord, 201),
    ("POST /receivables/sales-register", Finance, OtherClient, AnyRecord, 404),
    ("POST /receivables/sales-register", Admin, OwnClient, AnyRecord, 201),
    ("POST /receivables/sales-register", Admin, OtherClient, AnyRecord, 404),
    ("GET /receivables/sales-register", Anon, AnyClient, AnyRecord, 401),
    ("GET /receivables/sales-register", Agent, OwnClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Agent, OtherClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Validator, OwnClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Validator, OtherClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Supervisor, OwnClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Supervisor, OtherClient, AnyRecord, 403),
    ("GET /receivables/sales-register", Finance, OwnClient, AnyRecord, 404),
    ("GET /receivables/sales-register", Finance, OtherClient, AnyRecord, 404),
    ("GET /receivables/sales-register", Admin, OwnClient, AnyRecord, 404),
    ("GET /receivables/sales-register", Admin, OtherClient, AnyRecord, 404),
    // KPI reports: supervisors and admins of the campaign's client read, admins rebuild (ended
    // days; the default range is yesterday). Another client's campaign reads as unknown.
    // Client billing: admins close a month of their client (last month, the tenant's first run),
    // finance and admins read the runs and a run (closed, or the month's preview).
    ("POST /billing/runs", Anon, AnyClient, AnyRecord, 401),
    ("POST /billing/runs", Agent, OwnClient, AnyRecord, 403),
    ("POST /billing/runs", Agent, OtherClient, AnyRecord, 403),
    ("POST /billing/runs", Validator, OwnClient, AnyRecord, 403),
    ("POST /billing/runs", Validator, OtherClient, AnyRecord, 403),
    ("POST /billing/runs", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /billing/runs", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /billing/runs", Finance, OwnClient, AnyRecord, 403),
    ("POST /billing/runs", Finance, OtherClient, AnyRecord, 403),
    ("POST /billing/runs", Admin, OwnClient, AnyRecord, 201),
    ("POST /billing/runs", Admin, OtherClient, AnyRecord, 404),
    ("GET /billing/runs", Anon, AnyClient, AnyRecord, 401),
    ("GET /billing/runs", Agent, OwnClient, AnyRecord, 403),
    ("GET /billing/runs", Agent, OtherClient, AnyRecord, 403),
    ("GET /billing/runs", Validator, OwnClient, AnyRecord, 403),
    ("GET /billing/runs", Validator, OtherClient, AnyRecord, 403),
    ("GET /billing/runs", Supervisor, OwnClient, AnyRecord, 403),
    ("GET /billing/runs", Supervisor, OtherClient, AnyRecord, 403),
    ("GET /billing/runs", Finance, OwnClient, AnyRecord, 200),
    ("GET /billing/runs", Finance, OtherClient, AnyRecord, 404),
    ("GET /billing/runs", Admin, OwnClient, AnyRecord, 200),
    ("GET /billing/runs", Admin, OtherClient, AnyRecord, 404),
    ("GET /billing/runs/{id}", Anon, AnyClient, AnyRecord, 401),
    ("GET /billing/runs/{id}", Agent, OwnClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Agent, OtherClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Validator, OwnClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Validator, OtherClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Supervisor, OwnClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Supervisor, OtherClient, AnyRecord, 403),
    ("GET /billing/runs/{id}", Finance, OwnClient, AnyRecord, 200),
    ("GET /billing/runs/{id}", Finance, OtherClient, AnyRecord, 404),
    ("GET /billing/runs/{id}", Admin, OwnClient, AnyRecord, 200),
    ("GET /billing/runs/{id}", Admin, OtherClient, AnyRecord, 404),
    ("GET /clients/{id}/contract", Anon, AnyClient, AnyRecord, 401),
    ("GET /clients/{id}/contract", Agent, OwnClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Agent, OtherClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Validator, OwnClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Validator, OtherClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Supervisor, OwnClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Supervisor, OtherClient, AnyRecord, 403),
    ("GET /clients/{id}/contract", Finance, OwnClient, AnyRecord, 200),
    ("GET /clients/{id}/contract", Finance, OtherClient, AnyRecord, 404),
    ("GET /clients/{id}/contract", Admin, OwnClient, AnyRecord, 200),
    ("GET /clients/{id}/contract", Admin, OtherClient, AnyRecord, 404),
    ("PUT /clients/{id}/contract", Anon, AnyClient, AnyRecord, 401),
    ("PUT /clients/{id}/contract", Agent, OwnClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Agent, OtherClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Validator, OwnClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Validator, OtherClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Supervisor, OwnClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Supervisor, OtherClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Finance, OwnClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Finance, OtherClient, AnyRecord, 403),
    ("PUT /clients/{id}/contract", Admin, OwnClient, AnyRecord, 200),
    ("PUT /clients/{id}/contract", Admin, OtherClient, AnyRecord, 404),
    ("GET /reports/kpis", Anon, AnyClient, AnyRecord, 401),
    ("GET /reports/kpis", Agent, OwnClient, AnyRecord, 403),
    ("GET /reports/kpis", Agent, OtherClient, AnyRecord, 403),
    ("GET /reports/kpis", Validator, OwnClient, AnyRecord, 403),
    ("GET /reports/kpis", Validator, OtherClient, AnyRecord, 403),
    ("GET /reports/kpis", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /reports/kpis", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /reports/kpis", Finance, OwnClient, AnyRecord, 403),
    ("GET /reports/kpis", Finance, OtherClient, AnyRecord, 403),
    ("GET /reports/kpis", Admin, OwnClient, AnyRecord, 200),
    ("GET /reports/kpis", Admin, OtherClient, AnyRecord, 404),
    ("POST /reports/kpis/rebuild", Anon, AnyClient, AnyRecord, 401),
    ("POST /reports/kpis/rebuild", Agent, OwnClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Agent, OtherClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Validator, OwnClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Validator, OtherClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Finance, OwnClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Finance, OtherClient, AnyRecord, 403),
    ("POST /reports/kpis/rebuild", Admin, OwnClient, AnyRecord, 202),
    ("POST /reports/kpis/rebuild", Admin, OtherClient, AnyRecord, 404),
    ("GET /shipments/{id}", Anon, AnyClient, AnyRecord, 401),
    ("GET /shipments/{id}", Agent, OwnClient, OwnRecord, 200),
    ("GET /shipments/{id}", Agent, OwnClient, OtherRecord, 404),
    ("GET /shipments/{id}", Agent, OtherClient, OwnRecord, 404),
    ("GET /shipments/{id}", Agent, OtherClient, OtherRecord, 404),
    ("GET /shipments/{id}", Validator, OwnClient, AnyRecord, 404),
    ("GET /shipments/{id}", Validator, OtherClient, AnyRecord, 404),
    ("GET /shipments/{id}", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /shipments/{id}", Supervisor, OtherClient, AnyRecord, 404),
    ("GET /shipments/{id}", Finance, OwnClient, AnyRecord, 200),
    ("GET /shipments/{id}", Finance, OtherClient, AnyRecord, 404),
    ("GET /shipments/{id}", Admin, OwnClient, AnyRecord, 200),
    ("GET /shipments/{id}", Admin, OtherClient, AnyRecord, 404),
    // Renewing a claim: like releasing it, its holder only (a fresh lease answers 200 unchanged).
    ("POST /reviews/{id}/renew", Anon, AnyClient, AnyRecord, 401),
    ("POST /reviews/{id}/renew", Agent, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Agent, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Supervisor, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Supervisor, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Finance, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Finance, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Admin, OwnClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Admin, OtherClient, AnyRecord, 403),
    ("POST /reviews/{id}/renew", Validator, OtherClient, OwnRecord, 404),
    ("POST /reviews/{id}/renew", Validator, OtherClient, OtherRecord, 404),
    ("POST /reviews/{id}/renew", Validator, OwnClient, OtherRecord, 409),
    ("POST /reviews/{id}/renew", Validator, OwnClient, OwnRecord, 200),
    // Recording a playback (QC): whoever may read the review view, of the client; a new
    // playback each cell (its own playback_id).
    ("POST /presales/{id}/playbacks", Anon, AnyClient, AnyRecord, 401),
    ("POST /presales/{id}/playbacks", Agent, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/playbacks", Agent, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/playbacks", Validator, OwnClient, AnyRecord, 201),
    ("POST /presales/{id}/playbacks", Validator, OtherClient, AnyRecord, 404),
    ("POST /presales/{id}/playbacks", Supervisor, OwnClient, AnyRecord, 201),
    ("POST /presales/{id}/playbacks", Supervisor, OtherClient, AnyRecord, 404),
    ("POST /presales/{id}/playbacks", Finance, OwnClient, AnyRecord, 403),
    ("POST /presales/{id}/playbacks", Finance, OtherClient, AnyRecord, 403),
    ("POST /presales/{id}/playbacks", Admin, OwnClient, AnyRecord, 201),
    ("POST /presales/{id}/playbacks", Admin, OtherClient, AnyRecord, 404),
    // The web console: its files and its sign-in configuration are public (no data in them;
    // the data comes from the API, behind the authorizer), whoever asks (ADR 0029).
    ("GET /console", Anon, AnyClient, AnyRecord, 200),
    ("GET /console", Agent, OwnClient, AnyRecord, 200),
    ("GET /console", Agent, OtherClient, AnyRecord, 200),
    ("GET /console", Validator, OwnClient, AnyRecord, 200),
    ("GET /console", Validator, OtherClient, AnyRecord, 200),
    ("GET /console", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /console", Supervisor, OtherClient, AnyRecord, 200),
    ("GET /console", Finance, OwnClient, AnyRecord, 200),
    ("GET /console", Finance, OtherClient, AnyRecord, 200),
    ("GET /console", Admin, OwnClient, AnyRecord, 200),
    ("GET /console", Admin, OtherClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Anon, AnyClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Agent, OwnClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Agent, OtherClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Validator, OwnClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Validator, OtherClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Supervisor, OtherClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Finance, OwnClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Finance, OtherClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Admin, OwnClient, AnyRecord, 200),
    ("GET /console/{proxy+}", Admin, OtherClient, AnyRecord, 200),
    ("GET /console/config.json", Anon, AnyClient, AnyRecord, 200),
    ("GET /console/config.json", Agent, OwnClient, AnyRecord, 200),
    ("GET /console/config.json", Agent, OtherClient, AnyRecord, 200),
    ("GET /console/config.json", Validator, OwnClient, AnyRecord, 200),
    ("GET /console/config.json", Validator, OtherClient, AnyRecord, 200),
    ("GET /console/config.json", Supervisor, OwnClient, AnyRecord, 200),
    ("GET /console/config.json", Supervisor, OtherClient, AnyRecord, 200),
    ("GET /console/config.json", Finance, OwnClient, AnyRecord, 200),
    ("GET /console/config.json", Finance, OtherClient, AnyRecord, 200),
    ("GET /console/config.json", Admin, OwnClient, AnyRecord, 200),
    ("GET /console/config.json", Admin, OtherClient, AnyRecord, 200),
];

/// This month in Lima (UTC−5 all year), `YYYY-MM`: the latest the sales register takes.
/// The month before this one in Lima: the last one a billing run may close.
fn lima_last_month() -> String {
    let today = (time::OffsetDateTime::now_utc() - time::Duration::hours(5)).date();
    let last = today
        .replace_day(1)
        .ok()
        .and_then(|first| first.previous_day())
        .unwrap_or(today);
    format!("{:04}-{:02}", last.year(), u8::from(last.month()))
}

fn lima_month() -> String {
    let today = (time::OffsetDateTime::now_utc() - time::Duration::hours(5)).date();
    format!("{:04}-{:02}", today.year(), u8::from(today.month()))
}

/// What a refusal other than a plain 401/403/404 must say, so that it is the authorization
/// check answering and not some other validation: a piece of the problem body.
fn refusal_mark(route: &str, tenant: Tenant, record: Record, status: u16) -> Option<&'static str> {
    match (route, status) {
        ("POST /presales", 422) => Some("unknown_campaign"),
        ("POST /invoices/{id}/credit-notes", 422) => Some("description_length"),
        ("GET /receivables/sales-register", 404) if tenant == OwnClient => Some("POST generates it"),
        ("POST /contacts", 422) if tenant == OtherClient => Some("unknown_campaign"),
        ("POST /contacts", 422) => Some("presale_other_agent"),
        ("POST /reviews/{id}/release" | "POST /reviews/{id}/renew" | "POST /presales/{id}/review", 409) => {
            Some("claimed-by-other")
        }
        ("POST /presales/{id}/review", 403) if record == SelfRegistered => Some("segregation of duties"),
        _ => None,
    }
}

/// `METHOD /path` of every HttpApi event in the template.
fn template_routes() -> BTreeSet<String> {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let template: yaml_serde::Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("template: {e}"));
    let mut routes = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().expect("Resources") {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let props = &event["Properties"];
                let method = props["Method"].as_str().expect("Method").to_ascii_uppercase();
                routes.insert(format!("{method} {}", props["Path"].as_str().expect("Path")));
            }
        }
    }
    routes
}

/// Everything wrong with the table's coverage of the template's routes.
fn coverage_problems() -> Vec<String> {
    let template = template_routes();
    let tabled: BTreeSet<String> = TABLE.iter().map(|r| r.0.to_owned()).collect();
    let mut problems = Vec::new();
    for route in template.difference(&tabled) {
        problems.push(format!(
            "{route}: in infra/template.yaml but the table has no rows for it"
        ));
    }
    for route in tabled.difference(&template) {
        problems.push(format!(
            "{route}: rows in the table for a route the template no longer has"
        ));
    }
    for route in tabled.intersection(&template) {
        let rows: Vec<&Row> = TABLE.iter().filter(|r| r.0 == route).collect();
        let anon: Vec<&&Row> = rows.iter().filter(|r| r.1 == Anon).collect();
        if anon.len() != 1 || anon.iter().any(|r| (r.2, r.3) != (AnyClient, AnyRecord)) {
            problems.push(format!("{route}: needs exactly one (Anon, AnyClient, AnyRecord) row"));
        }
        for role in Role::WITH_TOKEN {
            let mut by_tenant = Vec::new();
            for tenant in [OwnClient, OtherClient] {
                let records: Vec<Record> = rows
                    .iter()
                    .filter(|r| r.1 == role && r.2 == tenant)
                    .map(|r| r.3)
                    .collect();
                let set: BTreeSet<Record> = records.iter().copied().collect();
                if set.len() != records.len() {
                    problems.push(format!("{route} {role:?} {tenant:?}: a record appears twice"));
                }
                let complete = set == BTreeSet::from([AnyRecord])
                    || (set.contains(&OwnRecord) && set.contains(&OtherRecord) && !set.contains(&AnyRecord));
                if !complete {
                    problems.push(format!(
                        "{route} {role:?} {tenant:?}: records {set:?}; want [AnyRecord] or OwnRecord and OtherRecord"
                    ));
                }
                by_tenant.push(set);
            }
            if by_tenant[0] != by_tenant[1] {
                problems.push(format!(
                    "{route} {role:?}: OwnClient and OtherClient rows cover different records"
                ));
            }
        }
        if rows.iter().any(|r| r.1 != Anon && r.2 == AnyClient) {
            problems.push(format!("{route}: AnyClient is only for Anon"));
        }
    }
    problems
}

#[test]
fn the_table_has_a_row_for_every_cell_of_every_template_route() {
    let problems = coverage_problems();
    assert!(problems.is_empty(), "the access table:\n  {}", problems.join("\n  "));
}

/// One request of a cell: where, with what, and what a 200 list must (not) show.
struct Target {
    /// The client the record belongs to.
    client: String,
    path: String,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
    /// An id a 200 answer lists, unless the caller is another agent than the record's.
    listed: Option<String>,
}

impl Target {
    fn new(client: &str, path: impl Into<String>) -> Self {
        Target {
            client: client.to_owned(),
            path: path.into(),
            body: None,
            headers: Vec::new(),
            listed: None,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn listed(mut self, id: &str) -> Self {
        self.listed = Some(id.to_owned());
        self
    }
}

/// The set-up every cell draws on: one tenant per route family whose cells change state, and
/// another seeded client with nothing in it.
struct Fixture {
    /// The other client (OtherClient tokens list only this one).
    other: Desk,
    /// Reads, lists, contacts, catalogs: a pre-sale of agent-7 claimed by val-1, a CALL_BACK
    /// contact of agent-7 on its customer.
    read: Desk,
    read_presale: String,
    customer_key: String,
    callback_contact: String,
    /// Callbacks of agent-7 on customers of their own, untouched by the contact cells: one
    /// listed by GET /callbacks, one cancelled by POST /callbacks/{id}/cancel.
    due_callback: String,
    cancel_callback: String,
    nodes: Value,
    /// The body and Idempotency-Key of every POST /presales cell.
    presale_body: Value,
    idempotency_key: String,
    /// A pre-sale of agent-7 returned for correction (NEEDS_CORRECTION).
    patch: Desk,
    patch_presale: String,
    /// A pre-sale of agent-7 claimed by val-1.
    release: Desk,
    release_presale: String,
    /// Another, whose claim is only renewed.
    renew: Desk,
    renew_presale: String,
    /// The hash of `read_presale`'s recording (the version a playback names).
    read_sha256: String,
    /// A pre-sale of agent-7 claimed by val-1, at `decide_version`.
    decide: Desk,
    decide_presale: String,
    decide_version: u64,
    /// One pre-sale of agent-7 in the queue, unclaimed.
    next: Desk,
    /// The shipment of an approved sale of agent-7, and its courier.
    ship: Desk,
    shipment: String,
    courier: String,
    /// That sale's invoice.
    invoice: String,
}

const AGENT: &str = "agent-7";
const OTHER_AGENT: &str = "agent-8";

/// A validator of `d`'s client. A validator holds one claim across all clients, so every
/// tenant gets its own validators.
fn validator(d: &Desk, n: u8) -> Caller {
    caller(&format!("val-{n}.{}", d.client), "validator", &[&d.client])
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn encode(raw: &str) -> String {
    raw.replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
        .replace('@', "%40")
}

fn presale_body(campaign: &str) -> Value {
    json!({
        "campaign_id": campaign, "call_id": unique("call"),
        "customer": {"document": {"type": "DNI", "number": format!("{:08}", uuid::Uuid::new_v4().as_u128() % 100_000_000)},
                     "full_name": "Rosa Mamani Flores", "email": "rosa.mamani@example.com",
                     "phone": format!("+5197{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000),
                     "address": {"line1": "Jr. Junín 455", "district": "Cercado", "province": "Lima", "region": "Lima"}},
        "items": [{"sku": "FIB-300", "quantity": 1}]
    })
}

fn contact_body(campaign: &str, key: &str, disposition: &str, presale: Option<&str>) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let mut body = json!({
        "channel": "call", "direction": "outbound", "external_id": unique("ext"), "customer_key": key,
        "campaign_id": campaign, "disposition": disposition,
        "started_at": rfc3339(now - time::Duration::minutes(3)), "ended_at": rfc3339(now - time::Duration::minutes(1))
    });
    if disposition == "CALL_BACK" {
        body["callback_at"] = json!(rfc3339(now + time::Duration::days(1)));
    }
    if let Some(presale) = presale {
        body["presale_id"] = json!(presale);
    }
    body
}

/// Claim the only queued pre-sale `id` of `d` as `who`; its version once claimed.
async fn claim(d: &Desk, who: &Caller, id: &str) -> u64 {
    let claimed = d.post(who, "/reviews/next", None).await;
    assert_eq!(
        (claimed.status, claimed.body["presale"]["id"].as_str()),
        (200, Some(id)),
        "set-up: claiming {id}: {:?}",
        claimed.body
    );
    claimed.body["presale"]["version"].as_u64().expect("version")
}

async fn decide(d: &Desk, who: &Caller, id: &str, body: Value) {
    let decided = d.post(who, &format!("/presales/{id}/review"), Some(body)).await;
    assert_eq!(decided.status, 200, "set-up: deciding {id}: {:?}", decided.body);
}

/// A fresh tenant with one pre-sale of agent-7 ready for review.
async fn ready_world() -> (Desk, String) {
    let d = desk().await;
    let (id, _) = d.ready_presale(8).await;
    (d, id)
}

impl Fixture {
    async fn new() -> Fixture {
        let read = async {
            let (d, id) = ready_world().await;
            claim(&d, &validator(&d, 1), &id).await;
            let presale = d
                .env
                .send(d.env.as_caller(&d.agent, "GET", &format!("/presales/{id}")))
                .await;
            let phone = presale.body["customer"]["phone"].as_str().expect("phone").to_owned();
            let key = format!("phone:{phone}");
            let contact = d
                .post(
                    &d.agent,
                    "/contacts",
                    Some(contact_body(&d.campaign, &key, "CALL_BACK", None)),
                )
                .await;
            assert_eq!(contact.status, 201, "set-up: a callback: {:?}", contact.body);
            let contact_id = contact.body["id"].as_str().expect("contact id").to_owned();
            // The SALE contact of POST /contacts completes the callback above (a later contact
            // of its customer): the callbacks' own cells get callbacks of other customers.
            let mut callbacks = Vec::new();
            for _ in 0..2 {
                let key = format!("phone:+5196{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000);
                let callback = d
                    .post(
                        &d.agent,
                        "/contacts",
                        Some(contact_body(&d.campaign, &key, "CALL_BACK", None)),
                    )
                    .await;
                assert_eq!(callback.status, 201, "set-up: a callback: {:?}", callback.body);
                callbacks.push(callback.body["id"].as_str().expect("callback id").to_owned());
            }
            let admin = caller("adm-1", "admin", &[&d.client]);
            let catalog = d
                .env
                .send(
                    d.env
                        .as_caller(&admin, "GET", &format!("/campaigns/{}/dispositions", d.campaign)),
                )
                .await;
            assert_eq!(catalog.status, 200, "set-up: the catalog: {:?}", catalog.body);
            (d, id, key, contact_id, callbacks, catalog.body["nodes"].clone())
        };
        let patch = async {
            let (d, id) = ready_world().await;
            let val = validator(&d, 1);
            let version = claim(&d, &val, &id).await;
            decide(
                &d,
                &val,
                &id,
                json!({"decision": "return", "version": version, "reasons": ["ADDRESS"]}),
            )
            .await;
            (d, id)
        };
        let release = async {
            let (d, id) = ready_world().await;
            claim(&d, &validator(&d, 1), &id).await;
            (d, id)
        };
        let renew = async {
            let (d, id) = ready_world().await;
            claim(&d, &validator(&d, 1), &id).await;
            (d, id)
        };
        let decide_world = async {
            let (d, id) = ready_world().await;
            let version = claim(&d, &validator(&d, 1), &id).await;
            (d, id, version)
        };
        let ship = async {
            let (d, id) = ready_world().await;
            let val = validator(&d, 1);
            let version = claim(&d, &val, &id).await;
            decide(
                &d,
                &val,
                &id,
                json!({"decision": "approve", "version": version, "override_reason": "revisado"}),
            )
            .await;
            let item = d.wait_shipment(&format!("S-{id}")).await;
            let courier = item
                .get("plan")
                .and_then(|p| p.as_m().ok())
                .and_then(|p| p.get("courier_id"))
                .and_then(|c| c.as_s().ok())
                .cloned()
                .expect("the shipment's courier");
            let invoice = d.wait_invoice(&format!("S-{id}")).await;
            let invoice = invoice["invoice_id"].as_str().expect("the invoice's id").to_owned();
            (d, format!("SH-S-{id}"), courier, invoice)
        };
        let (
            other,
            (read, read_presale, customer_key, callback_contact, callbacks, nodes),
            (patch, patch_presale),
            (release, release_presale),
            (renew, renew_presale),
            (decide, decide_presale, decide_version),
            (next, _),
            (ship, shipment, courier, invoice),
        ) = tokio::join!(desk(), read, patch, release, renew, decide_world, ready_world(), ship);
        let view = read
            .env
            .send(read.env.as_caller(
                &validator(&read, 1),
                "GET",
                &format!("/presales/{read_presale}/review-view"),
            ))
            .await;
        let read_sha256 = view.body["recording"]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("set-up: the read pre-sale's recording: {:?}", view.body))
            .to_owned();
        Fixture {
            presale_body: presale_body(&read.campaign),
            idempotency_key: unique("idem"),
            other,
            read,
            read_presale,
            customer_key,
            callback_contact,
            due_callback: callbacks[0].clone(),
            cancel_callback: callbacks[1].clone(),
            nodes,
            patch,
            patch_presale,
            release,
            release_presale,
            renew,
            renew_presale,
            read_sha256,
            decide,
            decide_presale,
            decide_version,
            next,
            ship,
            shipment,
            courier,
            invoice,
        }
    }

    /// The request of a route's cells; `None` for a route this test cannot call yet.
    fn target(&self, route: &str) -> Option<Target> {
        let r = &self.read;
        let due = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(30));
        Some(match route {
            "POST /presales" => {
                // One request, as an app retrying it would send it: the same body and key.
                let mut target = Target::new(&r.client, "/presales").body(self.presale_body.clone());
                target.headers.push(("idempotency-key", self.idempotency_key.clone()));
                target
            }
            "GET /presales" => {
                Target::new(&r.client, format!("/presales?campaign={}", r.campaign)).listed(&self.read_presale)
            }
            "GET /presales/{id}" => Target::new(&r.client, format!("/presales/{}", self.read_presale)),
            "PATCH /presales/{id}" => Target::new(&self.patch.client, format!("/presales/{}", self.patch_presale))
                .body(json!({"notes": "Dirección corregida con el cliente"})),
            "POST /reviews/next" => Target::new(&self.next.client, "/reviews/next"),
            "POST /reviews/{id}/release" => Target::new(
                &self.release.client,
                format!("/reviews/{}/release", self.release_presale),
            ),
            "POST /reviews/{id}/renew" => {
                Target::new(&self.renew.client, format!("/reviews/{}/renew", self.renew_presale))
            }
            "POST /presales/{id}/playbacks" => {
                let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(2);
                Target::new(&r.client, format!("/presales/{}/playbacks", self.read_presale)).body(json!({
                    "playback_id": unique("play"), "sha256": self.read_sha256,
                    "started_at": rfc3339(started), "listened_ms": 45_000}))
            }
            "GET /reviews/metrics" => Target::new(&r.client, format!("/reviews/metrics?campaign={}", r.campaign)),
            "GET /presales/{id}/review-view" => {
                Target::new(&r.client, format!("/presales/{}/review-view", self.read_presale))
            }
            "POST /presales/{id}/review" => {
                Target::new(&self.decide.client, format!("/presales/{}/review", self.decide_presale))
                    .body(json!({"decision": "approve", "version": self.decide_version, "override_reason": "revisado"}))
            }
            "GET /presales/{id}/audit" => Target::new(&r.client, format!("/presales/{}/audit", self.read_presale)),
            "POST /contacts" => Target::new(&r.client, "/contacts").body(contact_body(
                &r.campaign,
                &self.customer_key,
                "SALE",
                Some(&self.read_presale),
            )),
            "GET /customers/{key}/contacts" => Target::new(
                &r.client,
                format!("/customers/{}/contacts?client={}", encode(&self.customer_key), r.client),
            )
            .listed(&self.callback_contact),
            "GET /customers/{key}/contactability" => Target::new(
                &r.client,
                format!(
                    "/customers/{}/contactability?campaign={}",
                    encode(&self.customer_key),
                    r.campaign
                ),
            ),
            "GET /campaigns/{id}/dispositions" => {
                Target::new(&r.client, format!("/campaigns/{}/dispositions", r.campaign))
            }
            "PUT /campaigns/{id}/dispositions" => {
                Target::new(&r.client, format!("/campaigns/{}/dispositions", r.campaign))
                    .body(json!({"nodes": self.nodes}))
            }
            "GET /campaigns/{id}/contact-counters" => {
                Target::new(&r.client, format!("/campaigns/{}/contact-counters", r.campaign))
            }
            "GET /callbacks" => Target::new(
                &r.client,
                format!(
                    "/callbacks?client={}&agent={AGENT}&due_before={}",
                    r.client,
                    encode(&due)
                ),
            )
            .listed(&self.due_callback),
            "POST /callbacks/{id}/cancel" => {
                Target::new(&r.client, format!("/callbacks/{}/cancel", self.cancel_callback))
                    .body(json!({"reason": "El cliente pidió que no lo llamen más"}))
            }
            "POST /shipments/{id}/events" => {
                let mut target = Target::new(&self.ship.client, format!("/shipments/{}/events", self.shipment))
                    .body(json!({"event_id": unique("ev"), "type": "PICKED_UP",
                                 "occurred_at": rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(1))}));
                target.headers.push(("x-courier-id", self.courier.clone()));
                target
            }
            "GET /shipments/{id}" => Target::new(&self.ship.client, format!("/shipments/{}", self.shipment)),
            "GET /invoices" => Target::new(&self.ship.client, format!("/invoices?client={}", self.ship.client)),
            "GET /invoices/{id}" => Target::new(
                &self.ship.client,
                format!("/invoices/{}?client={}", self.invoice, self.ship.client),
            ),
            "GET /receivables/aging" => Target::new(
                &self.ship.client,
                format!("/receivables/aging?client={}", self.ship.client),
            ),
            "POST /invoices/{id}/credit-notes" => {
                let mut target = Target::new(&self.ship.client, format!("/invoices/{}/credit-notes", self.invoice))
                    .body(json!({"reason": "07", "description": ""}));
                target.headers.push(("idempotency-key", unique("cn")));
                target
            }
            "POST /receivables/sales-register" => Target::new(
                &self.ship.client,
                format!(
                    "/receivables/sales-register?client={}&month={}",
                    self.ship.client,
                    lima_month()
                ),
            ),
            "GET /receivables/sales-register" => Target::new(
                &self.ship.client,
                format!("/receivables/sales-register?client={}&month=2020-01", self.ship.client),
            ),
            "POST /billing/runs" => Target::new(
                &r.client,
                format!("/billing/runs?client={}&month={}", r.client, lima_last_month()),
            ),
            "GET /billing/runs" => Target::new(&r.client, format!("/billing/runs?client={}", r.client)),
            "GET /billing/runs/{id}" => {
                Target::new(&r.client, format!("/billing/runs/{}-{}", r.client, lima_last_month()))
            }
            "GET /clients/{id}/contract" => Target::new(&r.client, format!("/clients/{}/contract", r.client)),
            // The contract as seeded (seed_campaign): replacing it with itself changes no billed month.
            "PUT /clients/{id}/contract" => Target::new(&r.client, format!("/clients/{}/contract", r.client))
                .body(e2e_tests::seed_contract(&r.client, &r.campaign)),
            "GET /reports/kpis" => Target::new(&r.client, format!("/reports/kpis?campaign={}", r.campaign)),
            "POST /reports/kpis/rebuild" => {
                Target::new(&r.client, format!("/reports/kpis/rebuild?campaign={}", r.campaign))
            }
            "POST /invoices/{id}/payments" => {
                Target::new(&self.ship.client, format!("/invoices/{}/payments", self.invoice)).body(json!({
                    "amount": "0.01", "currency": "PEN", "method": "TRANSFER", "reference": unique("op"),
                    "paid_at": rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(1))}))
            }
            "GET /console" => Target::new(&r.client, "/console"),
            "GET /console/{proxy+}" => Target::new(&r.client, "/console/index.html"),
            "GET /console/config.json" => Target::new(&r.client, "/console/config.json"),
            _ => return None,
        })
    }

    /// The caller of a cell: its role, the client its token lists, and who it is to the record.
    fn caller(&self, role: Role, tenant: Tenant, record: Record, client: &str) -> Option<Caller> {
        let sub = match (role, record) {
            (Anon, _) => return None,
            (Agent, OtherRecord) => OTHER_AGENT.to_owned(),
            (Agent, _) => AGENT.to_owned(),
            (Validator, OwnRecord) => format!("val-1.{client}"),
            (Validator, OtherRecord) => format!("val-2.{client}"),
            (Validator, SelfRegistered) => AGENT.to_owned(),
            (Validator, AnyRecord) => format!("val-3.{client}"),
            (Supervisor, _) => "sup-1".to_owned(),
            (Finance, _) => "fin-1".to_owned(),
            (Admin, _) => "adm-1".to_owned(),
        };
        let listed = if tenant == OtherClient {
            self.other.client.as_str()
        } else {
            client
        };
        Some(caller(&sub, role.claim(), &[listed]))
    }

    /// Run one route's cells in table order; a line per failing cell.
    async fn run_route(&self, route: &'static str, rows: Vec<&'static Row>) -> Vec<String> {
        let env = &self.read.env;
        let (method, _) = route.split_once(' ').expect("METHOD /path");
        let mut failures = Vec::new();
        for &(_, role, tenant, record, expected) in rows {
            let cell = format!("{route} | {role:?} | {tenant:?} | {record:?}");
            let Some(target) = self.target(route) else {
                failures.push(format!("{cell}: no request for this route: add it to Fixture::target"));
                continue;
            };
            let mut request = env.request(method, &target.path);
            if let Some(who) = self.caller(role, tenant, record, &target.client) {
                request = request.bearer_auth(env.token(&who));
            }
            for (name, value) in &target.headers {
                request = request.header(*name, value);
            }
            if let Some(body) = &target.body {
                request = request.json(body);
            }
            let reply: Reply = env.send(request).await;
            let got = reply.status;
            let body = reply.body.to_string();
            let shown: String = body.chars().take(400).collect();
            if got != expected {
                failures.push(format!(
                    "{cell}: expected {expected}, got {got} ({}): {shown}",
                    target.path
                ));
                continue;
            }
            if let Some(mark) = refusal_mark(route, tenant, record, expected)
                && !body.contains(mark)
            {
                failures.push(format!(
                    "{cell}: {got} as expected, but not for {mark:?} ({}): {shown}",
                    target.path
                ));
            }
            if let Some(id) = target.listed.as_deref().filter(|_| got == 200) {
                let should_show = !(role == Agent && record == OtherRecord);
                if body.contains(id) != should_show {
                    let verb = if should_show { "misses" } else { "shows" };
                    failures.push(format!(
                        "{cell}: 200, but the answer {verb} record {id} ({}): {shown}",
                        target.path
                    ));
                }
            }
        }
        failures
    }
}

#[tokio::test]
async fn every_route_answers_each_role_tenant_and_record_as_the_table_says() {
    let started = Instant::now();
    let mut failures = coverage_problems();
    let fixture = Fixture::new().await;
    let set_up = started.elapsed();

    let mut routes: Vec<(&'static str, Vec<&'static Row>)> = Vec::new();
    for row in TABLE {
        match routes.iter_mut().find(|(route, _)| *route == row.0) {
            Some((_, rows)) => rows.push(row),
            None => routes.push((row.0, vec![row])),
        }
    }
    let per_route = join_all(
        routes
            .iter()
            .map(|(route, rows)| fixture.run_route(route, rows.clone()))
            .collect(),
    )
    .await;
    failures.extend(per_route.into_iter().flatten());

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for row in TABLE {
        *statuses.entry(row.4).or_default() += 1;
    }
    println!(
        "access matrix: {} routes, {} cells {statuses:?}; set-up {:.1?}, total {:.1?}",
        routes.len(),
        TABLE.len(),
        set_up,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} problems in {} cells (route | role | tenant | record):\n  {}",
        failures.len(),
        TABLE.len(),
        failures.join("\n  ")
    );
}
