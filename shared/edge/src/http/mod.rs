//! The HTTP edge: requests from API Gateway, problem+json errors, responses, idempotency.

pub mod idempotency;
pub mod lambda;
pub mod problem;
pub mod request;
pub mod response;
pub mod webhook;

pub use lambda::{Invocation, respond};
pub use problem::ApiError;
pub use request::ApiRequest;
pub use response::ApiResponse;
