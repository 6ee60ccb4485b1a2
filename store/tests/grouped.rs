//! Group commit under load: 16 writers, overflow values among them, stay consistent.

mod common;
use common::TempPath;
use faultless_runtime::Runtime;
use faultless_store::{Store, StoreOptions};

#[test]
fn grouped_pipelined_commits_stay_consistent() {
    let path = TempPath::new("pipe");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&path.0, StoreOptions::new()).await.unwrap();
        let tasks: Vec<_> = (0..16u64)
            .map(|t| {
                let store = store.clone();
                faultless_runtime::spawn(async move {
                    for n in 0..60u64 {
                        let v = vec![(n % 251) as u8; if n.is_multiple_of(5) { 3000 } else { 50 }];
                        store.put(format!("g{t}-{n}").as_bytes(), &v).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let report = store.check().await.unwrap();
        assert!(report.ok(), "{report}");
        assert_eq!(store.len(), 960);
    });
}
