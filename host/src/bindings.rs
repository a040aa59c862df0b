//! Host bindings of the `hostbill:provisioning` worlds (from `wit/`): `hosting-module-core`, what
//! every 2.x module exports (so a 2.0 module still links), and in [`since_2_1`] the interfaces
//! added by 2.1.0 that a module may lack.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hostbill:provisioning/hosting-module-core",
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

/// The whole 2.1 world, for the exports a 2.0 module does not have (`reconciliation`): looked up
/// one by one when an operation needs them. Shared interfaces are the core bindings' own.
pub mod since_2_1 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "hostbill:provisioning/hosting-module",
        exports: { default: async },
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
/// Its version, as declared in `wit/hosting-module.wit`.
pub const WIT_VERSION: &str = "2.1.0";

use hostbill::provisioning::types::{AppField, AppSettings};

impl AppSettings {
    /// The trimmed, non-empty value of `field` in this App, if any. The one place that maps an
    /// [`AppField`] to its value.
    pub fn get(&self, field: &AppField) -> Option<&str> {
        let value = match field {
            AppField::Host => self.host.as_deref(),
            AppField::Ip => self.ip.as_deref(),
            AppField::Username => self.username.as_deref(),
            AppField::Password => self.password.as_deref(),
            AppField::StatusUrl => self.status_url.as_deref(),
            AppField::Field1 => self.field1.as_deref(),
            AppField::Field2 => self.field2.as_deref(),
            AppField::Custom(name) => self.custom.iter().find(|s| &s.name == name).map(|s| s.value.as_str()),
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }

    /// Every free-form value (numbered fields and custom settings): what is treated as secret
    /// when the module could not say which fields are.
    pub fn free_form(&self) -> impl Iterator<Item = &str> {
        [self.field1.as_deref(), self.field2.as_deref()]
            .into_iter()
            .flatten()
            .chain(self.custom.iter().map(|s| s.value.as_str()))
    }
}

impl AppField {
    /// How HostBill names the field: its App column (`status_url`), or `custom.<name>` for a
    /// setting stored in the App's serialized `custom` column.
    pub fn hostbill_name(&self) -> String {
        match self {
            AppField::Host => "host".into(),
            AppField::Ip => "ip".into(),
            AppField::Username => "username".into(),
            AppField::Password => "password".into(),
            AppField::StatusUrl => "status_url".into(),
            AppField::Field1 => "field1".into(),
            AppField::Field2 => "field2".into(),
            AppField::Custom(name) => format!("custom.{name}"),
        }
    }
}
