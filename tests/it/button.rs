//! The button's public API on whatever machine runs the tests. CI and the dev VM have no
//! `/dev/gpiochip*`; a Raspberry Pi does. Either way the errors must say what to do.

use gemlive::button::{list_gpio, Button, ButtonError, Led};
use gemlive::config::ButtonConfig;

fn no_chips() -> bool {
    std::fs::read_dir("/dev")
        .map(|d| {
            !d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
        })
        .unwrap_or(true)
}

fn cfg_with_line(line: &str) -> ButtonConfig {
    ButtonConfig {
        line: Some(line.to_string()),
        ..ButtonConfig::default()
    }
}

#[tokio::test]
async fn open_unknown_line_explains_itself() {
    let err = Button::open(&cfg_with_line("GEMLIVE_NO_SUCH_LINE")).expect_err("no such line");
    let msg = err.to_string();
    match &err {
        ButtonError::NoChips => {
            assert!(msg.contains("no GPIO chips found"), "{msg}");
            assert!(msg.contains("/dev/gpiochip"), "{msg}");
            assert!(msg.contains("group gpio"), "{msg}");
        }
        ButtonError::LineNotFound { name, named, .. } => {
            assert!(!no_chips(), "not-found without chips: {msg}");
            assert_eq!(name, "GEMLIVE_NO_SUCH_LINE");
            assert!(msg.contains("\"GEMLIVE_NO_SUCH_LINE\" not found"), "{msg}");
            assert!(msg.contains("gemlive list-devices"), "{msg}");
            if let Some(first) = named.first() {
                assert!(msg.contains(first.as_str()), "{msg}");
            }
        }
        // chips exist but the user may not open them
        ButtonError::PermissionDenied { .. } => {
            assert!(!no_chips(), "{msg}");
            assert!(msg.contains("group gpio"), "{msg}");
        }
        other => panic!("unexpected error: {other:?} ({msg})"),
    }
    if no_chips() {
        assert!(matches!(err, ButtonError::NoChips), "{err:?}");
    }
}

#[tokio::test]
async fn open_without_a_line_is_not_configured() {
    let err = Button::open(&ButtonConfig::default()).expect_err("nothing configured");
    assert!(matches!(err, ButtonError::NotConfigured(_)), "{err:?}");
    assert!(err.to_string().contains("GPIO17"), "{err}");
}

#[test]
fn led_on_missing_chip_names_the_chip() {
    let err = Led::open("gpiochip9:3").expect_err("no gpiochip9");
    let msg = err.to_string();
    match &err {
        ButtonError::ChipNotFound { chip, available } => {
            assert_eq!(chip, "gpiochip9");
            assert!(msg.contains("\"gpiochip9\""), "{msg}");
            if no_chips() {
                assert!(available.is_empty());
                assert!(msg.contains("group gpio"), "{msg}");
            } else {
                assert!(msg.contains("chips: gpiochip"), "{msg}");
            }
        }
        // a board that really has a gpiochip9 (some do): then offset 3 on it must be refused
        // for a reason we name, or be out of range
        ButtonError::OffsetOutOfRange { chip, .. } => assert_eq!(chip, "gpiochip9"),
        ButtonError::Busy { .. } | ButtonError::PermissionDenied { .. } => {
            assert!(!no_chips(), "{msg}")
        }
        other => panic!("unexpected error: {other:?} ({msg})"),
    }
}

#[test]
fn led_with_an_unknown_name_fails_helpfully() {
    let err = Led::open("GEMLIVE_NO_SUCH_LINE").expect_err("no such line");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            ButtonError::NoChips
                | ButtonError::LineNotFound { .. }
                | ButtonError::PermissionDenied { .. }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("group gpio") || msg.contains("gemlive list-devices"),
        "{msg}"
    );
    let err = Led::open("  ").expect_err("empty");
    assert!(matches!(err, ButtonError::NotConfigured(_)), "{err:?}");
}

#[test]
fn list_gpio_reports_chips_or_their_absence() {
    let text = list_gpio();
    assert!(text.ends_with('\n'), "{text:?}");
    if no_chips() {
        assert!(text.contains("no GPIO chips found"), "{text}");
        assert!(text.contains("group gpio"), "{text}");
    } else {
        assert!(text.starts_with("gpiochip"), "{text}");
    }
}
