//! What each HostBill App field means to the CloudPe module, and the validated settings built
//! from them. This is the one place that maps App columns to CloudPe settings.

use crate::wit::{AppField, AppFieldUsage, AppSettings, ModuleError};

/// App field holding the API base URL ("Host URL" in HostBill's form).
pub const URL_FIELD: AppField = AppField::StatusUrl;
/// App field holding the CloudPe `appid`.
pub const APPID_FIELD: AppField = AppField::Field1;
/// App field holding the CloudPe `session` token (a secret).
pub const SESSION_FIELD: AppField = AppField::Field2;
/// Custom App setting naming the client custom field that holds the CloudPe user id. A custom
/// setting because HostBill's App table has no column for it (only `field1`, `field2` and the
/// serialized `custom`); per App rather than per product because the daily sync, which works per
/// App across products, needs it. The HostBill module declares it under the same name.
pub const ID_FIELD_CODE_SETTING: &str = "Client field code";
/// Custom App setting choosing what Terminate does (per App: it is a policy towards that
/// CloudPe platform's data, and keeps the module's settings in one place).
pub const TERMINATE_POLICY_SETTING: &str = "On terminate";
/// Custom App setting turning on the call log (every CloudPe call, parameters masked, to
/// HostBill's module log): per App, because it is for debugging one platform's connection.
pub const CALL_LOG_SETTING: &str = "Call log";

/// Custom App setting holding the fixed UTC offset CloudPe's billing history is written in
/// (`starttime`, `endtime` and each row's `dateTime`): the API does not document its time zone
/// (docs/cloudpe-api.md, "Usage"), so the admin states it. `UTC` (the default), `+05:30`,
/// `-03:00`.
pub const USAGE_TIME_ZONE_SETTING: &str = "Usage time zone";

/// Custom App setting choosing what Create does for a client without a CloudPe id: `link`
/// (default: find the CloudPe user by the client's email and link it) or `provision` (the same,
/// and create the user when none has the email). Per App: whether the module may create users
/// on that platform is a decision about the platform.
pub const ON_CREATE_SETTING: &str = "On create";

/// The product option naming the CloudPe group (tariff and quota set) of a product's accounts:
/// Create and ChangePackage put the user in it, the review reports users outside it. A product
/// option, not an App setting: packages differ by group.
pub const PRODUCT_GROUP_OPTION: &str = "CloudPe group";

/// Default code of the client custom field holding the CloudPe user id.
pub const DEFAULT_ID_FIELD_CODE: &str = "cloudpeid";

/// Inference (docs/cloudpe-api.md, "Requests"): the API lives under `/1.0`; admins may or may not include it in the
/// Host URL.
pub const API_VERSION_SEGMENT: &str = "1.0";

/// The App fields the module uses, with the labels HostBill shows.
pub fn app_fields() -> Vec<AppFieldUsage> {
    let usage = |field: AppField, label: &str, description: &str, required: bool, secret: bool| AppFieldUsage {
        field,
        label: label.to_string(),
        description: description.to_string(),
        required,
        secret,
    };
    vec![
        usage(
            URL_FIELD,
            "Host URL",
            "CloudPe API base URL, e.g. https://api.cloudpe.example.com (\"/1.0\" is added when missing)",
            true,
            false,
        ),
        usage(
            APPID_FIELD,
            "App Id",
            "CloudPe application id sent as `appid` (admin tools commonly use \"cluster\")",
            true,
            false,
        ),
        usage(SESSION_FIELD, "Session", "Personal access token of a CloudPe platform admin", true, true),
        usage(
            AppField::Custom(ID_FIELD_CODE_SETTING.into()),
            "Client field code",
            "Code of the client custom field holding the CloudPe user id (default: cloudpeid)",
            false,
            false,
        ),
        usage(
            AppField::Custom(TERMINATE_POLICY_SETTING.into()),
            "On terminate",
            "\"none\" (default): leave the CloudPe user untouched; \"deactivate\": set it inactive",
            false,
            false,
        ),
        usage(
            AppField::Custom(CALL_LOG_SETTING.into()),
            "Call log",
            "\"off\" (default); \"on\": log every CloudPe call (method, parameters with the session masked, HTTP status, duration, result code, the start of the reply) to HostBill's module log",
            false,
            false,
        ),
        usage(
            AppField::Custom(ON_CREATE_SETTING.into()),
            "On create",
            "For a client without a CloudPe id: \"link\" (default): link the CloudPe user with the client's email; \"provision\" (experimental): also create the user when none has it",
            false,
            false,
        ),
        usage(
            AppField::Custom(USAGE_TIME_ZONE_SETTING.into()),
            "Usage time zone",
            "The fixed UTC offset CloudPe's billing history uses: \"UTC\" (default), or e.g. \"+05:30\", \"-03:00\"",
            false,
            false,
        ),
    ]
}

