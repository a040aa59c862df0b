//! Host bindings of the `hostbill:provisioning` worlds (from `wit/`): `hosting-module-core`, what
//! every 2.x module exports (so a 2.0 module still links), and in [`latest`] the interfaces added
//! since (2.1.0: `reconciliation`; 2.2.0: `streaming-sync`, and the `sync-output` import; 2.3.0:
//! `usage`, and the `usage-output` import; 2.4.0: `lifecycle`) that a module may lack.

wasmtime::component::bindgen!({
    path: "../wit/since_v2.4.0",
    world: "hostbill:provisioning/hosting-module-core",
    exports: { default: async },
    // A module handing the host more log bytes than `limits::MAX_LOG_LIFTED_BYTES` is stopped.
    imports: { "hostbill:provisioning/log.log": trappable, "hostbill:provisioning/log.call": trappable },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

/// The whole current world, for the exports an older module does not have (`reconciliation`,
/// `streaming-sync`): looked up one by one when an operation needs them. Shared interfaces are
/// the core bindings' own. `sync-output.emit` may stop the module (the report limit).
pub mod latest {
    wasmtime::component::bindgen!({
        path: "../wit/since_v2.4.0",
        world: "hostbill:provisioning/hosting-module",
        exports: { default: async },
        imports: {
            "hostbill:provisioning/sync-output.emit": trappable,
            "hostbill:provisioning/usage-output.emit": trappable,
        },
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "hostbill:provisioning/types": super::hostbill::provisioning::types,
            "hostbill:provisioning/log": super::hostbill::provisioning::log,
            "hostbill:provisioning/budget": super::hostbill::provisioning::budget,
        },
    });
}

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "hostbill:provisioning";
/// Its version: the newest frozen folder, `wit/since_v2.4.0/` (see `compat.rs` for the range it runs).
pub const WIT_VERSION: &str = "2.4.0";

use hostbill::provisioning::types::{AppField, AppSettings, HostbillStatus};

/// Whether an App column's value is removed from the host's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Always (the App password).
    Always,
    /// When the module could not say which fields are secret (free-form fields).
    Unless,
    /// Only if the module marks it secret.
    Declared,
}

/// One of HostBill's App columns the contract carries: the one table of how HostBill names it,
/// which [`AppField`] it is, where its value lives in [`AppSettings`], and whether it is secret
/// by default. A new column is one entry here (and the field in the WIT and in `request.rs`'s
/// App row, which the compiler checks against the WIT record).
pub struct AppColumn {
    /// HostBill's column name (`status_url`), as the request and the reports spell it.
    pub name: &'static str,
    pub field: AppField,
    pub secrecy: Secrecy,
    value: fn(&AppSettings) -> &Option<String>,
    slot: fn(&mut AppSettings) -> &mut Option<String>,
}

macro_rules! app_columns {
    ($($name:ident => $variant:ident, $secrecy:ident;)*) => {
        /// Every App column of [`AppSettings`] (all but `secure` and `custom`), in WIT order.
        pub static APP_COLUMNS: [AppColumn; [$(stringify!($name)),*].len()] = [$(AppColumn {
            name: stringify!($name),
            field: AppField::$variant,
            secrecy: Secrecy::$secrecy,
            value: |a| &a.$name,
            slot: |a| &mut a.$name,
        }),*];
    };
}

app_columns! {
    host => Host, Declared;
    ip => Ip, Declared;
    username => Username, Declared;
    password => Password, Always;
    status_url => StatusUrl, Declared;
    field1 => Field1, Unless;
    field2 => Field2, Unless;
}

impl AppColumn {
    /// The column of `field` (`None` for a custom setting).
    pub fn of(field: &AppField) -> Option<&'static AppColumn> {
        APP_COLUMNS.iter().find(|c| std::mem::discriminant(&c.field) == std::mem::discriminant(field))
    }

    /// The column's value in `app`, as stored.
    pub fn value<'a>(&self, app: &'a AppSettings) -> Option<&'a str> {
        (self.value)(app).as_deref()
    }

    /// Where the column's value is stored in `app`.
    pub fn slot<'a>(&self, app: &'a mut AppSettings) -> &'a mut Option<String> {
        (self.slot)(app)
    }
}

