//! `into_std` while a write-behind send is still in flight: the socket is `dup`ed, the
//! cancelled send keeps the original fd until its completion, and nothing leaks. Alone in its
//! test binary because it counts the process's fds.

use std::time::Duration;

use futures::AsyncWriteExt;

use faultless_runtime::net::{TcpListener, TcpStream};
use faultless_runtime::time::timeout;
use faultless_runtime::Runtime;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn into_std_with_a_send_in_flight_dups_and_leaks_nothing() {
    let before = fd_count();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("localhost:0").unwrap(); // no lookup: loopback
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        for _ in 0..50 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (_server, _) = listener.accept().await.unwrap();
            let mut client = client;
            // Fill the socket so a write-behind send stays in flight.
            let big = vec![7u8; 8 << 20];
            let _ = timeout(Duration::from_millis(5), client.write_all(&big)).await;
            let std = client.into_std().unwrap();
            drop(std);
        }
    });
    drop(rt);
    assert_eq!(fd_count(), before, "every fd and dup was closed");
}