/// The UTC offset (seconds east of UTC) of CloudPe's billing history, from the App's
/// [`USAGE_TIME_ZONE_SETTING`]: `UTC`, `Z` or `±HH:MM` (at most 14 hours). Anything else is a
/// configuration error naming the setting.
pub fn usage_utc_offset(app: &AppSettings) -> Result<i64, ModuleError> {
    let Some(raw) = app.get(&AppField::Custom(USAGE_TIME_ZONE_SETTING.into())) else {
        return Ok(0);
    };
    parse_utc_offset(raw).ok_or_else(|| {
        ModuleError::Configuration(format!(
            "the App's {USAGE_TIME_ZONE_SETTING} field is {:?}: use \"UTC\" or a fixed offset such as \"+05:30\" or \"-03:00\"",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// `UTC`, `Z` or `±HH:MM` as seconds east of UTC.
fn parse_utc_offset(raw: &str) -> Option<i64> {
    if raw.eq_ignore_ascii_case("utc") || raw.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 || !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours <= 14 && minutes < 60 && hours * 60 + minutes <= 14 * 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// URL scheme of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A validated API base URL: `scheme://authority{path}` where `path` ends in `/1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: Scheme,
    /// `host[:port]`, as the admin wrote it.
    pub authority: String,
    /// Path prefix without a trailing slash, e.g. `/1.0` or `/api/1.0`.
    pub path: String,
}

impl BaseUrl {
    /// Parses the Host URL. The error names what is wrong with it.
    pub fn parse(raw: &str) -> Result<BaseUrl, String> {
        let raw = raw.trim();
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(raw, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ci(raw, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("Host URL {raw:?} must start with https:// (or http://)"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!("Host URL {raw:?} must not contain a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("Host URL {raw:?} has no host name"));
        }
        if authority.contains('@') {
            return Err(format!("Host URL {raw:?} must not contain user credentials"));
        }
        if authority.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("Host URL {raw:?} contains spaces"));
        }
        let mut path = path.trim_end_matches('/').to_string();
        let version_suffix = format!("/{API_VERSION_SEGMENT}");
        if !path.ends_with(&version_suffix) {
            path.push_str(&version_suffix);
        }
        Ok(BaseUrl { scheme, authority: authority.to_string(), path })
    }

    /// Path (no query) of an API method, e.g. `/1.0/billing/account/rest/getaccounts`.
    pub fn method_path(&self, service: &str, method: &str) -> String {
        format!("{}/{}/rest/{}", self.path, service.trim_matches('/'), method.to_ascii_lowercase())
    }

    /// `scheme://authority` for messages.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` rather than slicing: the input may not have a character boundary there.
    s.get(..prefix.len()).filter(|head| head.eq_ignore_ascii_case(prefix)).map(|_| &s[prefix.len()..])
}

/// What Terminate does on CloudPe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminatePolicy {
    /// No API call: the CloudPe user stays as it is (the default; CloudPe users are created and
    /// removed by hand).
    LeaveUntouched,
    /// Set the CloudPe user inactive (status 2), stopping its environments.
    Deactivate,
}

/// What Create does for a client without a CloudPe id ([`ON_CREATE_SETTING`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCreate {
    /// Find the user by the client's email; link it when exactly one has it (the default).
    Link,
    /// As `Link`, and create the user when none has the email (experimental).
    Provision,
}

/// The product's CloudPe group ([`PRODUCT_GROUP_OPTION`]), trimmed, if the product names one.
pub fn product_group(product: &[crate::wit::AppSetting]) -> Option<&str> {
    product
        .iter()
        .find(|s| s.name.trim().eq_ignore_ascii_case(PRODUCT_GROUP_OPTION))
        .map(|s| s.value.trim())
        .filter(|v| !v.is_empty())
}

/// Validated CloudPe settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: BaseUrl,
    pub appid: String,
    pub session: String,
    pub id_field_code: String,
    pub terminate_policy: TerminatePolicy,
    /// Whether every call is recorded for the App's call log.
    pub call_log: bool,
    pub on_create: OnCreate,
}

impl Settings {
    /// Validates the App record. Every error names the App field (by its label) to fix.
    pub fn from_app(app: &AppSettings) -> Result<Settings, ModuleError> {
        let required = |field: AppField, label: &str| {
            app.get(&field)
                .map(str::to_string)
                .ok_or_else(|| ModuleError::Configuration(format!("the App's {label} field is empty")))
        };
        let url = required(URL_FIELD, "Host URL")?;
        let base_url = BaseUrl::parse(&url).map_err(ModuleError::Configuration)?;
        let appid = required(APPID_FIELD, "App Id")?;
        let session = required(SESSION_FIELD, "Session")?;
        let id_field_code =
            app.get(&AppField::Custom(ID_FIELD_CODE_SETTING.into())).unwrap_or(DEFAULT_ID_FIELD_CODE).to_string();
        let terminate_policy =
            match app.get(&AppField::Custom(TERMINATE_POLICY_SETTING.into())).map(str::to_ascii_lowercase).as_deref() {
                None | Some("none") => TerminatePolicy::LeaveUntouched,
                Some("deactivate") => TerminatePolicy::Deactivate,
                Some(other) => {
                    return Err(ModuleError::Configuration(format!(
                        "the App's On terminate field is {other:?}: use \"none\" or \"deactivate\""
                    )));
                }
            };
        let call_log = match app.get(&AppField::Custom(CALL_LOG_SETTING.into())).map(str::to_ascii_lowercase).as_deref()
        {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(ModuleError::Configuration(format!(
                    "the App's Call log field is {:?}: use \"off\" or \"on\"",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        let on_create =
            match app.get(&AppField::Custom(ON_CREATE_SETTING.into())).map(str::to_ascii_lowercase).as_deref() {
                None | Some("link") => OnCreate::Link,
                Some("provision") => OnCreate::Provision,
                Some(other) => {
                    return Err(ModuleError::Configuration(format!(
                        "the App's On create field is {:?}: use \"link\" or \"provision\"",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
        Ok(Settings { base_url, appid, session, id_field_code, terminate_policy, call_log, on_create })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::AppSetting;

    fn setting(name: &str, value: &str) -> AppSetting {
        AppSetting { name: name.into(), value: value.into() }
    }

    fn app(url: &str) -> AppSettings {
        AppSettings {
            status_url: Some(url.into()),
            field1: Some("cluster".into()),
            field2: Some("tok".into()),
            ..Default::default()
        }
    }

    #[test]
    fn base_url_appends_the_version_segment_once() {
        for (raw, path) in [
            ("https://api.example.com", "/1.0"),
            ("https://api.example.com/", "/1.0"),
            ("https://api.example.com/1.0", "/1.0"),
            ("https://api.example.com/1.0//", "/1.0"),
            ("https://api.example.com/jel/1.0", "/jel/1.0"),
            ("  HTTPS://api.example.com:8443/1.0/ ", "/1.0"),
        ] {
            let url = BaseUrl::parse(raw).unwrap();
            assert_eq!(url.path, path, "{raw}");
            assert_eq!(
                url.method_path("billing/account", "GetAccounts"),
                format!("{path}/billing/account/rest/getaccounts")
            );
        }
        let url = BaseUrl::parse("https://api.example.com:8443/1.0").unwrap();
        assert_eq!(url.authority, "api.example.com:8443");
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.origin(), "https://api.example.com:8443");
    }

    /// The host hands the module the Host URL in its normal form (host/src/endpoint.rs): every
    /// URL of the shared table, in that form, is read here with the origin the host allows.
    #[test]
    fn the_hosts_normal_form_of_every_url_is_read_with_the_same_origin() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../../hostbill-module/tests/fixtures/endpoint-urls.json")).unwrap();
        for case in table["valid"].as_array().unwrap() {
            let normal = case["url_normalised"].as_str().unwrap();
            let url = BaseUrl::parse(normal).unwrap_or_else(|e| panic!("{normal}: {e}"));
            // The host's origin names the port always; the URL names it only when not the default.
            let default_port = if url.scheme == Scheme::Https { 443 } else { 80 };
            let explicit_port = url.authority.rsplit(']').next().unwrap_or_default().contains(':');
            let origin = if explicit_port { url.origin() } else { format!("{}:{default_port}", url.origin()) };
            assert_eq!(origin, case["origin"].as_str().unwrap(), "{normal}");
            let with_version = format!("{normal}/1.0");
            assert!(
                normal.ends_with(&url.path) || with_version.ends_with(&url.path),
                "{normal}: {} is not the path given, /1.0 added when missing",
                url.path
            );
        }
    }

    #[test]
    fn base_url_rejections_name_the_problem() {
        for (raw, needle) in [
            ("api.example.com", "must start with https://"),
            ("ftp://x", "must start with https://"),
            ("https://", "no host name"),
            ("https:///1.0", "no host name"),
            ("https://u:p@x/1.0", "user credentials"),
            ("https://x/1.0?a=b", "query or fragment"),
            ("https://x y/", "spaces"),
        ] {
            let err = BaseUrl::parse(raw).unwrap_err();
            assert!(err.contains(needle), "{raw}: {err}");
        }
    }

    #[test]
    fn settings_name_the_empty_field() {
        let mut a = app("https://x");
        a.field2 = Some("  ".into());
        let err = Settings::from_app(&a).unwrap_err();
        assert_eq!(err, ModuleError::Configuration("the App's Session field is empty".into()));
        let mut a = app("https://x");
        a.status_url = None;
        assert_eq!(
            Settings::from_app(&a).unwrap_err(),
            ModuleError::Configuration("the App's Host URL field is empty".into())
        );
    }

    #[test]
    fn the_usage_time_zone_is_utc_or_a_fixed_offset() {
        let mut a = app("https://x");
        assert_eq!(usage_utc_offset(&a), Ok(0));
        for (value, offset) in [("UTC", 0), ("utc", 0), ("+00:00", 0), ("+05:30", 19_800), ("-03:00", -10_800)] {
            a.custom = vec![setting("Usage time zone", value)];
            assert_eq!(usage_utc_offset(&a), Ok(offset), "{value}");
        }
        for bad in ["Asia/Kolkata", "+5:30", "+05:60", "+15:00", "05:30", "+05:30:00", "IST", "+0530"] {
            a.custom = vec![setting("Usage time zone", bad)];
            let e = usage_utc_offset(&a).unwrap_err();
            assert!(
                matches!(&e, ModuleError::Configuration(m) if m.contains("Usage time zone") && m.contains(bad)),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn settings_defaults_and_policy() {
        let s = Settings::from_app(&app("https://x")).unwrap();
        assert_eq!(s.id_field_code, "cloudpeid");
        assert_eq!(s.terminate_policy, TerminatePolicy::LeaveUntouched);
        let mut a = app("https://x");
        a.custom = vec![setting("Client field code", " cpid "), setting("On terminate", "Deactivate")];
        let s = Settings::from_app(&a).unwrap();
        assert_eq!(s.id_field_code, "cpid");
        assert_eq!(s.terminate_policy, TerminatePolicy::Deactivate);
        a.custom[1].value = "delete".into();
        assert!(Settings::from_app(&a).unwrap_err().message().contains("On terminate"));
        a.custom = vec![setting("Call log", "On")];
        assert!(Settings::from_app(&a).unwrap().call_log);
        a.custom = vec![setting("Call log", "verbose")];
        assert!(Settings::from_app(&a).unwrap_err().message().contains("Call log field is \"verbose\""));
    }
}