impl AppSettings {
    /// An App with no settings (the request's App row starts from it).
    pub fn empty() -> AppSettings {
        AppSettings {
            host: None,
            ip: None,
            username: None,
            password: None,
            secure: false,
            status_url: None,
            field1: None,
            field2: None,
            custom: Vec::new(),
        }
    }

    /// The trimmed, non-empty value of `field` in this App, if any.
    pub fn get(&self, field: &AppField) -> Option<&str> {
        let value = match field {
            AppField::Custom(name) => self.custom.iter().find(|s| &s.name == name).map(|s| s.value.as_str()),
            column => AppColumn::of(column).and_then(|c| c.value(self)),
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }

    /// The values secret whatever the module says (the password).
    pub fn always_secret(&self) -> impl Iterator<Item = &str> {
        APP_COLUMNS.iter().filter(|c| c.secrecy == Secrecy::Always).filter_map(|c| c.value(self))
    }

    /// Every free-form value (numbered fields and custom settings): what is treated as secret
    /// when the module could not say which fields are.
    pub fn free_form(&self) -> impl Iterator<Item = &str> {
        APP_COLUMNS
            .iter()
            .filter(|c| c.secrecy == Secrecy::Unless)
            .filter_map(|c| c.value(self))
            .chain(self.custom.iter().map(|s| s.value.as_str()))
    }
}

impl AppField {
    /// How HostBill names the field: its App column (`status_url`), or `custom.<name>` for a
    /// setting stored in the App's serialized `custom` column.
    pub fn hostbill_name(&self) -> String {
        match (self, AppColumn::of(self)) {
            (_, Some(column)) => column.name.to_string(),
            (AppField::Custom(name), None) => format!("custom.{name}"),
            (other, None) => unreachable!("{other:?} is missing from APP_COLUMNS"),
        }
    }
}

impl HostbillStatus {
    /// Every HostBill status, in WIT order.
    pub const ALL: [HostbillStatus; 6] = {
        use HostbillStatus::*;
        [Pending, Active, Suspended, Terminated, Cancelled, Fraud]
    };

    /// HostBill's spelling of the status (`Active`).
    pub fn hostbill_name(self) -> &'static str {
        use HostbillStatus::*;
        match self {
            Pending => "Pending",
            Active => "Active",
            Suspended => "Suspended",
            Terminated => "Terminated",
            Cancelled => "Cancelled",
            Fraud => "Fraud",
        }
    }

    /// The status HostBill spells `text` (any case, spaces around ignored).
    pub fn from_hostbill_name(text: &str) -> Option<HostbillStatus> {
        Self::ALL.into_iter().find(|s| s.hostbill_name().eq_ignore_ascii_case(text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_maps_its_own_field_both_ways() {
        let mut app = AppSettings::empty();
        for column in &APP_COLUMNS {
            *column.slot(&mut app) = Some(format!(" {} ", column.name));
        }
        for column in &APP_COLUMNS {
            assert_eq!(column.field.hostbill_name(), column.name);
            assert_eq!(app.get(&column.field), Some(column.name), "trimmed value of {}", column.name);
        }
        assert_eq!(app.host.as_deref(), Some(" host "));
        assert_eq!(app.field2.as_deref(), Some(" field2 "));
        assert_eq!(AppField::Custom("On terminate".into()).hostbill_name(), "custom.On terminate");
        assert_eq!(app.always_secret().collect::<Vec<_>>(), [" password "]);
        assert_eq!(app.free_form().collect::<Vec<_>>(), [" field1 ", " field2 "]);
    }

    #[test]
    fn statuses_are_spelled_as_hostbill_does() {
        let names: Vec<&str> = HostbillStatus::ALL.iter().map(|s| s.hostbill_name()).collect();
        assert_eq!(names, ["Pending", "Active", "Suspended", "Terminated", "Cancelled", "Fraud"]);
        assert_eq!(HostbillStatus::from_hostbill_name(" suspended "), Some(HostbillStatus::Suspended));
        assert_eq!(HostbillStatus::from_hostbill_name("Deleted"), None);
    }
}
