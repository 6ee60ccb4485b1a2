//! SVG plots: cold-read throughput against concurrency per backend, and hot-request latency
//! CDFs.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

fn to_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// One color per backend, in report order, in both plots; black is the baselines'.
const COLORS: [RGBColor; 6] = [RED, BLUE, GREEN, MAGENTA, CYAN, RGBColor(255, 140, 0)];

fn color_of(r: &Report, backend: &str) -> RGBColor {
    let i = backends(r).iter().position(|b| b == backend).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// Writes `throughput.svg` and `hot_latency_cdf.svg` into `dir`.
pub fn write_plots(r: &Report, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    throughput(r, &dir.join("throughput.svg"))?;
    latency_cdf(r, &dir.join("hot_latency_cdf.svg"))?;
    Ok(())
}

fn backends(r: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in &r.runs {
        if !names.contains(&run.backend) {
            names.push(run.backend.clone());
        }
    }
    names
}

fn throughput(r: &Report, path: &Path) -> io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(to_io)?;
    let max_c = r
        .runs
        .iter()
        .map(|x| x.concurrency)
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let max_y = r
        .runs
        .iter()
        .map(|x| x.cold_reads_per_s)
        .fold(r.device_limit_iops, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "cold random 4 KiB reads from one executor thread",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..max_c * 1.2).log_scale(), 0f64..max_y.max(1.0))
        .map_err(to_io)?;
    chart
        .configure_mesh()
        .x_desc("concurrent tasks")
        .y_desc("reads/s")
        .draw()
        .map_err(to_io)?;
    for name in backends(r).iter() {
        let color = color_of(r, name);
        let points: Vec<(f64, f64)> = r
            .runs
            .iter()
            .filter(|x| &x.backend == name && x.concurrency > 0)
            .map(|x| (x.concurrency as f64, x.cold_reads_per_s))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(to_io)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(to_io)?;
    }
    let limit = r.device_limit_iops;
    chart
        .draw_series(LineSeries::new(
            vec![(1.0, limit), (max_c * 1.2, limit)],
            BLACK.stroke_width(1),
        ))
        .map_err(to_io)?
        .label("device limit (O_DIRECT QD32)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(to_io)?;
    root.present().map_err(to_io)
}

fn latency_cdf(r: &Report, path: &Path) -> io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(to_io)?;
    let max_c = r.runs.iter().map(|x| x.concurrency).max().unwrap_or(0);
    type Series<'a> = (String, RGBColor, &'a Vec<(f64, f64)>);
    let series: Vec<Series> = std::iter::once((
        "hot only (no cold readers)".to_string(),
        BLACK,
        &r.hot_only_cdf,
    ))
    .chain(r.runs.iter().filter(|x| x.concurrency == max_c).map(|x| {
        (
            format!("{} (c={})", x.backend, x.concurrency),
            color_of(r, &x.backend),
            &x.hot_cdf,
        )
    }))
    .collect();
    let max_x = series
        .iter()
        .flat_map(|(_, _, pts)| pts.iter().map(|p| p.0))
        .fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "hot request latency while cold readers run",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_x * 1.5).log_scale(), 0f64..1.0)
        .map_err(to_io)?;
    chart
        .configure_mesh()
        .x_desc("latency (us)")
        .y_desc("fraction of requests")
        .draw()
        .map_err(to_io)?;
    for (name, color, pts) in series {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(to_io)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(to_io)?;
    root.present().map_err(to_io)
}
