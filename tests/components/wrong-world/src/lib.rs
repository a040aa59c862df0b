//! Test-only: a component of another world (`acme:other/gadget`).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit", world: "gadget" });

struct Gadget;

impl exports::acme::other::thing::Guest for Gadget {
    fn run() -> String {
        "not a hosting module".to_string()
    }
}

export!(Gadget);
