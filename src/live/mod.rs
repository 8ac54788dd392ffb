//! The Live API edge, in three layers that only ever call downwards:
//!
//! | layer       | knows                                   | must not know            |
//! |-------------|-----------------------------------------|--------------------------|
//! | `proto`     | JSON wire types, base64, event order     | sockets, policy          |
//! | `transport` | URL rules, TLS (ring), WebSocket frames | JSON, reconnect policy   |
//! | `session`   | setup handshake, setupComplete timeout  | audio devices            |
//! | `policy`    | backoff, close classes, resume handles  | sockets, clocks          |

pub mod conn;
pub mod key;
pub mod policy;
pub mod proto;
pub mod resume_store;
pub mod session;
pub mod setup;
pub mod supervisor;
pub mod transport;

pub use key::ApiKey;
