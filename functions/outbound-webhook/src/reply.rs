//! The endpoint's answers: the exact `notificationsResponse` Ack, SOAP 1.1 faults, 404 and 413.
//!
//! Salesforce treats anything but the Ack (a bare 200 included) as "not delivered" and retries.

use bytes::Bytes;
use forcelink::web::{self, Response};
use http::{HeaderValue, StatusCode, header};

/// The Ack, byte for byte.
pub const ACK: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n <soapenv:Body>\n  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse>\n </soapenv:Body>\n</soapenv:Envelope>\n";

const SOAP_TYPE: &str = "text/xml; charset=utf-8";

/// Who is at fault: the sender (`soapenv:Client`) or forcelink (`soapenv:Server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    Client,
    Server,
}

/// `200` with the Ack.
pub fn ack() -> Response {
    soap(StatusCode::OK, Bytes::from_static(ACK.as_bytes()))
}

/// `500` with a SOAP 1.1 fault; `message` is plain words (escaped here).
pub fn fault(code: FaultCode, message: &str) -> Response {
    let code = match code {
        FaultCode::Client => "soapenv:Client",
        FaultCode::Server => "soapenv:Server",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n <soapenv:Body>\n  <soapenv:Fault>\n   <faultcode>{code}</faultcode>\n   <faultstring>{}</faultstring>\n  </soapenv:Fault>\n </soapenv:Body>\n</soapenv:Envelope>\n",
        web::escape(message)
    );
    soap(StatusCode::INTERNAL_SERVER_ERROR, body.into())
}

/// `404`: no such workflow or a wrong secret (the two are indistinguishable on purpose).
pub fn not_found() -> Response {
    web::json_error(StatusCode::NOT_FOUND, "not_found", "no outbound endpoint here: check the URL forcelink printed for the workflow")
}

/// `413`: the body is over the limit.
pub fn too_large(limit: usize) -> Response {
    web::json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &format!("an outbound message is at most {limit} bytes"))
}

/// `405`: only `POST` is served.
pub fn method_not_allowed() -> Response {
    let mut resp = web::json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "outbound endpoints accept POST only");
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}

fn soap(status: StatusCode, body: Bytes) -> Response {
    web::with_type(status, SOAP_TYPE, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_exact() {
        let a = ack();
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(a.headers()[header::CONTENT_TYPE], "text/xml; charset=utf-8");
        let body = std::str::from_utf8(a.body()).unwrap();
        assert!(
            body.contains(
                "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse>"
            )
        );
    }

    #[test]
    fn faults_escape_and_use_500() {
        let f = fault(FaultCode::Client, "a <b> & c");
        assert_eq!(f.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = std::str::from_utf8(f.body()).unwrap();
        assert!(body.contains("<faultcode>soapenv:Client</faultcode>"));
        assert!(body.contains("<faultstring>a &lt;b&gt; &amp; c</faultstring>"));
    }
}
