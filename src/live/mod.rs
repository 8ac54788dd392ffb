//! The Live API edge, in layers that only ever call downwards:
//!
//! | layer          | knows                                              | must not know          |
//! |----------------|----------------------------------------------------|------------------------|
//! | `proto`        | JSON wire types, base64, event order               | sockets, policy        |
//! | `transport`    | URL rules, TLS (ring), WebSocket, acknowledged bytes | JSON, reconnect policy |
//! | `session`      | setup handshake, setupComplete timeout, close codes | audio devices          |
//! | `setup`        | the `setup` message from session settings          | the config file        |
//! | `conn`         | one connection's task: reader, writer, socket monitor | policy               |
//! | `supervisor`   | dialing, hand-over, backlog, dead links, resend    | sockets, clocks, files |
//! | `policy`       | backoff, close classes, resume handles             | sockets, clocks        |
//! | `resume_store` | the handle kept across restarts (state directory)  | sockets                |
//! | `usage`        | token sums from `usageMetadata`                    | sockets, clocks        |
//!
//! Nothing here imports the config, the daemon or the devices: the daemon derives the settings
//! each layer takes.

pub mod conn;
pub mod key;
pub mod policy;
pub mod proto;
pub mod resume_store;
pub mod session;
pub mod setup;
pub mod supervisor;
pub mod transport;
pub mod usage;

pub use key::{ApiKey, Credential, CredentialFuture, Credentials, Token};
