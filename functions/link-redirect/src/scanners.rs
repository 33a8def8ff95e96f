//! Requests that are not a person clicking: browser prefetches and the link checkers of mail
//! security gateways and chat previews. They never use up a link or count as a click.

use http::HeaderMap;

/// User-agent fragments (lower case) of known link scanners and preview fetchers.
const SCANNER_AGENTS: &[&str] = &[
    "bingpreview",
    "microsoft office existence discovery",
    "ms-office",
    "safelinks",
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "symantec",
    "messagelabs",
    "forcepoint",
    "trendmicro",
    "sophos",
    "fortiguard",
    "cisco-ironport",
    "ironport",
    "zscaler",
    "checkpoint",
    "google-safety",
    "googlebot",
    "google-inspectiontool",
    "slackbot",
    "facebookexternalhit",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "skypeuripreview",
    "teamsbot",
    "applebot",
    "yahoo! slurp",
    "headlesschrome",
    "python-requests",
    "go-http-client",
];

/// Whether a request is a prefetch or comes from a known scanner.
pub fn is_prefetch_or_scanner(headers: &HeaderMap) -> bool {
    let says =
        |name: &str, word: &str| headers.get_all(name).iter().any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains(word)));
    if says("purpose", "prefetch") || says("sec-purpose", "prefetch") || says("x-purpose", "preview") || says("x-moz", "prefetch") {
        return true;
    }
    match headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()) {
        Some(agent) => {
            let agent = agent.to_ascii_lowercase();
            SCANNER_AGENTS.iter().any(|s| agent.contains(s))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, http::HeaderValue::from_static(value));
        h
    }

    #[test]
    fn tells_scanners_from_people() {
        assert!(is_prefetch_or_scanner(&with("sec-purpose", "prefetch;prerender")));
        assert!(is_prefetch_or_scanner(&with("purpose", "prefetch")));
        assert!(is_prefetch_or_scanner(&with("x-moz", "prefetch")));
        assert!(is_prefetch_or_scanner(&with("user-agent", "Mozilla/5.0 (compatible; BingPreview/1.0b)")));
        assert!(is_prefetch_or_scanner(&with("user-agent", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)")));
        assert!(!is_prefetch_or_scanner(&with(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
        )));
        assert!(!is_prefetch_or_scanner(&HeaderMap::new()));
    }
}
