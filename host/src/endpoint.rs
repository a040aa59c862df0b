//! The App's endpoint URL (the field the module's `info` names), parsed and normalised once: the
//! egress policy allows its origin, `doctor` checks and reaches it, and the report names it
//! (`endpoint`) for the PHP side. The rule, and the URLs it accepts or refuses, are one table:
//! `hostbill-module/tests/fixtures/endpoint-urls.json` (docs/hostbill.md, "Host URL").

use crate::bindings::AppColumn;
use crate::bindings::hostbill::provisioning::types as wit;
use crate::request::quote;
use crate::sandbox::origin::{Origin, normalise_host};

/// A valid endpoint: its origin and the URL in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, host (lower case, IDNA, IP literals canonical, no trailing dot) and port.
    pub origin: Origin,
    /// `scheme://host[:port]/path`: the origin's host, the port only when not the scheme's
    /// default, the path as the URL standard normalises it, without trailing slashes.
    pub url: String,
}

impl Endpoint {
    /// Parses an App's endpoint URL. The error quotes it short and names what is wrong, so the
    /// caller only adds the field (`the App's Host URL "ftp://x" must start with https://...`).
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let raw = raw.trim();
        let refuse = |why: &str| Err(format!("{} {why}", quote(raw)));
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let Some(rest) = ["https://", "http://"].iter().find_map(|p| lower.starts_with(p).then(|| &raw[p.len()..]))
        else {
            return refuse("must start with https:// (or http://)");
        };
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("contains spaces or control characters");
        }
        // The authority as written: the URL standard would skip extra slashes and read
        // `https:///1.0` as the host `1.0`, i.e. 1.0.0.0.
        let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return refuse("has no host name");
        }
        if authority.contains('@') {
            return refuse("must not contain user credentials");
        }
        if raw.contains(['?', '#']) {
            return refuse("must not contain a query or fragment");
        }
        let url = match url::Url::parse(raw) {
            Ok(url) => url,
            Err(e) => return refuse(&format!("is not a valid URL ({e})")),
        };
        let (Some(host), Some(port)) = (url.host().filter(|h| !h.to_string().is_empty()), url.port_or_known_default())
        else {
            return refuse("has no host name");
        };
        let origin = Origin { scheme: url.scheme().to_string(), host: normalise_host(host), port };
        let url = format!("{}://{}{}", origin.scheme, origin.authority(), url.path().trim_end_matches('/'));
        Ok(Endpoint { origin, url })
    }
}

impl Endpoint {
    /// The endpoint `field` of `app` holds, if it holds a valid one.
    pub fn of(app: &wit::AppSettings, field: &wit::AppField) -> Option<Endpoint> {
        app.get(field).and_then(|url| Endpoint::parse(url).ok())
    }

    /// Sets `field` of `app` to `url` (the URL in normal form, for the module).
    pub fn set(app: &mut wit::AppSettings, field: &wit::AppField, url: String) {
        match (field, AppColumn::of(field)) {
            (_, Some(column)) => *column.slot(app) = Some(url),
            (wit::AppField::Custom(name), None) => {
                if let Some(setting) = app.custom.iter_mut().find(|s| &s.name == name) {
                    setting.value = url;
                }
            }
            (other, None) => unreachable!("{other:?} is missing from APP_COLUMNS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared table of endpoint URLs: what each valid one normalises to, and what is wrong
    /// with each invalid one.
    const TABLE: &str = include_str!("../../hostbill-module/tests/fixtures/endpoint-urls.json");

    #[test]
    fn the_shared_table_of_endpoint_urls() {
        let table: serde_json::Value = serde_json::from_str(TABLE).unwrap();
        let valid = table["valid"].as_array().unwrap();
        let invalid = table["invalid"].as_array().unwrap();
        assert!(valid.len() >= 10 && invalid.len() >= 8, "the table is not empty");
        for case in valid {
            let raw = case["url"].as_str().unwrap();
            let endpoint = Endpoint::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(endpoint.origin.to_string(), case["origin"], "{raw:?}");
            assert_eq!(endpoint.url, case["url_normalised"], "{raw:?}");
            // Normal form is a fixed point: the module, handed it, reads the same origin.
            assert_eq!(Endpoint::parse(&endpoint.url), Ok(endpoint.clone()), "{raw:?}");
        }
        for case in invalid {
            let raw = case["url"].as_str().unwrap();
            let problem = case["problem"].as_str().unwrap();
            let error = Endpoint::parse(raw).expect_err(raw);
            assert!(error.ends_with(problem) || error.contains(&format!(" {problem}")), "{raw:?}: {error}");
            assert!(error.starts_with(&quote(raw.trim())), "the error quotes the URL: {error}");
        }
    }

    #[test]
    fn the_module_is_handed_the_url_in_normal_form() {
        let mut app = wit::AppSettings::empty();
        app.status_url = Some(" HTTP://Sim.Example:8080/x/../1.0/ ".into());
        app.custom = vec![wit::AppSetting { name: "API".into(), value: "https://API.example./v2/".into() }];
        let endpoint = Endpoint::of(&app, &wit::AppField::StatusUrl).unwrap();
        assert_eq!(endpoint.origin.to_string(), "http://sim.example:8080");
        Endpoint::set(&mut app, &wit::AppField::StatusUrl, endpoint.url);
        assert_eq!(app.status_url.as_deref(), Some("http://sim.example:8080/1.0"));
        let custom = wit::AppField::Custom("API".into());
        let endpoint = Endpoint::of(&app, &custom).unwrap();
        Endpoint::set(&mut app, &custom, endpoint.url);
        assert_eq!(app.get(&custom), Some("https://api.example/v2"));
        assert_eq!(app.status_url.as_deref(), Some("http://sim.example:8080/1.0"), "only the named field");
        app.field1 = Some("ftp://x".into());
        assert_eq!(Endpoint::of(&app, &wit::AppField::Field1), None, "an invalid URL is no endpoint");
        assert_eq!(Endpoint::of(&app, &wit::AppField::Field2), None, "nor an empty field");
    }

    #[test]
    fn long_urls_are_quoted_short() {
        let long = format!("ftp://{}", "x".repeat(100_000));
        let error = Endpoint::parse(&long).unwrap_err();
        assert!(error.len() < 200 && error.contains("(100006 bytes)"), "{error}");
    }
}
