//! Camera edge: V4L2 MJPEG capture on its own thread, decimation to at most 1 frame/s, and the
//! JPEG pipeline (decode → resize → encode) that turns a camera frame into the 768×768 JPEG the
//! Live API takes.

pub mod jpeg;
