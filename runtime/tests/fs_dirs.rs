//! Path operations: rename, directories, links, metadata by path, listings (counted, with
//! the error cases and a directory larger than one listing batch).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::PathBuf;

use faultless_runtime::fs::{self, File};
use faultless_runtime::Runtime;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faultless-fsdirs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn directories_renames_links_and_metadata() {
    let rt = Runtime::new().unwrap();
    let root = temp_dir("ops");
    rt.block_on(async {
        fs::create_dir_all(root.join("a/b/c")).await.unwrap();
        fs::create_dir_all(root.join("a/b/c")).await.unwrap(); // exists: fine
        assert!(fs::metadata(root.join("a/b/c")).await.unwrap().is_dir());
        let e = fs::create_dir(root.join("a")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(
            e.to_string().contains("/a"),
            "the error names the path: {e}"
        );

        let f = File::create(root.join("a/file")).await.unwrap();
        f.write_all_at(vec![1u8; 1000], 0).await.0.unwrap();
        drop(f);
        let e = fs::create_dir_all(root.join("a/file/x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotADirectory, "{e}");

        fs::rename(root.join("a/file"), root.join("a/b/moved"))
            .await
            .unwrap();
        assert!(!root.join("a/file").exists());
        assert_eq!(
            fs::metadata(root.join("a/b/moved")).await.unwrap().len(),
            1000
        );
        let e = fs::rename(root.join("nope"), root.join("x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // A directory into itself: the kernel's EINVAL, through the fallback and back.
        let e = fs::rename(root.join("a"), root.join("a/b/inside"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

        fs::symlink("b/moved", root.join("a/link")).await.unwrap();
        let followed = fs::metadata(root.join("a/link")).await.unwrap();
        assert!(followed.is_file() && !followed.is_symlink());
        assert_eq!(followed.len(), 1000);
        let link = fs::symlink_metadata(root.join("a/link")).await.unwrap();
        assert!(link.is_symlink() && !link.is_file());
        fs::hard_link(root.join("a/b/moved"), root.join("a/hard"))
            .await
            .unwrap();
        assert_eq!(fs::metadata(root.join("a/hard")).await.unwrap().len(), 1000);

        let e = fs::remove_dir(root.join("a/b")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DirectoryNotEmpty);
        let e = fs::remove_dir(root.join("a/hard")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotADirectory);
        for f in ["a/link", "a/hard", "a/b/moved"] {
            fs::remove_file(root.join(f)).await.unwrap();
        }
        for d in ["a/b/c", "a/b", "a", ""] {
            fs::remove_dir(root.join(d)).await.unwrap();
        }
        assert!(!root.exists());
        let e = fs::metadata(&root).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    });
    assert_eq!(rt.stats().orphan_fds_closed, 0);
}

#[test]
fn read_dir_lists_every_entry_in_batches() {
    let rt = Runtime::new().unwrap();
    let root = temp_dir("list");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let mut expected = BTreeSet::from(["sub".to_string()]);
    for i in 0..1000 {
        let name = format!("f{i:04}");
        std::fs::write(root.join(&name), b"x").unwrap();
        expected.insert(name);
    }
    rt.block_on(async {
        let mut seen = BTreeSet::new();
        let mut dirs = 0;
        let mut entries = fs::read_dir(&root).await.unwrap();
        while let Some(e) = entries.next_entry().await.unwrap() {
            assert_eq!(e.path(), root.join(e.file_name()));
            if e.file_type().unwrap().is_dir() {
                dirs += 1;
            }
            assert!(
                seen.insert(e.file_name().into_string().unwrap()),
                "no duplicates"
            );
        }
        assert!(
            entries.next_entry().await.unwrap().is_none(),
            "stays at the end"
        );
        assert_eq!(seen, expected);
        assert_eq!(dirs, 1);
        let e = fs::read_dir(root.join("missing")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"));
    });
    let stats = rt.stats();
    // One job to open, one per 256-entry batch (1001 entries: 4 batches, the last one
    // finding the end), one for the missing directory.
    assert_eq!(stats.blocking_spawned, 1 + 4 + 1, "{stats:?}");
    std::fs::remove_dir_all(&root).unwrap();
}
