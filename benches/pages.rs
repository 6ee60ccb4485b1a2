//! The cost of reading a resident page through the page-access API, against a raw read of
//! the same memory, measured side by side.
//!
//! ```text
//! cargo bench --bench pages
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use faultless::runtime::mem::{MapOptions, Mapping};

const PAGES: u64 = 1024;
const READS: u64 = 4096;

fn resident_read(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("faultless-pages-bench-{}", std::process::id()));
    std::fs::write(&path, vec![1u8; (PAGES * 4096) as usize]).unwrap();
    let rt = faultless::Runtime::new().unwrap();
    // SAFETY: the file was written above and nothing writes it while it is mapped.
    let map = unsafe { Mapping::open(&path, MapOptions::new()) }.unwrap();
    rt.block_on(async {
        map.read(0..PAGES * 4096).await.unwrap();
    });
    let raw: &[u8] = &map.try_read(0..PAGES * 4096).unwrap();
    let offsets: Vec<u64> = (0..READS)
        .map(|i| (i * 4104) % (PAGES * 4096 - 8))
        .collect();

    let mut g = c.benchmark_group("resident_read_8_bytes");
    g.throughput(criterion::Throughput::Elements(READS));
    g.bench_function("raw_slice", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &off in &offsets {
                let s = &raw[off as usize..off as usize + 8];
                sum = sum.wrapping_add(std::hint::black_box(s)[0] as u64);
            }
            sum
        })
    });
    g.bench_function("try_read", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &off in &offsets {
                let s = map.try_read(off..off + 8).unwrap();
                sum = sum.wrapping_add(std::hint::black_box(&*s)[0] as u64);
            }
            sum
        })
    });
    g.bench_function("read_await", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut sum = 0u64;
                for &off in &offsets {
                    let s = map.read(off..off + 8).await.unwrap();
                    sum = sum.wrapping_add(std::hint::black_box(&*s)[0] as u64);
                }
                sum
            })
        })
    });
    g.finish();
    std::fs::remove_file(&path).ok();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = resident_read
}
criterion_main!(benches);
