//! Responses as the functions build them, convertible to API Gateway's payload v2 response.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// A plain response: status, headers, UTF-8 body. Serializable so the idempotency layer can
/// store it and replay it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ApiResponse {
    pub fn new(status: u16, body: String) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// JSON body. Serialization of our own types cannot fail; if it ever did, the client gets
    /// a 500 rather than a truncated document.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Self::new(status, body).header("content-type", "application/json"),
            Err(e) => super::ApiError::Internal(format!("serializing response: {e}")).to_response(None, None),
        }
    }

    /// A CSV table that opens in Excel as it is: UTF-8 with a byte-order mark (without it Excel
    /// reads the bytes as the system's code page and breaks every "ñ"), a header row, RFC 4180
    /// quoting, CRLF line ends; `filename` for the download.
    pub fn csv(status: u16, header: &[&str], rows: &[Vec<String>], filename: &str) -> Self {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let written = writer
            .write_record(header)
            .and_then(|()| rows.iter().try_for_each(|row| writer.write_record(row)));
        let bytes = match written
            .map_err(|e| e.to_string())
            .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
        {
            Ok(bytes) => bytes,
            Err(e) => return super::ApiError::Internal(format!("writing CSV: {e}")).to_response(None, None),
        };
        let body = format!("\u{feff}{}", String::from_utf8_lossy(&bytes));
        Self::new(status, body)
            .header("content-type", "text/csv; charset=utf-8")
            .header("content-disposition", format!("attachment; filename=\"{filename}\""))
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn into_apigw(self) -> ApiGatewayV2httpResponse {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                headers.append(name, value);
            }
        }
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(self.status);
        response.headers = headers;
        response.body = if self.body.is_empty() {
            None
        } else {
            Some(Body::Text(self.body))
        };
        response.is_base64_encoded = false;
        response
    }
}
