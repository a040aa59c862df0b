//! Test-only: targets `hostbill:provisioning@3.0.0`, a major version the host does not run.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit", world: "hosting-module" });

struct Future;

impl exports::hostbill::provisioning::module::Guest for Future {
    fn info() -> String {
        "from the future".to_string()
    }
}

export!(Future);
