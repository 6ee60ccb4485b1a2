//! Files: write, read, sync, metadata, allocation, errors.

use std::path::PathBuf;

use faultless_runtime::fs::{self, File, OpenOptions};
use faultless_runtime::Runtime;

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("faultless-fs-{}-{name}", std::process::id()))
}

#[test]
fn write_read_sync_round_trip() {
    let rt = Runtime::new().unwrap();
    let path = temp_path("roundtrip");
    rt.block_on(async {
        let f = File::create(&path).await.unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (res, _) = f.write_all_at(data.clone(), 4096).await;
        res.unwrap();
        let (n, _) = f.write_at(&b"head"[..], 0).await;
        assert_eq!(n.unwrap(), 4);
        f.sync_data().await.unwrap();
        f.sync_all().await.unwrap();
        let meta = f.metadata().await.unwrap();
        assert_eq!(meta.len(), 4096 + data.len() as u64);
        assert!(meta.is_file() && !meta.is_dir());

        let f2 = File::open(&path).await.unwrap();
        let back = f2.read_exact_at(data.len(), 4096).await.unwrap();
        assert!(back == data);
        let (n, head) = f2.read_at(Vec::with_capacity(4), 0).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(&head, b"head");
        // The gap between is zeros.
        let gap = f2.read_exact_at(100, 1000).await.unwrap();
        assert!(gap.iter().all(|&b| b == 0));
        // Reading past the end gives 0 bytes, and read_exact_at fails cleanly.
        let (n, _) = f2.read_at(Vec::with_capacity(10), meta.len() + 10).await;
        assert_eq!(n.unwrap(), 0);
        let err = f2.read_exact_at(10, meta.len() - 5).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        // Writing to a read-only file is an OS error, not a panic.
        let (res, _) = f2.write_at(&b"x"[..], 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        // The data is on disk for std to see too.
        assert_eq!(std::fs::read(&path).unwrap()[4096..], data[..]);
    });
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn set_len_and_fallocate() {
    let rt = Runtime::new().unwrap();
    let path = temp_path("alloc");
    rt.block_on(async {
        let f = File::create(&path).await.unwrap();
        f.set_len(1 << 20).await.unwrap();
        let m = f.metadata().await.unwrap();
        assert_eq!(m.len(), 1 << 20);
        assert!(m.allocated() < 1 << 20, "set_len extends sparsely");
        f.fallocate(0, 2 << 20, 0).await.unwrap();
        let m = f.metadata().await.unwrap();
        assert_eq!(m.len(), 2 << 20);
        assert!(m.allocated() >= 2 << 20, "fallocate reserves blocks");
        f.set_len(100).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 100);
        fs::remove_file(&path).await.unwrap();
        let err = fs::remove_file(&path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn open_errors_are_clear() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let err = File::open("/nonexistent/dir/file").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/dir/file"));
        let err = File::open("bad\0path").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let err = OpenOptions::new().open("/tmp").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let path = temp_path("exists");
        let _f = File::create(&path).await.unwrap();
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        std::fs::remove_file(&path).unwrap();
    });
}
