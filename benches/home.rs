//! What being "at home" costs the daemon, measured on this machine:
//! - rendering the metrics (every `[metrics] interval_s` and after each control command);
//! - one event through the hub to its subscribers (the control socket's, the hooks', MQTT's):
//!   what the control loop pays per state change, transcript or tool call;
//! - the Home Assistant discovery configs (built at every broker connection).
//!
//! Run: `cargo bench --bench home`. Plain `std::time` timing (no harness): median of 15
//! batches.

use std::hint::black_box;
use std::time::Instant;

use gemlive::audio::AudioStats;
use gemlive::control::Hub;
use gemlive::daemon::{samples, Gauges, RunSummary};
use gemlive::metrics::render;
use gemlive::mqtt::discovery::{configs, Topics};

fn median_ns_per_op(batches: usize, per_batch: usize, mut op: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut sum = RunSummary::default();
    sum.net.mic_bytes_sent = 123_456_789;
    sum.tool_calls = 42;
    sum.echo_erle_db = Some(17.3);
    let stats = AudioStats::default();
    let g = Gauges {
        state: "listening",
        muted: false,
        volume: 80,
        session: true,
        started_unix_s: 1.8e9,
    };
    let text = render(&samples(&sum, &stats, &g));
    let render_ns = median_ns_per_op(15, 2_000, || {
        black_box(render(&samples(black_box(&sum), &stats, &g)));
    });
    println!(
        "metrics: {} samples, {} bytes of text, rendered in {:.1} µs",
        text.lines().filter(|l| !l.starts_with('#')).count(),
        text.len(),
        render_ns / 1000.0
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for subscribers in [0usize, 3] {
            let hub = Hub::default();
            let mut rx: Vec<_> = (0..subscribers)
                .map(|_| hub.handle().events.subscribe())
                .collect();
            let ns = median_ns_per_op(15, 2_000, || {
                hub.event(
                    "state",
                    serde_json::json!({ "state": black_box("listening") }),
                );
                // The subscribers keep up (as the outlets' tasks do).
                for r in rx.iter_mut() {
                    let _ = black_box(r.try_recv());
                }
            });
            println!(
                "hub: one event to {subscribers} subscriber(s) in {:.2} µs (the control loop's share)",
                ns / 1000.0
            );
        }
    });

    let t = Topics::new("homeassistant", "kitchen");
    let all = configs(&t, "0.1.0");
    let bytes: usize = all.iter().map(|(t, p)| t.len() + p.to_string().len()).sum();
    let ns = median_ns_per_op(15, 500, || {
        black_box(configs(black_box(&t), "0.1.0"));
    });
    println!(
        "discovery: {} configs, {} bytes, built in {:.1} µs (at each broker connection)",
        all.len(),
        bytes,
        ns / 1000.0
    );
}
