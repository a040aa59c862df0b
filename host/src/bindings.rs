//! Host bindings of the `hostbill:provisioning/hosting-module` world (from `wit/`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hostbill:provisioning/hosting-module",
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "hostbill:provisioning";
/// Its version, as declared in `wit/hosting-module.wit`.
pub const WIT_VERSION: &str = "1.0.0";
