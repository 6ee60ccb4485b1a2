//! The listener, the accept loop, and [`Shared`], the state every connection sees.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use faultless_runtime::net::TcpListener;
use faultless_store::Store;
use futures::channel::oneshot;

use crate::accept::Acceptor;
use crate::config::Config;
use crate::connection::ClientInfo;
use crate::db::committer::Committer;
use crate::db::watch::Watches;
use crate::db::Keyspace;
use crate::limits;
use crate::memory::RequestMemory;
use crate::options::Options;
use crate::stats::Stats;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) options: Options,
    /// The port actually bound (differs from the options' when that was 0).
    pub(crate) port: u16,
    pub(crate) shutdown: Cell<bool>,
    wake_acceptor: RefCell<Option<oneshot::Sender<()>>>,
    /// The server's counters.
    pub(crate) stats: Stats,
    /// The budget for request buffers, shared by all connections.
    pub(crate) request_memory: RequestMemory,
    /// Clients served at most: `--max-clients`, or fewer if the open-file limit is lower.
    pub(crate) max_clients: usize,
    /// The parameters CONFIG SET can change.
    pub(crate) config: RefCell<Config>,
    /// Counts and the next container id (the server's record in the store).
    pub(crate) keyspace: Keyspace,
    /// WATCHed keys.
    pub(crate) watches: Watches,
    /// The queue of writes and the task that commits them.
    pub(crate) committer: Committer,
    /// Connected clients, by id (CLIENT LIST, CLIENT KILL).
    pub(crate) clients: RefCell<BTreeMap<u64, Rc<ClientInfo>>>,
    /// The next client id.
    pub(crate) next_client_id: Cell<u64>,
    /// When the server started.
    pub(crate) started: Instant,
    /// Whether active expiry runs.
    pub(crate) active_expire: Cell<bool>,
}

impl Shared {
    /// Stops accepting connections; [`Server::run`] returns. Every acknowledged write is
    /// already durable, so nothing else needs doing.
    /// The most clients served now (CONFIG's maxclients, within what the open-file limit
    /// fits).
    pub(crate) fn client_limit(&self) -> usize {
        self.config.borrow().maxclients.min(self.max_clients)
    }

    pub(crate) fn shut_down(&self) {
        self.shutdown.set(true);
        if let Some(tx) = self.wake_acceptor.borrow_mut().take() {
            let _ = tx.send(());
        }
    }
}

/// A server bound to its address with its store open, ready to [`run`](Server::run).
pub struct Server {
    pub(crate) shared: Rc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    stop: oneshot::Receiver<()>,
}

impl Server {
    /// Opens the store and binds the listener. Must be called inside a faultless runtime.
    pub async fn bind(options: Options) -> io::Result<Server> {
        options.validate()?;
        let store = Store::open(&options.data, options.store_options()?).await?;
        let keyspace = Keyspace::open(&store).await?;
        let listener = bind_listener(&options.bind, options.port).await?;
        let addr = listener.local_addr()?;
        let fd_limit = limits::fd_limit()?;
        let max_clients = limits::clients_that_fit(options.max_clients, fd_limit);
        if max_clients < options.max_clients {
            crate::log::warning!(
                "--max-clients {} needs at least {} file descriptors; the open-file limit is \
                 {fd_limit}, so at most {max_clients} clients are served",
                options.max_clients,
                options.max_clients as u64 + limits::RESERVED_FDS
            );
        }
        let (tx, stop) = oneshot::channel();
        let shared = Rc::new(Shared {
            store,
            port: addr.port(),
            shutdown: Cell::new(false),
            wake_acceptor: RefCell::new(Some(tx)),
            stats: Stats::default(),
            request_memory: RequestMemory::new(options.max_request_memory),
            max_clients,
            config: RefCell::new(Config::new(&options, max_clients)),
            keyspace,
            watches: Watches::default(),
            committer: Committer::default(),
            clients: RefCell::new(BTreeMap::new()),
            next_client_id: Cell::new(1),
            started: Instant::now(),
            active_expire: Cell::new(true),
            options,
        });
        Ok(Server {
            shared,
            listener,
            addr,
            stop,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store the server serves.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Accepts and serves connections until a client sends `SHUTDOWN`.
    pub async fn run(self) -> io::Result<()> {
        let Server {
            shared,
            listener,
            mut stop,
            ..
        } = self;
        let mut acceptor = Acceptor::new(shared.clone());
        faultless_runtime::spawn(crate::db::cron::run(shared.clone())).detach();
        while !shared.shutdown.get() {
            let accepted = {
                let accept = std::pin::pin!(listener.accept());
                match futures::future::select(accept, &mut stop).await {
                    futures::future::Either::Left((r, _)) => r,
                    futures::future::Either::Right(_) => break,
                }
            };
            match accepted {
                Ok((stream, _)) => acceptor.admit(stream),
                Err(e) => {
                    if let Some(pause) = acceptor.failed(e) {
                        faultless_runtime::time::sleep(pause).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// How long a bind waits for a dead process's listener on the same port to go away.
const BIND_RETRY: Duration = Duration::from_secs(2);

/// Binds the listener (`SO_REUSEADDR` is set by the runtime, so connections of a previous
/// server in `TIME_WAIT` do not block the port). A server that was just killed can still hold
/// the port for a few milliseconds: its io_uring instance is torn down by the kernel after the
/// process is gone, and the operations in flight keep its listening socket open until then
/// (4 to 10 ms measured). So `EADDRINUSE` on a fixed port is retried for up to
/// [`BIND_RETRY`].
async fn bind_listener(host: &str, port: u16) -> io::Result<TcpListener> {
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        match TcpListener::bind((host, port)) {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && port != 0
                    && Instant::now() < deadline =>
            {
                faultless_runtime::time::sleep(Duration::from_millis(10)).await;
            }
            result => return result,
        }
    }
}

/// Runs the server on a runtime of its own until `SHUTDOWN`: raises the open-file limit
/// ([`limits::raise_fd_limit`]), opens the store, binds, prints `faultless serve: listening on
/// ADDR (data PATH, N keys)` on stdout, and serves.
pub fn serve(options: Options) -> io::Result<()> {
    if let Err(e) = limits::raise_fd_limit() {
        crate::log::warning!("could not raise the open-file limit: {e}");
    }
    let rt = faultless_runtime::Runtime::new()?;
    rt.block_on(async {
        let data = options.data.clone();
        let server = Server::bind(options).await?;
        println!(
            "faultless serve: listening on {} (data {}, {} keys)",
            server.local_addr(),
            data.display(),
            server.shared.keyspace.keys.get()
        );
        let store = server.shared.store.clone();
        server.run().await?;
        // stdout may be closed by now (a supervisor that read the first line): not an error.
        let _ = writeln!(std::io::stdout(), "faultless serve: shutting down");
        crate::log::event!(info, "shutting down: checkpointing what is only in the log");
        // What is only in the log goes into the tree now, so the next start replays nothing
        // (as Redis saves at SHUTDOWN). A failure loses nothing: the log still holds it.
        if let Err(e) = store.checkpoint().await {
            crate::log::warning!(
                "the checkpoint at shutdown failed ({e}); the next start replays the log"
            );
        }
        Ok(())
    })
}
