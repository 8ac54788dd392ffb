//! The camera frame pipeline (walk markers → our planar decoder, at a reduced scale when the
//! output is small, or zune-jpeg for what it does not take → fast_image_resize → our encoder)
//! on arbitrary bytes. Camera frames are untrusted: any input is a `FrameError` or a JPEG of
//! the configured geometry that decodes to the size reported, never a panic.
//!
//! Input layout: byte 0 picks the geometry (low 2 bits) and the quality, byte 1 the output
//! size (16 + byte, so small outputs keep each run fast); the rest is the frame.

#![no_main]

use gemlive::video::jpeg::{
    jpeg_size, splice_dht, trim_to_eoi, FrameError, Geometry, Pipeline, PipelineConfig,
};
use libfuzzer_sys::fuzz_target;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::JpegDecoder;

fuzz_target!(|data: &[u8]| {
    let [g, s, frame @ ..] = data else { return };
    let geometry = match g & 3 {
        0 => Geometry::Letterbox,
        1 => Geometry::Crop,
        2 => Geometry::Fit,
        _ => Geometry::Stretch,
    };
    let size = 16 + u32::from(*s);
    let quality = 1 + (g >> 2) * 4;
    let mut p = Pipeline::new(PipelineConfig {
        size,
        geometry,
        quality,
    });

    let trimmed = trim_to_eoi(frame);
    if let Ok(t) = trimmed {
        assert!(frame.starts_with(t) && t.starts_with(&[0xFF, 0xD8]) && t.ends_with(&[0xFF, 0xD9]));
    }
    if let Some(spliced) = splice_dht(frame) {
        // The spliced frame has tables, so splicing again is a no-op; its structure survives.
        assert!(trimmed.is_ok());
        let t = trim_to_eoi(&spliced).expect("spliced frame walks");
        assert_eq!(t.len(), spliced.len());
        assert!(splice_dht(&spliced).is_none());
        assert_eq!(jpeg_size(&spliced), jpeg_size(frame));
    }
    let header_size = jpeg_size(frame);

    let out = match p.process(frame) {
        Ok(out) => out,
        // The pipeline documents these as its own bugs, never the input's fault.
        Err(e @ (FrameError::Resize(_) | FrameError::Encode(_))) => panic!("{e}"),
        Err(FrameError::Malformed(m)) if m == "unexpected encoder output" => panic!("{m}"),
        Err(_) => return,
    };
    assert!(
        trimmed.is_ok(),
        "process accepted a frame trim_to_eoi refused"
    );
    let (w, h) = (out.width, out.height);
    assert!(w >= 1 && h >= 1);
    match geometry {
        Geometry::Fit => assert!(w.max(h) <= size, "Fit: {w}×{h} for size {size}"),
        _ => assert_eq!((w, h), (size, size), "{geometry:?}"),
    }
    if out.passthrough {
        assert_eq!(Some(out.jpeg), trimmed.ok());
        assert_eq!(header_size, Some((w, h)));
        return;
    }
    // What is sent must itself be a JPEG of the size reported (the letterbox path splices
    // pre-encoded bars into it by hand).
    let mut d = JpegDecoder::new(ZCursor::new(out.jpeg));
    let pixels = d
        .decode()
        .unwrap_or_else(|e| panic!("output does not decode: {e:?}"));
    let info = d.info().expect("decoded info");
    assert_eq!((u32::from(info.width), u32::from(info.height)), (w, h));
    assert_eq!(pixels.len(), w as usize * h as usize * 3);
});
