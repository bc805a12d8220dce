//! The benchmark report as a table for people.

use super::BenchReport;

/// The report as a table for people.
pub fn to_table(r: &BenchReport) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<34} {value}\n"));
    let opt = |v: Option<f64>, unit: &str| match v {
        Some(v) => format!("{v:.3}{unit}"),
        None => "n/a".to_string(),
    };
    line(
        "adapter",
        format!("{} ({}, {})", r.adapter, r.backend, r.device_type),
    );
    line("timing", r.timing.to_string());
    line(
        "kernels",
        format!(
            "product: W {}, share {}, {} rows/workgroup; statistics: {}",
            if r.kernels.product.weights_from_rng {
                "in kernel"
            } else {
                "from buffer"
            },
            r.kernels.product.share,
            if r.kernels.product.wide { 64 } else { 16 },
            if r.kernels.reduction.subgroup {
                format!("subgroups of {}", r.kernels.reduction.workgroup)
            } else {
                format!("tree of {}", r.kernels.reduction.workgroup)
            }
        ),
    );
    line("fma_peak_gflops", format!("{:.2}", r.fma_peak_gflops));
    let (b0, n0) = (r.product[0].batch, r.product[0].width);
    line(
        &format!("naive_gflops (B={b0}, n={n0})"),
        format!("{:.3}", r.naive_gflops),
    );
    for p in &r.product {
        let value = match (&p.gflops, &p.skipped) {
            (Some(g), _) => format!("{g:.3} ({:.3} of peak)", p.vs_peak.unwrap_or(f64::NAN)),
            (None, Some(why)) => format!("skipped: {why}"),
            _ => "n/a".into(),
        };
        line(
            &format!("product_gflops (B={}, n={})", p.batch, p.width),
            value,
        );
    }
    line("product_vs_naive", format!("{:.2}", r.product_vs_naive));
    line("product_vs_peak", format!("{:.4}", r.product_vs_peak));
    let ws = &r.weight_sources;
    line(
        "W in kernel / from buffer (+gen)",
        format!(
            "{:.3} / {:.3} ({:.3}) GFLOP/s; chosen: {}",
            ws.in_kernel_gflops,
            ws.from_buffer_gflops,
            ws.from_buffer_with_generation_gflops,
            ws.chosen
        ),
    );
    let f = &r.forward;
    line(
        &format!("forward (B={}, n={}, L={})", f.batch, f.width, f.depth),
        format!(
            "{:.2} layers/s, {:.3} GFLOP/s, {:.1} s",
            f.layers_per_s, f.gflops, f.seconds
        ),
    );
    line(
        "forward_vs_product (time/layer)",
        format!("{:.3}", r.forward_vs_product),
    );
    let b = &r.backward;
    line(
        &format!("backward (B={}, n={}, L={})", b.batch, b.width, b.depth),
        format!(
            "{:.2} layers/s, {:.3} GFLOP/s, {:.1} s",
            b.layers_per_s, b.gflops, b.seconds
        ),
    );
    line(
        "host_idle_fraction",
        match (&r.host_idle_fraction, &r.host_idle_note) {
            (Some(v), _) => format!("{v:.4}"),
            (None, Some(why)) => format!("null ({why})"),
            _ => "null".into(),
        },
    );
    line(
        "rng_gnormals_per_s",
        format!("{:.4} (10^9 Gaussian draws/s)", r.rng_gnormals_per_s),
    );
    for o in &r.orthogonal {
        line(
            &format!("orthogonal W (n={})", o.width),
            opt(Some(o.seconds_per_layer), " s/layer"),
        );
    }
    let g = &r.gram;
    line(
        &format!("gram vs dense (B={}, n={})", g.batch, g.width),
        format!(
            "gram {:.2} layers/s (L={}), dense {:.3} layers/s (L={}): gram_vs_dense {:.1}",
            r.gram_layers_per_s, g.gram_depth, r.dense_layers_per_s, g.dense_depth, r.gram_vs_dense
        ),
    );
    line(
        "gram vs its RNG limit",
        format!(
            "{:.2}x the time of drawing a layer's n B Gaussians (target <= 1.5)",
            r.gram_vs_rng_limit
        ),
    );
    let k = &r.ntk;
    line(
        "ntk vs backward",
        format!(
            "dense {:.2}x ({:.3} s against {:.3} s, B={}, n={}, L={}), gram {:.2}x ({:.3} s against {:.3} s, B={}, n={}, L={}), blocks {:.2}x ({:.3} s against {:.3} s, the conv network below)",
            k.dense_ntk_vs_backward,
            k.dense_ntk_seconds,
            k.dense_backward_seconds,
            k.dense_batch,
            k.dense_width,
            k.dense_depth,
            k.gram_ntk_vs_backward,
            k.gram_ntk_seconds,
            k.gram_backward_seconds,
            k.gram_batch,
            k.gram_width,
            k.gram_depth,
            k.blocks_ntk_vs_backward,
            k.blocks_ntk_seconds,
            k.blocks_backward_seconds
        ),
    );
    let n = &r.resnet;
    line(
        "resnet blocks (--spp)",
        format!(
            "{:.1} blocks/s: {} blocks x {} networks in {:.1} s, batch {} ({})",
            n.blocks_per_s, n.blocks, n.networks, n.seconds, n.batch, n.file
        ),
    );
    let c = &r.conv;
    line(
        "block conv 3x3 (tiled vs plain)",
        format!(
            "{:.2}x (target >= 4): {:.3} s against {:.3} s a layer, {:.2} GFLOP/s; {} channels, {}x{}, batch {}",
            c.tiled_vs_plain,
            c.tiled_seconds_per_layer,
            c.plain_seconds_per_layer,
            c.tiled_gflops,
            c.channels,
            c.size,
            c.size,
            c.batch
        ),
    );
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
