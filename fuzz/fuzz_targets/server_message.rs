//! The server frame parser: `ServerMessage::parse`, `into_events` and `session::decode` on
//! arbitrary bytes. Server frames come off the network, so nothing here may panic.

#![no_main]

use gemlive::live::proto::{ServerEvent, ServerMessage};
use gemlive::live::session::{decode, Frame};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::Message;

fuzz_target!(|data: &[u8]| {
    let parsed = ServerMessage::parse(data);
    match &parsed {
        Ok(msg) => {
            // parse validates audio parts so that `into_events` cannot fail or lose them.
            for ev in msg.clone().into_events() {
                if let ServerEvent::Audio { rate_hz, .. } = ev {
                    assert!(rate_hz > 0, "audio event with rate 0");
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    // decode agrees with parse, and refuses anything over its limit before parsing it.
    let frame = decode(Message::Binary(data.to_vec().into()), usize::MAX);
    match (&frame, &parsed) {
        (Frame::Server(_), Ok(_)) | (Frame::Malformed(_), Err(_)) => {}
        _ => panic!("decode {frame:?} disagrees with parse {parsed:?}"),
    }
    if !data.is_empty() {
        let limit = data.len() - 1;
        assert!(
            matches!(
                decode(Message::Binary(data.to_vec().into()), limit),
                Frame::Malformed(_)
            ),
            "a {}-byte frame passed a {limit}-byte limit",
            data.len()
        );
    }
    // Text frames carry the same JSON.
    if let Ok(text) = std::str::from_utf8(data) {
        let f = decode(Message::Text(text.into()), usize::MAX);
        assert_eq!(matches!(f, Frame::Server(_)), parsed.is_ok());
    }
});
