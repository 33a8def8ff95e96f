//! The partner SOAP `login` call (`POST /services/Soap/u/{version}`), as simple-salesforce and
//! other clients use it for username + password + security token logins.

use crate::ids;
use crate::server::Req;
use crate::sim::Core;
use crate::xml::{elements, esc, first_text};
use axum::body::Body;
use axum::http::{Response, StatusCode};

fn xml(status: StatusCode, body: String) -> Response<Body> {
    Response::builder().status(status).header("content-type", "text/xml; charset=utf-8").body(Body::from(body)).unwrap_or_default()
}

fn fault(code: &str, msg: &str) -> Response<Body> {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:sf=\"urn:fault.partner.soap.sforce.com\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {m}</faultstring><detail><sf:LoginFault xsi:type=\"sf:LoginFault\"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{m}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
            m = esc(msg)
        ),
    )
}

/// Handles a SOAP login.
pub fn login(core: &Core, r: Req) -> Response<Body> {
    let version = r.path.trim_start_matches("/services/Soap/u/").split('/').next().unwrap_or("64.0").to_string();
    let Ok(text) = std::str::from_utf8(&r.body) else { return fault("INVALID_LOGIN", "bad body") };
    let Ok(els) = elements(text) else { return fault("INVALID_LOGIN", "malformed request") };
    if !els.iter().any(|e| e.local == "login") {
        return fault("UNKNOWN_EXCEPTION", "only the login call is simulated");
    }
    let username = first_text(&els, "username").unwrap_or_default();
    let password = first_text(&els, "password").unwrap_or_default();
    let now_ms = core.clock.now_ms();
    let mut w = core.lock();
    let Some((oi, uid)) = crate::oauth::check_password(&w, &username, &password, r.vhost.as_deref()) else {
        return fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.");
    };
    w.orgs[oi].count("soap_login", false);
    let session = w.issue_access(oi, &uid, None, None, "api", now_ms);
    let org = &w.orgs[oi];
    let org15 = ids::to15(&org.id);
    let base = core.instance_url();
    let user = org.table("User").ok().and_then(|(_, t)| t.get(&uid)).map(|u| u.fields.clone()).unwrap_or_default();
    let s = |k: &str| esc(user.get(k).and_then(|v| v.as_str()).unwrap_or(""));
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns=\"urn:partner.soap.sforce.com\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>{sandbox}</sandbox>\
<serverUrl>{base}/services/Soap/u/{version}/{org15}</serverUrl><sessionId>{session}</sessionId><userId>{uid}</userId>\
<userInfo><accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode><orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false</orgHasPersonAccounts>\
<organizationId>{orgid}</organizationId><organizationMultiCurrency>false</organizationMultiCurrency><organizationName>{orgname}</organizationName><profileId>00e5g000000AAAAAAA</profileId><roleId xsi:nil=\"true\"/><sessionSecondsValid>7200</sessionSecondsValid>\
<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{email}</userEmail><userFullName>{name}</userFullName><userId>{uid}</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale><userName>{uname}</userName><userTimeZone>America/Los_Angeles</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo>\
</result></loginResponse></soapenv:Body></soapenv:Envelope>",
            sandbox = org.sandbox,
            orgid = org.id,
            orgname = esc(&org.name),
            email = s("Email"),
            name = s("Name"),
            uname = s("Username"),
        ),
    )
}
