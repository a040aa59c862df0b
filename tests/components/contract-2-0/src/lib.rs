//! Test-only: a module built against `hostbill:provisioning@2.0.0`, before `budget` was added in
//! 2.1.0. A 2.1 host must still link it (a newer minor only adds) and run its operations.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit", world: "hosting-module" });

use exports::hostbill::provisioning::module::Guest;
use hostbill::provisioning::log::{Level, log};
use hostbill::provisioning::types::{
    Account, AppField, AppFieldUsage, AppSettings, ConnectionReport, ModuleError, ModuleInfo, Outcome, SyncOptions,
    SyncReport,
};

struct Contract20;

fn unsupported<T>() -> Result<T, ModuleError> {
    Err(ModuleError::Configuration("the 2.0 test module only suspends".to_string()))
}

impl Guest for Contract20 {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "contract-2-0".to_string(),
            version: "2.0.0-test".to_string(),
            description: "built against hostbill:provisioning@2.0.0".to_string(),
            app_fields: vec![AppFieldUsage {
                field: AppField::StatusUrl,
                label: "Host URL".to_string(),
                description: String::new(),
                required: true,
                secret: false,
            }],
            endpoint_field: AppField::StatusUrl,
        }
    }

    fn test_connection(_: AppSettings) -> Result<ConnectionReport, ModuleError> {
        unsupported()
    }

    fn create(_: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        unsupported()
    }

    fn suspend(_: AppSettings, account: Account) -> Result<Outcome, ModuleError> {
        log(Level::Info, &format!("2.0 module: suspend of account {}", account.id));
        Ok(Outcome {
            message: format!("suspended account {} (2.0 module)", account.id),
            facts: vec![],
            changed_remote: false,
        })
    }

    fn unsuspend(_: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        unsupported()
    }

    fn terminate(_: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        unsupported()
    }

    fn sync(_: AppSettings, _: Vec<Account>, _: SyncOptions) -> Result<SyncReport, ModuleError> {
        unsupported()
    }
}

export!(Contract20);
