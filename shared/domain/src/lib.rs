//! The back office's business rules. Nothing in here knows about AWS, HTTP or JSON transport:
//! it is unit-tested without any server.

pub mod audit;
pub mod catalog;
pub mod client_billing;
pub mod clock;
pub mod contact;
pub mod credit_note;
pub mod dunning;
pub mod electronic;
pub mod events;
pub mod fulfillment;
pub mod holidays;
pub mod identity;
pub mod invoice;
pub mod kpi;
pub mod money;
pub mod presale;
pub mod principal;
pub mod receivable;
pub mod recording;
pub mod retry;
pub mod review;
pub mod sales_register;
pub mod shipment;
pub mod tipification;
pub mod validation;
pub mod wire;
pub mod words;
pub mod zone;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use clock::{Clock, SystemClock};
